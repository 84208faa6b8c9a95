"""The janitor settles what a lost notification left open, through the same path as a notification."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from gateway.app import build_runtime
from gateway.clock import ManualClock
from gateway.janitor import check_refunds_once, next_check
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.workers import sweep_once
from tests.conftest import MerchantHandle, create_vietqr_payment, pay


def test_backoff_schedule() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, tzinfo=UTC)
    delays = [(next_check(now, n) - now).total_seconds() for n in range(7)]
    assert delays == [60, 300, 1800, 7200, 21600, 21600, 21600]


async def test_a_refund_whose_bank_notification_was_lost_is_settled_by_asking(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=80000)
    await pay(client, merchant, payment["id"])
    lost = await client.post("/sandbox/vietqr/_sandbox/lose-next-notifications", json={"count": 1})
    assert lost.status_code == 200
    refund = (await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())).json()
    assert refund["status"] == "pending"

    assert await check_refunds_once(rt) == 0  # not due yet
    clock.advance(61)
    assert await check_refunds_once(rt) == 1
    settled = (await client.get(f"/v1/refunds/{refund['id']}", headers=merchant.headers)).json()
    assert settled["status"] == "succeeded"
    assert (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()[
        "amount_refunded"
    ] == 80000
    kinds = [
        t["kind"]
        for t in (
            await client.get(f"/v1/ledger/transactions?refund_id={refund['id']}", headers=merchant.headers)
        ).json()["data"]
    ]
    assert kinds == ["refund_succeeded"]
    events = [
        e["type"]
        for e in (await client.get("/v1/events?type=refund.succeeded", headers=merchant.headers)).json()["data"]
    ]
    assert events == ["refund.succeeded"]
    clock.advance(400)
    assert await check_refunds_once(rt) == 0  # settled: no longer checked
    async with rt.db.transaction() as session:
        due = (await session.execute(text("SELECT next_status_check_at FROM refunds"))).scalar_one()
    assert due is None


async def test_a_card_payment_whose_ipn_was_lost_is_settled_and_the_late_ipn_is_a_no_op(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    from gateway.janitor import check_payments_once

    payment = (
        await client.post(
            "/v1/payments",
            headers=merchant.idem(),
            json={"amount": 250000, "method": "card", "reference": "HIS-CARD-1", "confirm": True},
        )
    ).json()
    assert payment["provider"] == "vnpay" and payment["status"] == "requires_action"
    await client.post("/sandbox/vnpay/_sandbox/faults", json={"fault": "ipn_lost", "count": 1})
    paid_at_vnpay = (
        await client.post(
            "/sandbox/vnpay/_sandbox/pay", json={"payment_url": payment["next_action"]["url"], "outcome": "success"}
        )
    ).json()
    still = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert still["status"] == "requires_action"  # the IPN never came

    assert await check_payments_once(rt) == 0  # first check is a minute after it became payable
    clock.advance(61)
    assert await check_payments_once(rt) == 1
    settled = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert settled["status"] == "succeeded" and settled["amount_received"] == 250000

    # VNPAY retries the lost IPN later (its fields are those of the signed browser return): a duplicate.
    query = paid_at_vnpay["return_url"].split("?", 1)[1]
    late = await client.get(f"/v1/providers/vnpay/notifications?{query}")
    assert late.json()["RspCode"] == "02"
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["amount_received"] == 250000
    ledger = (await client.get(f"/v1/ledger/transactions?payment_id={payment['id']}", headers=merchant.headers)).json()
    assert len(ledger["data"]) == 1
    clock.advance(400)
    assert await check_payments_once(rt) == 0  # succeeded: no longer checked


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
