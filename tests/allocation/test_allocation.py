"""§11 allocation: every source of funds lands on the right bill exactly once, the rest on the balance."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from gateway.adapters.testmode import Sandboxed
from gateway.adapters.vietqr.wire import customer_payment_code
from gateway.clock import ManualClock
from gateway.customers.service import transfer_codes
from gateway.domain import AmountRule
from gateway.runtime import Runtime
from tests.allocation.factories import balance_of, bill_row, execute, make_bill, make_customer
from tests.conftest import (
    MerchantHandle,
    assert_problem,
    events_of,
    get_payment,
    ledger_of,
    pay,
    refund,
    sql,
    types,
)
from tests.notifications.vietqr_bank import bank_notification, send_notification
from tests.notifications.vietqr_bank import transfer as bank_transfer


async def transfer(client: httpx.AsyncClient, merchant: MerchantHandle, customer_id: str, amount: int) -> dict:
    response = await client.post(
        f"/v1/test-helpers/customers/{customer_id}/transfer", json={"amount": amount}, headers=merchant.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pay_bill(
    client: httpx.AsyncClient, merchant: MerchantHandle, bill_id: str, **extra: object
) -> httpx.Response:
    body = {"method": "vietqr", "bill_id": bill_id, "confirm": True, **extra}
    return await client.post("/v1/payments", json=body, headers=merchant.idem())


async def test_a_payment_for_a_bill_defaults_to_what_remains_and_pays_it(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-2026-11-001", 300000)
    created = await pay_bill(client, merchant, bill)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert (payment["amount"], payment["reference"], payment["bill_id"]) == (300000, "HD-2026-11-001", bill)
    assert (payment["customer_id"], payment["channel"]) == (customer, "online")

    assert (await pay(client, merchant, payment["id"], amount=100000)).status_code == 200
    assert await bill_row(rt, bill) == {"status": "partially_paid", "amount_paid": 100000}
    assert (await pay(client, merchant, payment["id"], amount=250000)).status_code == 200
    # The bill takes what remains; the 50,000 surplus becomes the customer's credit.
    assert await bill_row(rt, bill) == {"status": "paid", "amount_paid": 300000}
    assert await balance_of(rt, customer) == 50000
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"
    seen = types(await events_of(client, merchant))
    assert seen.count("bill.partially_paid") == 1 and seen.count("bill.paid") == 1
    assert "customer.balance_changed" in seen
    credit = [
        e
        for t in await ledger_of(client, merchant, payment_id=payment["id"])
        if t["kind"] == "customer_credit_added"
        for e in t["entries"]
    ]
    assert {(e["account"], e["direction"], e["amount"]) for e in credit} == {
        (f"merchant_payable:{merchant.id}", "debit", 50000),
        (f"customer_credit:{merchant.id}", "credit", 50000),
    }


@pytest.mark.parametrize(
    ("rule", "amount", "allowed"),
    [
        (AmountRule.exact, 100000, False),
        (AmountRule.exact, 300000, True),
        (AmountRule.partial, 100000, True),
        (AmountRule.partial, 300001, False),
        (AmountRule.any, 500000, True),
    ],
)
async def test_the_amount_rule_decides_what_a_payment_naming_the_bill_may_pay(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, rule: AmountRule, amount: int, allowed: bool
) -> None:
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-1", 300000, rule=rule)
    response = await pay_bill(client, merchant, bill, amount=amount)
    if allowed:
        assert response.status_code == 201, response.text
    else:
        assert_problem(response, 422, "amount_not_allowed")
        assert await sql(rt, "SELECT id FROM payments") == []


async def test_a_paid_or_void_bill_is_not_payable_and_an_unknown_one_is_not_found(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-1", 100000)
    payment = (await pay_bill(client, merchant, bill)).json()
    assert (await pay(client, merchant, payment["id"])).status_code == 200
    assert_problem(await pay_bill(client, merchant, bill), 409, "bill_not_payable")
    await execute(rt, "UPDATE bills SET status = 'void' WHERE id = :id", id=bill)
    assert_problem(await pay_bill(client, merchant, bill), 409, "bill_not_payable")
    assert_problem(await pay_bill(client, merchant, "bill_01NOSUCHBILL"), 404, "not_found")


async def test_without_a_bill_amount_and_reference_are_required(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    no_amount = {"method": "vietqr", "reference": "X"}
    assert_problem(
        await client.post("/v1/payments", json=no_amount, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "amount"],
    )
    no_reference = {"method": "vietqr", "amount": 1000}
    assert_problem(
        await client.post("/v1/payments", json=no_reference, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "reference"],
    )


async def test_a_static_qr_transfer_pays_the_oldest_due_bills_first_and_keeps_the_rest(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    newer = await make_bill(rt, merchant, customer, "HD-12", 200000, due=date(2026, 12, 15))
    older = await make_bill(rt, merchant, customer, "HD-11", 150000, due=date(2026, 11, 15))
    undated = await make_bill(rt, merchant, customer, "HD-X", 50000)

    payment = await transfer(client, merchant, customer, 300000)
    assert (payment["status"], payment["method"], payment["bill_id"]) == ("succeeded", "vietqr", None)
    assert (payment["customer_id"], payment["amount_received"]) == (customer, 300000)
    assert await bill_row(rt, older) == {"status": "paid", "amount_paid": 150000}
    assert await bill_row(rt, newer) == {"status": "partially_paid", "amount_paid": 150000}
    assert await bill_row(rt, undated) == {"status": "open", "amount_paid": 0}

    await transfer(client, merchant, customer, 200000)
    assert await bill_row(rt, newer) == {"status": "paid", "amount_paid": 200000}
    assert await bill_row(rt, undated) == {"status": "paid", "amount_paid": 50000}
    assert await balance_of(rt, customer) == 100000

    # A new bill takes the balance at once, attributed to the payment the credit came from.
    later = await make_bill(rt, merchant, customer, "HD-01", 80000, due=date(2027, 1, 15))
    assert await bill_row(rt, later) == {"status": "paid", "amount_paid": 80000}
    assert await balance_of(rt, customer) == 20000
    rows = await sql(rt, "SELECT payment_id, amount FROM allocations WHERE bill_id = :id", id=later)
    assert [r["amount"] for r in rows] == [80000] and rows[0]["payment_id"] is not None


async def test_a_transfer_with_an_unknown_customer_code_is_kept_unmatched(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock, merchant: MerchantHandle
) -> None:
    await make_customer(rt, merchant)
    nobody = customer_payment_code("cus_01NOSUCHCUSTOMER000000000")
    response, _ = await bank_transfer(client, rt, clock, f"IBFT {nobody} tien dien", 10000)
    assert response.status_code == 200, response.text
    funds = await sql(rt, "SELECT status, amount, payment_id FROM received_funds")
    assert funds == [{"status": "unmatched", "amount": 10000, "payment_id": None}]
    assert await sql(rt, "SELECT id FROM payments") == []


async def test_what_banks_make_of_the_code_still_finds_the_customer_and_a_repeat_credits_once(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    (row,) = await sql(rt, "SELECT payment_code FROM customers WHERE id = :id", id=customer)
    code = row["payment_code"]
    spaced = f"NGUYEN VAN AN chuyen tien {code[:5].lower()} {code[5:10]}.{code[10:]} ck"
    note = bank_notification(spaced, 70000)
    for _ in range(2):
        assert (await send_notification(client, rt, clock, note)).status_code == 200
    assert await balance_of(rt, customer) == 70000
    payments = await sql(rt, "SELECT status, customer_id, bill_id, amount_received FROM payments")
    assert payments == [{"status": "succeeded", "customer_id": customer, "bill_id": None, "amount_received": 70000}]


async def test_a_refund_takes_back_from_the_balance_first_then_the_newest_allocation(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    first = await make_bill(rt, merchant, customer, "HD-11", 100000, due=date(2026, 11, 1), rule=AmountRule.any)
    payment = await counter_payment(client, merchant, 230000, bill_id=first)
    assert await balance_of(rt, customer) == 130000
    # The next bill takes the balance at once: an allocation newer than the first.
    second = await make_bill(rt, merchant, customer, "HD-12", 100000, due=date(2026, 12, 1))
    assert await bill_row(rt, second) == {"status": "paid", "amount_paid": 100000}
    assert await balance_of(rt, customer) == 30000

    assert (await refund(client, merchant, payment["id"], amount=80000)).json()["status"] == "succeeded"
    assert await balance_of(rt, customer) == 0
    assert await bill_row(rt, second) == {"status": "partially_paid", "amount_paid": 50000}
    assert await bill_row(rt, first) == {"status": "paid", "amount_paid": 100000}

    assert (await refund(client, merchant, payment["id"])).json()["status"] == "succeeded"
    assert await bill_row(rt, second) == {"status": "open", "amount_paid": 0}
    assert await bill_row(rt, first) == {"status": "open", "amount_paid": 0}
    (total,) = await sql(rt, "SELECT SUM(amount) AS s FROM allocations WHERE customer_id = :c", c=customer)
    assert total["s"] == 0


async def counter_payment(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    amount: int | None,
    *,
    bill_id: str | None = None,
    instrument: str = "cash",
) -> dict:
    body: dict[str, object] = {
        "method": "counter",
        "counter": {"instrument": instrument, "location": "Quầy 1", "cashier": "thu_ngan_01"},
        "confirm": True,
    }
    if amount is not None:
        body["amount"] = amount
    if bill_id:
        body["bill_id"] = bill_id
    else:
        body["reference"] = "QUAY-0001"
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_counter_payment_succeeds_at_once_against_the_counter_account(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "VP-2026-001", 120000)
    payment = await counter_payment(client, merchant, None, bill_id=bill, instrument="card_pos")
    assert (payment["status"], payment["channel"], payment["provider"]) == ("succeeded", "counter", "counter")
    assert payment["counter"] == {"instrument": "card_pos", "location": "Quầy 1", "cashier": "thu_ngan_01"}
    assert await bill_row(rt, bill) == {"status": "paid", "amount_paid": 120000}
    (received,) = await ledger_of(client, merchant, payment_id=payment["id"])
    assert {(e["account"], e["direction"]) for e in received["entries"]} == {
        (f"counter:{merchant.id}", "debit"),
        (f"merchant_payable:{merchant.id}", "credit"),
    }
    refunded = await refund(client, merchant, payment["id"], amount=20000)
    assert refunded.status_code == 201 and refunded.json()["status"] == "succeeded", refunded.text
    assert await bill_row(rt, bill) == {"status": "partially_paid", "amount_paid": 100000}
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 20000
    # A counter payment has no payer to play in the sandbox.
    assert_problem(await pay(client, merchant, payment["id"]), 422, "outcome_not_supported")


async def test_a_counter_payment_needs_its_counter_block_and_only_it_has_one(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    missing = {"amount": 1000, "method": "counter", "reference": "Q1", "confirm": True}
    assert_problem(
        await client.post("/v1/payments", json=missing, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "counter"],
    )
    stray = {"amount": 1000, "method": "vietqr", "reference": "Q1", "counter": {"instrument": "cash"}}
    assert_problem(
        await client.post("/v1/payments", json=stray, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "counter"],
    )
    bad = {**missing, "counter": {"instrument": "cheque"}}
    assert_problem(
        await client.post("/v1/payments", json=bad, headers=merchant.idem()),
        422,
        "validation_error",
        ["body", "counter", "instrument"],
    )


async def test_a_payer_retrying_the_same_transfer_pays_once(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    """The played payer's retry (a test helper retried after a crash) is the same transfer, never a second."""
    customer = await make_customer(rt, merchant)
    bank = customer_transfer_bank(rt)
    (row,) = await sql(rt, "SELECT payment_code FROM customers WHERE id = :id", id=customer)
    url = f"{rt.sandbox_base_url}/{bank.name}"
    first = await bank.send_sandbox_transfer(
        rt.provider_http, url, bank.sandbox.settings, row["payment_code"], 50000, "r1"
    )
    again = await bank.send_sandbox_transfer(
        rt.provider_http, url, bank.sandbox.settings, row["payment_code"], 50000, "r1"
    )
    other = await bank.send_sandbox_transfer(
        rt.provider_http, url, bank.sandbox.settings, row["payment_code"], 50000, "r2"
    )
    assert first == again != other
    assert await balance_of(rt, customer) == 100000
    assert len(await sql(rt, "SELECT id FROM payments")) == 2


def customer_transfer_bank(rt: Runtime) -> Any:
    bank = transfer_codes(rt)
    assert bank is not None and isinstance(bank, Sandboxed)
    return bank
