"""Telco mobile money (Viettel Money, VNPT Money, MobiFone Money): one adapter, configured per telco."""
