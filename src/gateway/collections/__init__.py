"""The bill API partners call (§12): inquiry, payment (a collection), status and same-day reversal."""
