"""Everything a request or a worker needs, built once per process and passed explicitly."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from gateway.adapters.registry import AdapterRegistry
from gateway.auth_types import MerchantScope
from gateway.clock import Clock, IdGenerator, SystemClock
from gateway.crypto import SecretBox
from gateway.db import Database
from gateway.idempotency.cache import CompletedResponses
from gateway.observability import Metrics
from gateway.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.events.models import Event, EventBatch

# Called with each event in the transaction that records it (webhooks subscribe at start-up: app.build_runtime).
EventSubscriber = Callable[["AsyncSession", "Runtime", "Event"], Awaitable[object]]
# The same for a batch of events recorded together (events.service.record_events): a subscriber registers in
# both lists, its batch form doing for all the batch's events what its single form does for one.
EventBatchSubscriber = Callable[["AsyncSession", "Runtime", "EventBatch"], Awaitable[object]]


class ApiKeyCache:
    """Recently looked-up API keys (by hash) → who they authenticate, for a few seconds."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[MerchantScope, float]] = {}

    def get(self, secret_hash: str) -> MerchantScope | None:
        found = self._entries.get(secret_hash)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def put(self, secret_hash: str, scope: MerchantScope) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[secret_hash] = (scope, time.monotonic() + self.ttl)

    def forget_key(self, key_id: str) -> None:
        for secret_hash in [h for h, (scope, _) in self._entries.items() if scope.key_id == key_id]:
            del self._entries[secret_hash]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    ids: IdGenerator
    registry: AdapterRegistry
    secret_box: SecretBox
    metrics: Metrics
    # Calls to providers (and, in test mode, to the simulators; in-process when they are mounted here).
    provider_http: httpx.AsyncClient
    sandbox_base_url: str | None = None
    background: set[object] = field(default_factory=set)
    api_keys: ApiKeyCache = field(default_factory=lambda: ApiKeyCache(0))
    completed_responses: CompletedResponses = field(default_factory=lambda: CompletedResponses(SystemClock(), 0))
    # Per-process caches of routing state (see payments/routing.py).
    routing_cache: dict[tuple[str, bool], tuple[datetime, dict[str, Any], set[str]]] = field(default_factory=dict)
    failing_providers: set[tuple[str, bool]] = field(default_factory=set)
    event_subscribers: list[EventSubscriber] = field(default_factory=list)
    event_batch_subscribers: list[EventBatchSubscriber] = field(default_factory=list)

    @property
    def notification_base_url(self) -> str:
        return self.settings.public_url.rstrip("/") + "/v1/providers"
