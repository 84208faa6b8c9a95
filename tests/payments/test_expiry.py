"""Payments expire on read and by the sweeper; a succeeded payment never goes back."""

from __future__ import annotations

import httpx

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from gateway.workers import sweep_once
from tests.conftest import MerchantHandle, create_vietqr_payment, events_of, get_payment, pay, sql


async def test_expiry_is_checked_on_read(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    read_one = await create_vietqr_payment(client, merchant, amount=150000)
    listed_one = await create_vietqr_payment(client, merchant, amount=90000)
    clock.advance(899)
    assert (await get_payment(client, merchant, read_one["id"]))["status"] == "requires_action"

    clock.advance(2)

    got = await get_payment(client, merchant, read_one["id"])
    assert got["status"] == "expired"
    assert got["next_action"] is None
    listing = await client.get("/v1/payments", headers=merchant.headers)
    assert listing.status_code == 200
    statuses = {p["id"]: p["status"] for p in listing.json()["data"]}
    assert statuses == {read_one["id"]: "expired", listed_one["id"]: "expired"}
    expired_filter = await client.get("/v1/payments?status=expired", headers=merchant.headers)
    assert {p["id"] for p in expired_filter.json()["data"]} == {read_one["id"], listed_one["id"]}
    assert len(await events_of(client, merchant, type="payment.expired")) == 2


async def test_the_sweeper_expires_due_payments_only(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    due = [await create_vietqr_payment(client, merchant, amount=150000) for _ in range(2)]
    later = await create_vietqr_payment(client, merchant, amount=150000, expires_in=3600)
    clock.advance(901)

    assert await sweep_once(rt) == 2

    rows = await sql(rt, "SELECT id, status FROM payments")
    assert {r["id"]: r["status"] for r in rows} == {
        due[0]["id"]: "expired",
        due[1]["id"]: "expired",
        later["id"]: "requires_action",
    }
    expired_events = await events_of(client, merchant, type="payment.expired")
    assert sorted(e["data"]["object"]["id"] for e in expired_events) == sorted(p["id"] for p in due)
    assert await sweep_once(rt) == 0
    assert (await get_payment(client, merchant, later["id"]))["status"] == "requires_action"


async def test_a_succeeded_payment_never_goes_back(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])

    cancel = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=merchant.headers)
    confirm = await client.post(f"/v1/payments/{payment['id']}/confirm", headers=merchant.headers)

    assert cancel.status_code == 409, cancel.text
    assert cancel.json()["code"] == "invalid_state"
    assert confirm.status_code == 409, confirm.text
    assert confirm.json()["code"] == "invalid_state"
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert await events_of(client, merchant, type="payment.canceled") == []
