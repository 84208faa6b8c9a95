"""What an adapter declares so that test mode works for it: the shared sandbox account, the names of its secrets,
its simulator (the provider's side, an ASGI app mounted at /sandbox/<name>) and how the test helpers play its payer.

The sandbox and the credentials code loop over the registry's adapters and read these declarations, so a provider
installed through the `gateway.adapters` entry point gets test mode without any edit to the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from starlette.types import ASGIApp

from gateway.clock import Clock


class SandboxPayerFailed(Exception):
    """The simulator could not play the payer (the test helper answers 502 sandbox_error with this message)."""


@dataclass(frozen=True)
class SimulatorContext:
    settings: Mapping[str, str]
    secrets: Mapping[str, str]
    # Where the simulator sends its notifications: the gateway's /v1/providers/<name>/notifications.
    notification_url: str
    # Where a payer's browser reaches the simulator: the gateway's public URL + /sandbox/<name>.
    public_base_url: str
    http: httpx.AsyncClient
    clock: Clock


# (http, the simulator's base URL, the payment's provider_data, outcome "success" | "failure", amount)
PayerDriver = Callable[[httpx.AsyncClient, str, dict[str, Any], str, int], Awaitable[None]]


@dataclass(frozen=True)
class SandboxSpec:
    settings: Mapping[str, str]
    # Their values derive from the gateway's master secret, so a gateway and a simulator started with the same
    # GATEWAY_SECRET_KEY agree.
    secret_names: tuple[str, ...]
    simulator: Callable[[SimulatorContext], ASGIApp]
    pay: PayerDriver

    def secrets(self, provider: str, derive: Callable[[str], str]) -> dict[str, str]:
        return {name: derive(f"sandbox:{provider}:{name}") for name in self.secret_names}


@runtime_checkable
class Sandboxed(Protocol):
    """An adapter with test mode: a provider without one answers test payments with test_mode_disabled."""

    sandbox: SandboxSpec
