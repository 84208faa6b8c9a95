"""Bills (§11): what each customer owes, how it is paid, and where every đồng that arrives for a customer goes."""
