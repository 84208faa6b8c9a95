"""Time and identifiers are injected so tests can move time and predict nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from ulid import ULID


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class IdGenerator:
    """Prefixed, time-ordered ids (ULID): sorting by id is sorting by creation, so lists page by keyset."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def new(self, prefix: str) -> str:
        return f"{prefix}_{ULID.from_datetime(self._clock.now())}"


def isoformat(value: datetime) -> str:
    """RFC 3339 UTC with a Z, second precision, as the contract shows."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
