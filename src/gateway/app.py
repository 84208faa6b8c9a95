"""create_app(settings): routers, middleware, error handlers — nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import ssl
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr

from gateway import __version__
from gateway.adapters.registry import installed_registry
from gateway.bills.api import router as bills_router
from gateway.bills.schemas import BillImport
from gateway.clock import Clock, IdGenerator, SystemClock
from gateway.collections.api import router as collections_router
from gateway.collections.schemas import CollectionCreate, InquiryRequest, ReversalCreate
from gateway.crypto import SecretBox
from gateway.customers.api import router as customers_router
from gateway.db import Database, create_engine
from gateway.errors import install_error_handlers
from gateway.events.api import router as events_router
from gateway.idempotency.cache import CompletedResponses
from gateway.ledger.api import router as ledger_router
from gateway.merchants.api import router as merchants_router
from gateway.middleware import RequestContextMiddleware
from gateway.notifications.api import router as notifications_router
from gateway.observability import Metrics, configure_logging
from gateway.openapi import install_openapi
from gateway.ops.api import router as ops_router
from gateway.org_units.api import router as org_units_router
from gateway.partners.api import router as partners_router
from gateway.payments.api import router as payments_router
from gateway.receipts.api import router as receipts_router
from gateway.refunds.api import router as refunds_router
from gateway.reports.api import router as reports_router
from gateway.runtime import ApiKeyCache, Runtime
from gateway.sandbox.api import router as test_helpers_router
from gateway.sandbox.app import create_sandbox_app, in_process_caller
from gateway.settings import Settings
from gateway.webhooks.api import router as webhooks_router
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.openapi import document_webhooks
from gateway.webhooks.service import enqueue_batch_deliveries, enqueue_deliveries
from gateway.workers import run_periodically

DESCRIPTION = """
One API for every way a citizen pays a public service in Vietnam: VietQR bank transfers today; cards,
e-wallets, telco mobile money and the national public-service payment platform through the same routes.

* Amounts are integers in the currency's minor unit (VND has none: `150000` is 150,000 đồng).
* Every POST takes an `Idempotency-Key`; `POST /v1/payments` and `POST /v1/refunds` require one.
* Errors are RFC 9457 problem documents with a stable `code`.
* Lists are newest first and page with `starting_after` (keyset: every page costs the same).
* Where the contract is silent the gateway does what Stripe's API does: e.g. malformed JSON is a
  400 `malformed_json`, a refusal after a request was accepted is stored and replayed under its key, and
  funds arriving for an expired or canceled payment make it succeed with `late: true` on its event even
  when they fall short (so the money stays refundable).
"""


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    secret_box = SecretBox(settings.master_secret)
    if settings.admin_token is None and settings.is_development:
        # Development works out of the box: a stable admin token derived from the local secret.
        settings.admin_token = SecretStr("adm_" + secret_box.derive_token("development-admin-token", 32))
    timeout = httpx.Timeout(settings.provider_timeout_seconds, connect=5.0)
    return Runtime(
        settings=settings,
        db=Database(create_engine(settings.database_url, pool_size=settings.db_pool_size)),
        clock=clock,
        ids=IdGenerator(clock),
        registry=installed_registry(),
        secret_box=secret_box,
        metrics=Metrics(),
        sandbox_base_url=_sandbox_base_url(settings),
        api_keys=ApiKeyCache(settings.api_key_cache_seconds),
        completed_responses=CompletedResponses(clock, settings.idempotency_replay_cache_seconds),
        provider_http=httpx.AsyncClient(
            timeout=timeout, headers={"user-agent": f"public-payments-gateway/{__version__}"}, verify=tls_context()
        ),
        event_subscribers=[enqueue_deliveries],  # each event is queued for the endpoints subscribed to it
        event_batch_subscribers=[enqueue_batch_deliveries],  # the same for events recorded in bulk (imports)
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The trust store providers are verified against, loaded once per process (httpx's default: certifi, or
    SSL_CERT_FILE): loading it costs ~80 ms, which every app and client would pay again."""
    return httpx.create_ssl_context()


def _sandbox_base_url(settings: Settings) -> str | None:
    """Where test mode's simulators are: their own process, or /sandbox on the serving gateway (which a worker
    process reaches over HTTP at the public URL)."""
    if not settings.sandbox:
        return None
    return (settings.sandbox_url or f"{settings.public_url.rstrip('/')}/sandbox").rstrip("/")


_FROZEN = False


def _freeze_startup_objects() -> None:
    """Once per process: what start-up left alive (modules, the app, the pydantic schemas: most of the heap) goes
    out of the cyclic collector's reach, so its full collections no longer walk it — a bulk import allocates
    enough to run several, 0.25 s of a 10,000-row request's CPU before (bench S6)."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, background: bool | None = None
) -> FastAPI:
    settings = settings or Settings()
    # Here and not only in the CLI: `serve --workers N` starts fresh processes that import only this factory.
    configure_logging(settings.log_level)
    rt = build_runtime(settings, clock)
    run_background = settings.is_development if background is None else background

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        dispatcher = Dispatcher(rt) if run_background else None
        tasks = (
            [
                asyncio.create_task(run_periodically(rt, stop)),
                asyncio.create_task(dispatcher.run_forever(stop)),
            ]
            if dispatcher is not None
            else []
        )
        _freeze_startup_objects()
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            if dispatcher is not None:
                await dispatcher.aclose()
            await rt.provider_http.aclose()
            sandbox_http = getattr(_app.state, "sandbox_http", None)
            if sandbox_http is not None:
                await sandbox_http.aclose()
            await rt.db.dispose()

    app = FastAPIOffline(
        title="Public services payment gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    install_error_handlers(app)
    for router in (
        payments_router,
        refunds_router,
        customers_router,
        bills_router,
        events_router,
        webhooks_router,
        ledger_router,
        merchants_router,
        receipts_router,
        partners_router,
        org_units_router,
        reports_router,
        collections_router,
        notifications_router,
        test_helpers_router,
        ops_router,
    ):
        app.include_router(router)
    document_webhooks(app, settings)
    install_openapi(app, request_models=[BillImport, InquiryRequest, CollectionCreate, ReversalCreate])
    if settings.sandbox:
        _attach_sandbox(app, rt)
    app.add_middleware(RequestContextMiddleware, metrics=rt.metrics, access_log=settings.access_log)
    return app


class InProcessTransport(httpx.ASGITransport):
    """ASGITransport ignores timeouts; a simulator reached in-process must time out as it would over a socket,
    so test mode exercises the same timeout handling as live mode."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        limit = timeouts.get("read") or timeouts.get("pool")
        if not limit:
            return await super().handle_async_request(request)
        try:
            async with asyncio.timeout(float(limit)):
                return await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout("in-process call timed out", request=request) from None


def _attach_sandbox(app: FastAPI, rt: Runtime) -> None:
    """Test mode talks to the simulators over HTTP. Unless a separate sandbox is configured, they are mounted
    here at /sandbox and reached in-process: calls to the gateway's public URL (the simulators, and their
    callbacks to the gateway) never leave the process, yet go through the full HTTP stack."""
    if rt.settings.sandbox_url:
        return
    public = rt.settings.public_url.rstrip("/")
    in_process = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=public, timeout=rt.provider_http.timeout
    )
    rt.provider_http = httpx.AsyncClient(
        verify=tls_context(),
        timeout=rt.provider_http.timeout,
        headers=rt.provider_http.headers,
        mounts={public: InProcessTransport(app=in_process_caller(app))},
    )
    development = rt.settings.is_development
    sandbox = create_sandbox_app(
        rt.registry,
        rt.secret_box,
        public,
        in_process,
        rt.clock,
        control_open_to_network=development,
        faults=development,
    )
    app.mount("/sandbox", sandbox)
    app.state.sandbox = sandbox
    app.state.sandbox_http = in_process
