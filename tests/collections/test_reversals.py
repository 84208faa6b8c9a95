"""§12 reversals: the same Vietnam business day, the money given back, allocations undone, receipt canceled."""

from __future__ import annotations

from datetime import date

import httpx

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.allocation.factories import balance_of, bill_row, make_bill, make_customer
from tests.collections.factories import BILLER, biller_with_partner
from tests.conftest import MerchantHandle, assert_problem, events_of, get_payment, ledger_of, refund, types
from tests.receipts.support import enable_receipts, receipts_of


async def test_a_reversal_the_same_day_undoes_everything_the_collection_did(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, clock: ManualClock
) -> None:
    await enable_receipts(client, merchant)
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    first = await make_bill(rt, merchant, customer, "HD-11", 100000, due=date(2026, 11, 15))
    second = await make_bill(rt, merchant, customer, "HD-12", 120000, due=date(2026, 12, 15))
    paid_at = "2026-11-22T09:59:00Z"
    accepted = (await partner.pay(BILLER, "PA01000123456", 250000, transaction_id="VCB-7", paid_at=paid_at)).json()
    assert accepted["balance_added"] == 30000
    clock.advance(6 * 3600 + 59 * 60)  # 23:59 in Vietnam: still the same business day

    response = await partner.reverse("VCB-7", "payer's account was debited twice")
    assert response.status_code == 200, response.text
    reversed_ = response.json()
    assert reversed_["status"] == "reversed"
    assert reversed_["reversal_reason"] == "payer's account was debited twice"
    assert reversed_["reversed_at"] == "2026-11-22T16:59:00Z"
    # What it did when accepted is still what it says it did.
    assert (reversed_["allocations"], reversed_["receipt_number"]) == (accepted["allocations"], "00000001")
    assert await bill_row(rt, first) == {"status": "open", "amount_paid": 0}
    assert await bill_row(rt, second) == {"status": "open", "amount_paid": 0}
    assert await balance_of(rt, customer) == 0

    payment = await get_payment(client, merchant, accepted["payment_id"])
    assert (payment["status"], payment["amount_refunded"]) == ("succeeded", 250000)
    ledger = await ledger_of(client, merchant, payment_id=payment["id"])
    (reversing,) = [t for t in ledger if t["kind"] == "refund_succeeded"]
    assert {(e["account"], e["direction"], e["amount"]) for e in reversing["entries"]} == {
        (f"merchant_payable:{merchant.id}", "debit", 250000),
        ("partner_clearing:VCB", "credit", 250000),
    }
    assert any(t["kind"] == "payment_received" for t in ledger)  # reversed, never deleted
    (receipt,) = await receipts_of(client, merchant, payment["id"])
    assert receipt["status"] == "canceled"
    events = await events_of(client, merchant)
    assert {"collection.reversed", "receipt.canceled", "refund.succeeded", "customer.balance_changed"} <= set(
        types(events)
    )
    (event,) = [e for e in events if e["type"] == "collection.reversed"]
    assert event["data"]["object"] == reversed_
    assert (await partner.status("VCB-7")).json() == reversed_
    # A replay of the original payment answers the collection as it is now; the merchant cannot refund it again.
    replay = await partner.pay(BILLER, "PA01000123456", 250000, transaction_id="VCB-7", paid_at=paid_at)
    assert (replay.status_code, replay.json()) == (200, reversed_)
    assert_problem(await refund(client, merchant, payment["id"]), 422, "refund_not_supported")

    again = await partner.reverse("VCB-7", "again")
    assert_problem(again, 409, "invalid_state")
    assert_problem(await partner.reverse("VCB-NEVER", "?"), 404, "not_found")


async def test_a_bill_paid_in_part_by_a_reversed_collection_goes_back_to_what_others_paid(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-11", 100000)
    assert (await partner.pay(BILLER, "PA01000123456", 30000, transaction_id="A")).status_code == 201
    assert (await partner.pay(BILLER, "PA01000123456", 70000, transaction_id="B")).status_code == 201
    assert await bill_row(rt, bill) == {"status": "paid", "amount_paid": 100000}
    assert (await partner.reverse("B", "cancelled by payer")).status_code == 200
    assert await bill_row(rt, bill) == {"status": "partially_paid", "amount_paid": 30000}
    assert "bill.partially_paid" in types(await events_of(client, merchant, type="bill.partially_paid"))


async def test_after_the_vietnam_business_day_the_reversal_window_is_closed(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, clock: ManualClock
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-11", 100000)
    assert (await partner.pay(BILLER, "PA01000123456", 100000, transaction_id="VCB-8")).status_code == 201
    clock.advance(7 * 3600)  # 17:00 UTC: midnight in Vietnam, the next business day (still 22 November in UTC)
    assert_problem(await partner.reverse("VCB-8", "too late"), 409, "reversal_window_closed")
    assert await bill_row(rt, bill) == {"status": "paid", "amount_paid": 100000}
    assert (await partner.status("VCB-8")).json()["status"] == "accepted"
