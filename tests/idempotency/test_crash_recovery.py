"""CONTRACT §2 after crashes and outages: a key taken over is completed, a dead owner's lock lapses quickly, a
live owner keeps its key, and a database that is starting up answers 503 like any other outage."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gateway.adapters.base import ProviderContext, StartPayment, StartRefund
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.idempotency import service as idempotency
from gateway.runtime import Runtime
from tests.conftest import BASE_URL, MerchantHandle, create_vietqr_payment, make_settings, pay

BODY = {"amount": 150000, "method": "vietqr", "reference": "EVN-PC-0002", "confirm": True}


async def _key_row(rt: Runtime, key: str) -> dict[str, Any]:
    async with rt.db.transaction() as session:
        row = (
            await session.execute(
                text("SELECT owner, locked_until, response_status, resource_id FROM idempotency_keys WHERE key = :k"),
                {"k": key},
            )
        ).one()
    return dict(row._mapping)


@contextlib.asynccontextmanager
async def _cacheless_client(database_url: str, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """Another process, with no replay cache: it can only answer a replay from the stored row."""
    app = create_app(make_settings(database_url, idempotency_replay_cache_seconds=0), clock=clock, background=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        yield client


def _at(rt: Runtime, seconds: float) -> object:
    value = rt.clock.now() + timedelta(seconds=seconds)
    return value.replace(tzinfo=None) if rt.db.is_sqlite else value


async def _abandoned_key(rt: Runtime, merchant: MerchantHandle, key: str, path: str, body: dict[str, Any]) -> None:
    """The row a process leaves when it is killed past a checkpoint: unfinished, its lease run out."""
    async with rt.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, locked_until,"
                " owner, created_at) VALUES (:scope, :key, 'POST', :path, :fp, 'started', :until, 'dead-process',"
                " :now)"
            ),
            {
                "scope": f"{merchant.id}/test",
                "key": key,
                "path": path,
                "fp": idempotency.fingerprint(orjson.dumps(body)),
                "until": _at(rt, -1),
                "now": _at(rt, -5),
            },
        )


async def test_a_retry_that_takes_over_an_abandoned_key_completes_it(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, database_url: str, clock: ManualClock
) -> None:
    """The key of a process that died mid-request is taken over; the retry's answer is stored for every replay."""
    await _abandoned_key(rt, merchant, "abandoned", "/v1/payments", BODY)
    headers = merchant.idem("abandoned")
    taken_over = await client.post("/v1/payments", json=BODY, headers=headers)
    assert taken_over.status_code == 201, taken_over.text
    row = await _key_row(rt, "abandoned")
    assert row["response_status"] == 201 and row["locked_until"] is None
    assert row["owner"] != "dead-process"
    async with _cacheless_client(database_url, clock) as other:
        replay = await other.post("/v1/payments", json=BODY, headers=headers)
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == taken_over.json()


async def test_a_refusal_after_a_take_over_is_the_final_answer(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, database_url: str, clock: ManualClock
) -> None:
    """The retry that took over a dead attempt's key is refused (4xx): the refusal is stored, not run again."""
    payment = await create_vietqr_payment(client, merchant)  # not paid: a refund is refused
    body = {"payment_id": payment["id"]}
    await _abandoned_key(rt, merchant, "early-refund", "/v1/refunds", body)
    headers = merchant.idem("early-refund")
    refused = await client.post("/v1/refunds", json=body, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    assert (await _key_row(rt, "early-refund"))["response_status"] == 409
    await pay(client, merchant, payment["id"])
    async with _cacheless_client(database_url, clock) as other:
        replay = await other.post("/v1/refunds", json=body, headers=headers)
    assert replay.status_code == 409 and replay.headers.get("idempotent-replayed") == "true"


async def test_a_retry_after_a_crash_past_the_checkpoint_is_replayed_from_the_database(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    rt: Runtime,
    database_url: str,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=90000)
    await pay(client, merchant, payment["id"])
    original, crashes = VietQRAdapter.refund, [RuntimeError("simulated crash after the checkpoint")]

    async def crash_once(self: VietQRAdapter, ctx: ProviderContext, refund: StartRefund) -> Any:
        if crashes:
            raise crashes.pop()
        return await original(self, ctx, refund)

    monkeypatch.setattr(VietQRAdapter, "refund", crash_once)
    headers = merchant.idem("refund-after-crash")
    body = {"payment_id": payment["id"], "amount": 40000}
    quiet = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client._transport.app, raise_app_exceptions=False),  # type: ignore[attr-defined]
        base_url=BASE_URL,
    )
    async with quiet:
        crashed = await quiet.post("/v1/refunds", json=body, headers=headers)
    assert crashed.status_code == 500
    first_owner = (await _key_row(rt, "refund-after-crash"))["owner"]
    retried = await client.post("/v1/refunds", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    row = await _key_row(rt, "refund-after-crash")
    assert row["response_status"] == 201 and row["locked_until"] is None and row["owner"] != first_owner
    async with _cacheless_client(database_url, clock) as other:
        replay = await other.post("/v1/refunds", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == retried.json()
    refunds = (await client.get(f"/v1/refunds?payment_id={payment['id']}", headers=merchant.headers)).json()["data"]
    assert [r["id"] for r in refunds] == [retried.json()["id"]]


class NetworkedVietQR(VietQRAdapter):
    """VietQR as if starting a payment needed a network call, so the request checkpoints around it."""

    name = "netqr"
    capabilities = replace(VietQRAdapter.capabilities, offline_start=False)

    def __init__(self) -> None:
        self.starts = 0
        self.during_call: Any = None  # an async callable run while the 'provider' is being asked

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> Any:
        self.starts += 1
        if self.during_call is not None:
            action, self.during_call = self.during_call, None
            await action()
        return await super().start_payment(ctx, payment)


@pytest.fixture
def netqr(rt: Runtime) -> NetworkedVietQR:
    # A subclass inherits VietQR's sandbox declaration: test mode works for it as it is.
    adapter = NetworkedVietQR()
    rt.registry.register(adapter)
    return adapter


def _dead_database_url(rt: Runtime, tmp_path: Any) -> str:
    if rt.db.is_sqlite:
        return f"sqlite+aiosqlite:///{tmp_path}/no-such-directory/gateway.db"
    return "postgresql+asyncpg://postgres@127.0.0.1:1/gateway"  # nothing listens on port 1


async def test_a_5xx_while_the_database_is_down_leaves_no_lasting_lock(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    rt: Runtime,
    clock: ManualClock,
    netqr: NetworkedVietQR,
    tmp_path: Any,
) -> None:
    """The database goes away while the provider is being asked: the answer is a 503, the release cannot reach
    the database either, and yet a retry a few seconds after the database is back runs again."""
    working = rt.db.sessionmaker
    dead = create_async_engine(_dead_database_url(rt, tmp_path))

    async def database_goes_down() -> None:
        rt.db.sessionmaker = async_sessionmaker(dead, expire_on_commit=False, autoflush=False)

    netqr.during_call = database_goes_down
    body = {**BODY, "provider": "netqr"}
    headers = merchant.idem("outage")
    try:
        down = await client.post("/v1/payments", json=body, headers=headers)
    finally:
        rt.db.sessionmaker = working
        await dead.dispose()
    assert down.status_code == 503, down.text
    assert down.json()["code"] == "database_unavailable" and down.headers["retry-after"]
    clock.advance(10)  # nothing is in flight: the key must not stay locked for a minute
    retried = await client.post("/v1/payments", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "requires_action"
    listed = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert [p["id"] for p in listed] == [retried.json()["id"]]
    assert netqr.starts == 2  # the first call's answer was never recorded; the retry asked again


async def test_a_live_owner_keeps_its_key_past_the_lease(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    rt: Runtime,
    clock: ManualClock,
    netqr: NetworkedVietQR,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow provider call outlives any fixed lock: the owner renews its lease, so a twin still waits."""
    monkeypatch.setattr(idempotency, "RENEW_EVERY_SECONDS", 0.05, raising=False)
    provider_answers = asyncio.Event()
    renewed = asyncio.Event()

    async def slow_provider() -> None:
        clock.advance(120)  # longer than any lock a dead owner may keep
        await asyncio.sleep(0.5)  # real time for the owner to renew its lease
        renewed.set()
        await provider_answers.wait()

    netqr.during_call = slow_provider
    body = {**BODY, "provider": "netqr"}
    headers = merchant.idem("slow")
    first = asyncio.create_task(client.post("/v1/payments", json=body, headers=headers))
    await asyncio.wait_for(renewed.wait(), 10)
    twin = await asyncio.wait_for(client.post("/v1/payments", json=body, headers=headers), 10)
    assert twin.status_code == 409, twin.text
    assert twin.json()["code"] == "idempotency_key_in_use"
    provider_answers.set()
    answered = await asyncio.wait_for(first, 10)
    assert answered.status_code == 201, answered.text
    replay = await client.post("/v1/payments", json=body, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == answered.json()
    assert netqr.starts == 1


# --- a PostgreSQL that is starting up -------------------------------------------------------------------------


def _error_response(sqlstate: str, message: str) -> bytes:
    fields = b"SFATAL\0VFATAL\0C" + sqlstate.encode() + b"\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


@contextlib.asynccontextmanager
async def _postgres_starting_up(message: str) -> AsyncIterator[int]:
    """A server speaking just enough of PostgreSQL's protocol to refuse every connection as a starting one."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = struct.unpack("!I", await reader.readexactly(4))[0]
                payload = await reader.readexactly(length - 4)
                if struct.unpack("!I", payload[:4])[0] == 80877103:  # SSLRequest: no TLS here
                    writer.write(b"N")
                    await writer.drain()
                    continue
                writer.write(_error_response("57P03", message))
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "message", ["the database system is starting up", "the database system is not yet accepting connections"]
)
async def test_a_database_that_is_starting_up_answers_503(message: str, clock: ManualClock) -> None:
    async with _postgres_starting_up(message) as port:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/gateway"
        app = create_app(make_settings(url), clock=clock, background=False)
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=BASE_URL
            ) as client,
        ):
            auth = {"Authorization": "Bearer sk_test_whatever", "Idempotency-Key": "k1"}
            for response in (
                await client.get("/v1/payments", headers=auth),
                await client.post("/v1/payments", json=BODY, headers=auth),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.json()["code"] == "database_unavailable"
                assert response.headers["retry-after"]
                assert "Traceback" not in response.text and "57P03" not in response.text
            ready = await client.get("/readyz")
            assert ready.status_code == 503
