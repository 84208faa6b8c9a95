"""CONTRACT §10: health, readiness, metrics, offline docs, the committed OpenAPI document, the database down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.clock import ManualClock
from tests.conftest import ADMIN, BASE_URL, MerchantHandle, create_vietqr_payment, make_settings

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert health.headers["x-request-id"]


async def test_metrics_count_requests_and_payments(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    await create_vietqr_payment(client, merchant)
    text = (await client.get("/metrics")).text
    assert 'gateway_http_requests_total{method="POST",route="/v1/payments",status="201"}' in text
    assert 'gateway_payments_total{method="vietqr",status="requires_action"} 1.0' in text
    assert "gateway_http_request_duration_seconds_bucket" in text


async def test_docs_are_served_without_internet(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html and "fonts.googleapis" not in html
    swagger = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert swagger.status_code == 200 and len(swagger.content) > 100_000


async def test_served_openapi_equals_the_committed_document(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(OPENAPI_FILE.read_text())
    assert served == committed, "run `gateway openapi --output openapi/openapi.json` and commit it"


@pytest.fixture
async def unreachable_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    # Nothing listens on port 1: every connection is refused, as when PostgreSQL is down.
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/gateway")
    app = create_app(settings, clock=ManualClock(), background=False)
    async with LifespanManager(app):
        yield app


async def test_database_down_answers_503_problems(unreachable_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=unreachable_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/problem+json")
        assert ready.headers["retry-after"] == "1"
        created = await client.post(
            "/v1/payments",
            json={"amount": 1000, "method": "vietqr", "reference": "X-1"},
            headers={"Authorization": "Bearer sk_test_abc", "Idempotency-Key": "k1"},
        )
        assert created.status_code == 503
        assert created.json()["code"] == "database_unavailable"
        assert "asyncpg" not in created.text and "SELECT" not in created.text
        merchants = await client.post("/v1/merchants", json={"name": "A", "category": "water"}, headers=ADMIN)
        assert merchants.status_code == 503


async def test_database_failing_mid_request_leaves_no_half_written_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from gateway.events import service as events

    async def database_gone(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO events", {}, ConnectionResetError("connection lost"))

    # The payment row is flushed, then writing its event fails: the whole transaction must roll back.
    monkeypatch.setattr("gateway.payments.service.record_event", database_gone)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as quiet:
        failed = await quiet.post(
            "/v1/payments",
            json={"amount": 1000, "method": "vietqr", "reference": "X-2", "confirm": True},
            headers=merchant.idem("half"),
        )
    assert failed.status_code == 503
    monkeypatch.undo()
    assert events.record_event is not None
    assert (await client.get("/v1/payments", headers=merchant.headers)).json()["data"] == []
    retried = await client.post(
        "/v1/payments",
        json={"amount": 1000, "method": "vietqr", "reference": "X-2", "confirm": True},
        headers=merchant.idem("half"),
    )
    assert retried.status_code == 201 and retried.json()["status"] == "requires_action"
