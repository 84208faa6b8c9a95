"""Events snapshot the object as it was and list newest first (CONTRACT §5)."""

from __future__ import annotations

import httpx

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, create_vietqr_payment, events_of, refund, types
from tests.notifications.vietqr_bank import transfer


async def test_events_snapshot_the_object_and_list_newest_first(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    clock.advance(5)
    await transfer(client, rt, clock, payment["provider_reference"], 100000)
    clock.advance(5)
    await transfer(client, rt, clock, payment["provider_reference"], 50000)
    clock.advance(5)
    refunded = await refund(client, merchant, payment["id"], amount=30000)
    assert refunded.status_code == 201, refunded.text

    events = await events_of(client, merchant)

    assert types(events) == [
        "refund.succeeded",
        "refund.created",
        "payment.succeeded",
        "payment.partially_paid",
        "payment.requires_action",
    ]
    assert [e["created_at"] for e in events] == sorted((e["created_at"] for e in events), reverse=True)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    by_type = {e["type"]: e for e in events}
    succeeded = by_type["payment.succeeded"]["data"]["object"]
    assert (succeeded["id"], succeeded["status"], succeeded["amount_received"]) == (
        payment["id"],
        "succeeded",
        150000,
    )
    assert succeeded["amount_refunded"] == 0  # as it was then, not as it is now
    assert "late" not in by_type["payment.succeeded"]
    partially = by_type["payment.partially_paid"]["data"]["object"]
    assert (partially["status"], partially["amount_received"]) == ("requires_action", 100000)
    assert by_type["payment.requires_action"]["data"]["object"]["amount_received"] == 0
    assert by_type["refund.created"]["data"]["object"]["status"] == "pending"
    assert by_type["refund.succeeded"]["data"]["object"]["status"] == "succeeded"

    filtered = await events_of(client, merchant, type="payment.succeeded")
    assert [e["id"] for e in filtered] == [by_type["payment.succeeded"]["id"]]
    one = await client.get(f"/v1/events/{filtered[0]['id']}", headers=merchant.headers)
    assert one.status_code == 200
    assert one.json() == filtered[0]
