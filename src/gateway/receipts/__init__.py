"""Electronic receipts (§14): one numbered receipt per succeeded payment, canceled or replaced by refunds."""
