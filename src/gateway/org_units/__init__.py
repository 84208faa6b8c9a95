"""Organisation units (§17): the province → district → commune / agency tree that reports count payments by."""
