"""All simulators in one ASGI app: mounted at /sandbox inside the gateway, or run alone (`gateway sandbox`).

Each simulator serves three kinds of route. Its provider API (create, query, refund, transfers) is authenticated by
the provider's own protocol, and its payer pages (`/paymentv2/...`, `/pay/...` and the forms they post to) are what
a payer's browser opens: both are public, as at the real provider. Its `_sandbox/` control routes play the payer
(pay any order, send any transfer), read its state, or arm deliberate faults: on the gateway's own port they are
reachable only from the gateway's own process (the test helpers) unless the profile is development, and the fault
switches exist only in development.
"""

from __future__ import annotations

import re

import httpx
import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.adapters.registry import AdapterRegistry
from gateway.adapters.testmode import Sandboxed, SimulatorContext
from gateway.clock import Clock
from gateway.crypto import SecretBox
from gateway.errors import problem_response

log = structlog.get_logger("gateway.sandbox")

IN_PROCESS = "gateway.in_process"
# `_sandbox/` routes a payer's browser posts to from a simulator's payment page.
_PAYER_ROUTES = re.compile(r"/_sandbox/(checkout|orders/[^/]+/complete)$")
_FAULT_ROUTES = re.compile(r"/_sandbox/(faults|lose-next-notifications|fail-next-transfers)$")


def in_process_caller(app: ASGIApp) -> ASGIApp:
    """The gateway's own calls into its mounted sandbox (never a request from the network) carry this mark."""

    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, IN_PROCESS: True}, receive, send)

    return marked


class ControlRoutesGuard:
    """Answers 404 for the `_sandbox/` routes a caller may not reach, as if they did not exist."""

    def __init__(self, app: ASGIApp, *, open_to_network: bool, faults: bool) -> None:
        self.app = app
        self.open_to_network = open_to_network
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and "/_sandbox/" in path and not self._allowed(scope, path):
            await self._not_found(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope, path: str) -> bool:
        if _PAYER_ROUTES.search(path):
            return True
        if _FAULT_ROUTES.search(path) and not self.faults:
            return False
        return self.open_to_network or bool(scope.get(IN_PROCESS))

    @staticmethod
    async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(404, "not_found", "Not found", "No such route.")(scope, receive, send)


def create_sandbox_app(
    registry: AdapterRegistry,
    secret_box: SecretBox,
    gateway_url: str,
    http: httpx.AsyncClient,
    clock: Clock,
    *,
    control_open_to_network: bool,
    faults: bool,
) -> FastAPI:
    """Every registered adapter with test mode gets its simulator at /<name>.

    `control_open_to_network`: whether `_sandbox/` control routes answer any caller (development, or the
    sandbox's own port) or only the gateway's own process; `faults`: whether the fault switches exist."""
    app = FastAPI(title="Payment gateway sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    gateway = gateway_url.rstrip("/")
    simulators: dict[str, ASGIApp] = {}
    for adapter in registry:
        if not isinstance(adapter, Sandboxed):
            continue
        spec = adapter.sandbox
        context = SimulatorContext(
            settings=spec.settings,
            secrets=spec.secrets(adapter.name, secret_box.derive_token),
            notification_url=f"{gateway}/v1/providers/{adapter.name}/notifications",
            public_base_url=f"{gateway}/sandbox/{adapter.name}",
            http=http,
            clock=clock,
        )
        try:
            simulators[adapter.name] = spec.simulator(context)
        except Exception as exc:  # like a broken plug-in, a simulator that cannot start must not stop the gateway
            log.error("sandbox.simulator_failed", provider=adapter.name, error=f"{type(exc).__name__}: {exc}"[:200])
            continue
        app.mount(f"/{adapter.name}", simulators[adapter.name])
    app.state.simulators = simulators
    app.add_middleware(ControlRoutesGuard, open_to_network=control_open_to_network, faults=faults)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
