"""Reports (§17): the province's collections by unit, merchant, method, channel, provider or day."""
