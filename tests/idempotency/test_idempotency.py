"""CONTRACT §2: replays, conflicts, concurrency, and convergence after a crash half-way."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from gateway.adapters.base import ProviderContext, StartPayment, StartRefund
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.idempotency.models import IdempotencyKey
from gateway.idempotency.service import fingerprint, purge_expired
from gateway.runtime import Runtime
from tests.conftest import (
    BASE_URL,
    MerchantHandle,
    create_merchant,
    create_vietqr_payment,
    make_settings,
    pay,
)

BODY = {"amount": 150000, "method": "vietqr", "reference": "EVN-PC-0001", "confirm": True}


async def _payments(client: httpx.AsyncClient, merchant: MerchantHandle) -> list[dict[str, object]]:
    return list((await client.get("/v1/payments", headers=merchant.headers)).json()["data"])


async def test_same_key_same_body_replays_the_first_response(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    headers = merchant.idem("order-1")
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    # Same JSON, other key order and spacing: canonically the same request.
    again = await client.post(
        "/v1/payments",
        content=b'{ "confirm": true, "reference": "EVN-PC-0001",  "method": "vietqr", "amount": 150000 }',
        headers={**headers, "content-type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await _payments(client, merchant)) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/payments", {**BODY, "amount": 150001}), ("/v1/refunds", {"payment_id": "pay_x"})],
)
async def test_same_key_other_request_is_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, path: str, body: dict[str, object]
) -> None:
    headers = merchant.idem("order-2")
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 201
    reused = await client.post(path, json=body, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(await _payments(client, merchant)) == 1


async def test_keys_are_scoped_to_the_merchant(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    other = await create_merchant(client, "Hanoi Water")
    a = await client.post("/v1/payments", json=BODY, headers=merchant.idem("shared-key"))
    b = await client.post("/v1/payments", json=BODY, headers=other.idem("shared-key"))
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert "idempotent-replayed" not in b.headers


async def test_concurrent_twins_make_one_payment(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    headers = merchant.idem("twins")
    responses = await asyncio.gather(*(client.post("/v1/payments", json=BODY, headers=headers) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_use"
    assert len(await _payments(client, merchant)) == 1


async def test_a_refusal_is_the_final_answer_for_its_key(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant)
    headers = merchant.idem("early-refund")
    early = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=headers)
    assert early.status_code == 409 and early.json()["code"] == "invalid_state"
    await pay(client, merchant, payment["id"])
    replay = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=headers)
    assert replay.status_code == 409
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"].startswith("application/problem+json")
    fresh = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())
    assert fresh.status_code == 201


async def test_keys_expire_after_the_retention_window(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: object
) -> None:
    headers = merchant.idem("daily")
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    clock.advance(25 * 3600)  # type: ignore[attr-defined]
    assert await purge_expired(rt) == 1
    second = await client.post("/v1/payments", json=BODY, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


async def test_replays_from_memory_and_from_the_database_agree(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, database_url: str, clock: ManualClock
) -> None:
    """A process answers its recent replays from memory; another process (no cache) reads the stored row."""
    headers = merchant.idem("two-processes")
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    assert rt.completed_responses.get(f"{merchant.id}/test", "two-processes") is not None
    other_app = create_app(make_settings(database_url, idempotency_replay_cache_seconds=0), clock=clock)
    async with (
        LifespanManager(other_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url=BASE_URL) as other,
    ):
        for c in (client, other):
            replay = await c.post("/v1/payments", json=BODY, headers=headers)
            assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
            assert replay.json() == first.json()
            reused = await c.post("/v1/payments", json={**BODY, "amount": 1}, headers=headers)
            assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
        assert other_app.state.runtime.completed_responses.get(f"{merchant.id}/test", "two-processes") is None
    clock.advance(301)  # the memory entry expires; the row still answers
    assert rt.completed_responses.get(f"{merchant.id}/test", "two-processes") is None
    replay = await client.post("/v1/payments", json=BODY, headers=headers)
    assert replay.json() == first.json() and replay.headers["idempotent-replayed"] == "true"
    assert len(await _payments(client, merchant)) == 1


class CrashOnce:
    """Fault injection: the process 'dies' right after the request committed its checkpoint."""

    def __init__(self) -> None:
        self.armed = True

    def fire(self) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("simulated crash after the checkpoint")


class NetworkedVietQR(VietQRAdapter):
    """VietQR as if starting a payment needed a network call, to exercise the checkpointed path."""

    name = "netqr"
    capabilities = replace(VietQRAdapter.capabilities, offline_start=False)

    def __init__(self, crash: CrashOnce) -> None:
        self.crash = crash
        self.starts = 0

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment):  # type: ignore[no-untyped-def]
        self.crash.fire()
        self.starts += 1
        return await super().start_payment(ctx, payment)


async def test_crash_between_payment_row_and_provider_call_converges(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The subclass inherits VietQR's sandbox declaration: test mode works for it as for any adapter.
    adapter = NetworkedVietQR(CrashOnce())
    rt.registry.register(adapter)
    body = {**BODY, "provider": "netqr"}
    headers = merchant.idem("crashy")

    crashed = await _post_expecting_500(client, "/v1/payments", body, headers)
    assert crashed.json()["code"] == "internal_error"
    # The payment row was committed before the provider call; the key remembers it.
    [orphan] = await _payments(client, merchant)
    assert orphan["status"] == "requires_confirmation"

    retried = await client.post("/v1/payments", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == orphan["id"]
    assert retried.json()["status"] == "requires_action"
    assert adapter.starts == 1
    assert len(await _payments(client, merchant)) == 1
    replay = await client.post("/v1/payments", json=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == retried.json()


async def test_crash_after_refund_row_converges_to_one_refund(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=90000)
    await pay(client, merchant, payment["id"])
    crash = CrashOnce()
    original = VietQRAdapter.refund

    async def crashing_refund(self: VietQRAdapter, ctx: ProviderContext, refund: StartRefund):  # type: ignore[no-untyped-def]
        crash.fire()
        return await original(self, ctx, refund)

    monkeypatch.setattr(VietQRAdapter, "refund", crashing_refund)
    headers = merchant.idem("refund-crash")
    body = {"payment_id": payment["id"], "amount": 40000}

    await _post_expecting_500(client, "/v1/refunds", body, headers)
    # Simulate a process that died holding the key: a twin must wait, not duplicate.
    async with rt.db.transaction() as session:
        await session.execute(
            text("UPDATE idempotency_keys SET locked_until = :until WHERE key = 'refund-crash'"),
            {"until": rt.clock.now().replace(tzinfo=None) if rt.db.is_sqlite else rt.clock.now()},
        )
    retried = await client.post("/v1/refunds", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "succeeded"
    refunds = (await client.get(f"/v1/refunds?payment_id={payment['id']}", headers=merchant.headers)).json()["data"]
    assert len(refunds) == 1 and refunds[0]["id"] == retried.json()["id"]
    paid = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert paid["amount_refunded"] == 40000


async def test_an_abandoned_key_is_in_use_until_its_lock_expires(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: object
) -> None:
    headers = merchant.idem("held")
    async with rt.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, recovery_point, locked_until,"
                " created_at) VALUES (:scope, 'held', 'POST', '/v1/payments', :fp, 'started', :until, :now)"
            ),
            {
                "scope": f"{merchant.id}/test",
                "fp": __import__("gateway.idempotency.service", fromlist=["fingerprint"]).fingerprint(
                    orjson.dumps(BODY)
                ),
                "until": _db_time(rt, 60),
                "now": _db_time(rt, 0),
            },
        )
    busy = await client.post("/v1/payments", json=BODY, headers=headers)
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_key_in_use"
    clock.advance(61)  # type: ignore[attr-defined]
    taken_over = await client.post("/v1/payments", json=BODY, headers=headers)
    assert taken_over.status_code == 201
    assert len(await _payments(client, merchant)) == 1


def _db_time(rt: Runtime, seconds: int) -> object:
    from datetime import timedelta

    value = rt.clock.now() + timedelta(seconds=seconds)
    return value.replace(tzinfo=None) if rt.db.is_sqlite else value


async def _post_expecting_500(
    client: httpx.AsyncClient, path: str, body: dict[str, object], headers: dict[str, str]
) -> httpx.Response:
    transport = client._transport  # the app under test, with app exceptions turned into responses
    assert isinstance(transport, httpx.ASGITransport)
    quiet = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, raise_app_exceptions=False),
        base_url=str(client.base_url),
    )
    async with quiet:
        response = await quiet.post(path, json=body, headers=headers)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    return response


async def test_a_409_twin_keeps_the_key_locked(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    async with rt.db.transaction() as session:  # request 1: checkpointed, in the middle of its provider call
        session.add(
            IdempotencyKey(
                scope=f"{merchant.id}/test",
                key="k1",
                method="POST",
                path="/v1/payments",
                fingerprint=fingerprint(orjson.dumps(BODY)),
                recovery_point="started",
                locked_until=rt.clock.now() + timedelta(seconds=60),
                owner="first",
                created_at=rt.clock.now(),
            )
        )
    headers = merchant.idem("k1")
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 409
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 409
    reused = await client.post("/v1/payments", json={**BODY, "amount": 1}, headers=headers)
    assert reused.status_code == 422
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 409
