"""Every test runs on SQLite and on PostgreSQL, each database built by the Alembic migrations.

SQLite: a migrated template file is copied for each test. PostgreSQL: one database per run (created and
dropped here), its tables truncated before each test. After each test the ledger must balance.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.adapters.testmode import Sandboxed
from gateway.app import create_app
from gateway.bills.repository import allocation_mismatches
from gateway.clock import ManualClock
from gateway.ledger.service import find_imbalances
from gateway.migrate import upgrade
from gateway.models import Base
from gateway.runtime import Runtime
from gateway.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [b.strip() for b in os.environ.get("GATEWAY_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]
REQUIRE_POSTGRES = os.environ.get("CI") == "true" or os.environ.get("GATEWAY_TEST_REQUIRE_POSTGRES") == "1"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
ADMIN_TOKEN = "adm_test_token"
BASE_URL = "http://gateway.test"
# A live VietQR account a merchant can PUT (the sandbox bank's shape, the merchant's own numbers).
VIETQR_LIVE = {
    "bank_bin": "970436",
    "account_number": "1017595600",
    "account_name": "BENH VIEN BACH MAI",
    "webhook_secret": "whsec-live-1",
}
# Idempotency-Key headers every idempotent route refuses with 400 idempotency_key_invalid.
INVALID_KEYS = [
    pytest.param("k" * 256, id="256-chars"),
    pytest.param("clé-thanh-toán-1".encode(), id="non-ascii"),
    pytest.param("", id="empty"),
]


async def _admin_execute(*statements: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _postgres_available() -> str | None:
    try:
        asyncio.run(_admin_execute("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this run: a template file (SQLite) or a fresh database (PostgreSQL)."""
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("sqlite") / "template.db"
        upgrade(f"sqlite+aiosqlite:///{template}")
        yield str(template)
        return
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"gateway_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# For a test whose subject does not depend on the database engine and that is slow (whole processes, a thousand
# payments): it runs on PostgreSQL, the production database, only.
postgresql_only = pytest.mark.parametrize("migrated_database", ["postgresql"], indirect=True)


# Every table the models declare, so a new one is truncated too (CASCADE takes care of the order).
TABLES = ", ".join(table.name for table in reversed(Base.metadata.sorted_tables))


@pytest.fixture
async def database_url(migrated_database: str, tmp_path: Path) -> str:
    if migrated_database.startswith("postgresql"):
        engine = create_async_engine(migrated_database)
        async with engine.begin() as conn:
            # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE of every table costs ~400 ms (new files
            # for each table) where DELETE costs ~10 ms. Triggers (the ledger's append-only guard, foreign keys)
            # are off for this transaction only: the tables are emptied in any order.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in TABLES.split(", "):
                await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - names from the models
        await engine.dispose()
        return migrated_database
    path = tmp_path / "gateway.db"
    shutil.copy(migrated_database, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": SECRET_KEY,
        "admin_token": ADMIN_TOKEN,
        "public_url": BASE_URL,
        "env": "development",
        "access_log": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock, background=False)
    async with LifespanManager(application):
        yield application
        rt: Runtime = application.state.runtime
        async with rt.db.transaction() as session:
            assert await find_imbalances(session) == [], "the ledger must balance after every test"
            assert await allocation_mismatches(session) == [], "customers' funds must be fully allocated"


@pytest.fixture
def rt(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c:
        yield c


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class MerchantHandle:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def idem(self, key: str | None = None) -> dict[str, str]:
        return {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def create_merchant(client: httpx.AsyncClient, name: str = "Bach Mai Hospital") -> MerchantHandle:
    response = await client.post("/v1/merchants", json={"name": name, "category": "hospital"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body = response.json()
    return MerchantHandle(id=body["id"], key=body["api_key"]["secret"])


@pytest.fixture
async def merchant(client: httpx.AsyncClient) -> MerchantHandle:
    return await create_merchant(client)


async def create_vietqr_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, amount: int = 150000, **extra: Any
) -> dict[str, Any]:
    body = {"amount": amount, "method": "vietqr", "reference": "HIS-2026-000123", "confirm": True, **extra}
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pay(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str, **body: Any) -> httpx.Response:
    return await client.post(
        f"/v1/test-helpers/payments/{payment_id}/pay",
        json={"outcome": "success", **body},
        headers=merchant.headers,
    )


def sandbox_secrets(rt: Runtime, provider: str) -> dict[str, str]:
    """The secrets of the shared sandbox account the provider's adapter declares (as its simulator has them)."""
    adapter = rt.registry.get(provider)
    assert isinstance(adapter, Sandboxed)
    return adapter.sandbox.secrets(provider, rt.secret_box.derive_token)


async def sql(rt: Runtime, statement: str, **params: Any) -> list[dict[str, Any]]:
    async with rt.db.transaction() as session:
        result = await session.execute(text(statement), params)
        return [dict(row._mapping) for row in result]


async def get_payment(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/payments/{payment_id}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger_of(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/ledger/transactions", params={**query, "limit": "100"}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def events_of(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={**query, "limit": "100"}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def refund(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/refunds", json={"payment_id": payment_id, **body}, headers=merchant.idem())


def assert_problem(
    response: httpx.Response, status: int, code: str, loc: list[str | int] | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert isinstance(body.get("request_id"), str) and body["request_id"], body
    assert "Traceback" not in response.text
    if code == "validation_error":
        assert loc is not None, "a validation case must name the field it expects in errors[*].loc"
    if loc is not None:
        locs = [list(e["loc"]) for e in body["errors"]]
        assert any(found[: len(loc)] == loc for found in locs), f"expected loc {loc} in {locs}"
    return body


async def paid_payment(client: httpx.AsyncClient, merchant: MerchantHandle, amount: int = 150000) -> dict[str, Any]:
    payment = await create_vietqr_payment(client, merchant, amount=amount)
    paid = await pay(client, merchant, payment["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded"
    return dict(paid.json())


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def new_key(client: httpx.AsyncClient, merchant_id: str, mode: str) -> dict[str, Any]:
    response = await client.post(f"/v1/merchants/{merchant_id}/api-keys", json={"mode": mode}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def ids_listed(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[str]:
    response = await client.get(path, params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


# The suite runs on two xdist workers (README): tests that take tens of seconds each (server processes, crash
# runs, the fuzzer) go first, so the two workers finish together instead of one running them alone at the end.
_SLOW_FIRST = (
    "tests/resilience/",
    "tests/test_schemathesis.py",
    "tests/test_readme.py",
    "tests/ops/test_metrics_workers.py",
    "tests/test_bench_smoke.py",
    "tests/receipts/test_numbering.py",
    "tests/idempotency/test_crash_recovery.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def slow(item: pytest.Item) -> bool:
        return any(item.nodeid.startswith(prefix) for prefix in _SLOW_FIRST)

    items.sort(key=lambda item: not slow(item))  # stable: the order within each group is kept
