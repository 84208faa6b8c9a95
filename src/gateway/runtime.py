"""Everything a request or a worker needs, built once per process and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from gateway.adapters.registry import AdapterRegistry
from gateway.clock import Clock, IdGenerator
from gateway.crypto import SecretBox
from gateway.db import Database
from gateway.observability import Metrics
from gateway.settings import Settings


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

    @property
    def notification_base_url(self) -> str:
        return self.settings.public_url.rstrip("/") + "/v1/providers"
