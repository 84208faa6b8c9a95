"""Completed idempotency keys kept in memory, so a replay is answered without the database."""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import TTLCache

from gateway.clock import Clock


@dataclass(frozen=True)
class Completed:
    method: str
    path: str
    digest: str
    status: int
    body: bytes


class CompletedResponses:
    """Recently completed keys of this process → their final response, so replays skip the database.

    Safe because a completed key is immutable: its response is final and the row is only deleted by the
    retention purge, hours after the entry here has expired (`ttl_seconds`, on the runtime's clock).
    Bounded by the bytes of the bodies kept.
    """

    def __init__(self, clock: Clock, ttl_seconds: float = 300, max_bytes: int = 8 * 1024 * 1024) -> None:
        self._entries: TTLCache[tuple[str, str], Completed] = TTLCache(
            maxsize=max_bytes, ttl=ttl_seconds, timer=lambda: clock.now().timestamp(), getsizeof=_size
        )
        self.enabled = ttl_seconds > 0

    def get(self, scope: str, key: str) -> Completed | None:
        return self._entries.get((scope, key))

    def put(self, scope: str, key: str, entry: Completed) -> None:
        if self.enabled and _size(entry) <= self._entries.maxsize:
            self._entries[(scope, key)] = entry


def _size(entry: Completed) -> int:
    return len(entry.body) + len(entry.path) + 400  # with the key, the digest and the cache's own links
