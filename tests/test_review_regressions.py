"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

from datetime import timedelta

import httpx
import orjson
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vietqr.wire import sign_bank_message
from gateway.app import build_runtime, create_app
from gateway.clock import ManualClock
from gateway.domain import EventType
from gateway.events.service import record_event
from gateway.idempotency.models import IdempotencyKey
from gateway.idempotency.service import fingerprint
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.webhooks.dispatcher import Dispatcher
from gateway.workers import sweep_once
from tests.conftest import BASE_URL, MerchantHandle, create_merchant, create_vietqr_payment, pay, sandbox_secrets

BODY = {"amount": 150000, "method": "vietqr", "reference": "R1", "confirm": True}


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


async def test_one_test_mode_row_does_not_jam_the_worker(
    client: httpx.AsyncClient, merchant: MerchantHandle, settings: Settings, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, payment["id"])
    await client.post("/sandbox/vietqr/_sandbox/lose-next-notifications", json={"count": 1})
    await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())
    clock.advance(61)
    worker = build_runtime(settings.model_copy(update={"sandbox": False}), clock)  # test mode off in the worker
    try:
        await sweep_once(worker)  # must neither raise nor stop on that row
        async with worker.db.transaction() as session:
            checks = (await session.execute(text("SELECT status_checks FROM refunds"))).scalar_one()
        assert checks == 1
    finally:
        await worker.db.dispose()
        await worker.provider_http.aclose()


async def test_a_backlogged_endpoint_does_not_starve_others(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    other = await create_merchant(client, "Other")
    for m in (merchant, other):
        await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:1/"}, headers=m.headers)
    async with rt.db.transaction() as session:
        for _ in range(250):
            await record_event(
                session, rt, merchant_id=merchant.id, livemode=False, type=EventType.payment_processing, obj={}
            )
    clock.advance(1)
    async with rt.db.transaction() as session:
        await record_event(session, rt, merchant_id=other.id, livemode=False, type=EventType.payment_processing, obj={})
    dispatcher = Dispatcher(rt, timeout=1.0)
    try:
        claimed = await dispatcher._claim()
    finally:
        await dispatcher.aclose()
    per_endpoint = {job.endpoint_id for job in claimed}
    assert len(claimed) == dispatcher.per_endpoint + 1 and len(per_endpoint) == 2


async def test_a_refund_confirmed_after_it_failed_succeeds_late(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=60000)
    await pay(client, merchant, payment["id"])
    await client.post("/sandbox/vietqr/_sandbox/fail-next-transfers", json={"count": 1})
    refund = (await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())).json()
    assert refund["status"] == "failed"
    # The bank's transfer went out after all: its completed debit notification must not be dropped.
    settings = VietQRAdapter.sandbox.settings
    body = orjson.dumps(
        {
            "transaction_id": "FT-LATE-1",
            "bank_bin": settings["bank_bin"],
            "account_number": settings["account_number"],
            "direction": "debit",
            "amount": 60000,
            "currency": "VND",
            "content": "Hoan tien",
            "request_id": refund["id"],
        }
    )
    timestamp = str(int(rt.clock.now().timestamp()))
    secret = sandbox_secrets(rt, "vietqr")["webhook_secret"]
    answer = await client.post(
        "/v1/providers/vietqr/notifications",
        content=body,
        headers={"x-bank-timestamp": timestamp, "x-bank-signature": sign_bank_message(secret, timestamp, body)},
    )
    assert answer.status_code == 200
    late = (await client.get(f"/v1/refunds/{refund['id']}", headers=merchant.headers)).json()
    assert late["status"] == "succeeded" and late["failure_code"] is None
    assert (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()[
        "amount_refunded"
    ] == 60000
    kinds = [
        t["kind"]
        for t in (
            await client.get(f"/v1/ledger/transactions?refund_id={refund['id']}", headers=merchant.headers)
        ).json()["data"]
    ]
    assert kinds == ["refund_succeeded"]


async def test_payments_paid_after_a_restart_are_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, settings: Settings, clock: ManualClock
) -> None:
    first = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, first["id"])
    restarted = create_app(settings, clock=clock, background=False)
    async with (
        LifespanManager(restarted),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url=BASE_URL) as second_client,
    ):
        second = await create_vietqr_payment(second_client, merchant)
        assert (await pay(second_client, merchant, second["id"])).json()["status"] == "succeeded"


async def test_odd_inputs_are_4xx_not_500(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    endpoint = (
        await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/"}, headers=merchant.headers)
    ).json()
    probes = [
        client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?starting_after=wha_{'9' * 30}", headers=merchant.headers
        ),
        client.get("/v1/payments?created_gte=0001-01-01T00:00:00%2B14:00", headers=merchant.headers),
        client.get("/v1/payments?created_lt=9999-12-31T23:59:59-14:00", headers=merchant.headers),
        client.get("/v1/payments/pay_%00abc", headers=merchant.headers),
        client.get("/v1/payments?reference=a%00b", headers=merchant.headers),
        client.post("/v1/payments", json={**BODY, "reference": "a\x00b"}, headers=merchant.idem()),
        client.post("/v1/payments/" + "x" * 300 + "/confirm", headers=merchant.idem()),
    ]
    for probe in probes:
        response = await probe
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text)
