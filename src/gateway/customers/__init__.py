"""Customers (§11): the biller's account holders, each with a payment code, a static VietQR and a balance."""
