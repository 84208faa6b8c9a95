"""When the janitor asks a provider about a payment or refund whose notification has not come."""

from __future__ import annotations

from datetime import datetime, timedelta

# After 1 min, 5 min, 30 min, 2 h, then every 6 h (payments: until 24 h after they expire).
STATUS_CHECK_BACKOFF = (60, 300, 1800, 7200, 21600)


def first_check(now: datetime) -> datetime:
    return now + timedelta(seconds=STATUS_CHECK_BACKOFF[0])


def next_check(now: datetime, checks_done: int) -> datetime:
    return now + timedelta(seconds=STATUS_CHECK_BACKOFF[min(checks_done, len(STATUS_CHECK_BACKOFF) - 1)])
