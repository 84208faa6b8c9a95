"""§12 collections: a partner's payment is a succeeded payment, allocated, posted and receipted at once."""

from __future__ import annotations

from datetime import date

import httpx

from gateway.domain import AmountRule
from gateway.runtime import Runtime
from tests.allocation.factories import balance_of, bill_row, execute, make_bill, make_customer
from tests.collections.factories import BILLER, biller_with_partner, enable_partner, make_partner
from tests.conftest import MerchantHandle, assert_problem, events_of, get_payment, ledger_of, refund, sql, types
from tests.receipts.support import enable_receipts, the_receipt


async def test_a_collection_by_customer_code_pays_the_oldest_due_first_and_the_rest_becomes_balance(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)
    handle = await biller_with_partner(rt, merchant)
    partner = handle.client(client, rt)
    customer = await make_customer(rt, merchant)
    newer = await make_bill(rt, merchant, customer, "HD-12", 120000, due=date(2026, 12, 15))
    older = await make_bill(rt, merchant, customer, "HD-11", 100000, due=date(2026, 11, 15))

    response = await partner.pay(
        BILLER, "pa01000123456", 250000, transaction_id="VCB-0001", channel="counter", payer={"name": "Trần Bình"}
    )
    assert response.status_code == 201, response.text
    collection = response.json()
    assert collection["id"].startswith("col_")
    assert (collection["object"], collection["status"], collection["livemode"]) == ("collection", "accepted", False)
    assert collection["allocations"] == [
        {"bill_number": "HD-11", "amount": 100000},
        {"bill_number": "HD-12", "amount": 120000},
    ]
    assert collection["balance_added"] == 30000
    assert collection["receipt_number"] == "00000001"
    assert (collection["biller_code"], collection["customer_code"]) == (BILLER, "PA01000123456")
    assert (collection["partner_transaction_id"], collection["partner_id"]) == ("VCB-0001", handle.id)
    assert await bill_row(rt, older) == {"status": "paid", "amount_paid": 100000}
    assert await bill_row(rt, newer) == {"status": "paid", "amount_paid": 120000}
    assert await balance_of(rt, customer) == 30000

    payment = await get_payment(client, merchant, collection["payment_id"])
    assert (payment["status"], payment["method"], payment["provider"]) == ("succeeded", "partner", "VCB")
    assert (payment["channel"], payment["partner_channel"]) == ("counter", "counter")
    assert (payment["amount_received"], payment["customer_id"], payment["bill_id"]) == (250000, customer, None)
    assert payment["reference"] == "PA01000123456"
    (received,) = [
        t for t in await ledger_of(client, merchant, payment_id=payment["id"]) if t["kind"] == "payment_received"
    ]
    assert {(e["account"], e["direction"], e["amount"]) for e in received["entries"]} == {
        ("partner_clearing:VCB", "debit", 250000),
        (f"merchant_payable:{merchant.id}", "credit", 250000),
    }
    receipt = await the_receipt(client, merchant, payment["id"])
    assert [i["amount"] for i in receipt["items"]] == [100000, 120000, 30000]  # each bill, then the balance
    assert receipt["items"][0]["description"].startswith("Hóa đơn HD-11")
    assert (receipt["bill_ids"], receipt["channel"], receipt["method"]) == ([older, newer], "counter", "partner")
    assert set(types(await events_of(client, merchant))) >= {
        "payment.succeeded",
        "bill.paid",
        "customer.balance_changed",
        "receipt.issued",
    }


async def test_a_collection_for_one_named_bill_pays_it_and_the_channel_is_online(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    await make_bill(rt, merchant, customer, "HD-11", 100000, due=date(2026, 11, 15))
    named = await make_bill(rt, merchant, customer, "HD-12", 120000, due=date(2026, 12, 15))
    response = await partner.pay(BILLER, "PA01000123456", 50000, bill_numbers=["HD-12"], channel="ussd")
    assert response.status_code == 201, response.text
    assert response.json()["allocations"] == [{"bill_number": "HD-12", "amount": 50000}]
    assert (response.json()["balance_added"], response.json()["receipt_number"]) == (0, None)  # receipts off
    assert await bill_row(rt, named) == {"status": "partially_paid", "amount_paid": 50000}
    payment = await get_payment(client, merchant, response.json()["payment_id"])
    assert (payment["bill_id"], payment["reference"], payment["channel"]) == (named, "HD-12", "online")
    assert payment["partner_channel"] == "ussd"


async def test_a_collection_for_several_bills_pays_them_in_the_order_named_in_one_receipt(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    first = await make_bill(rt, merchant, customer, "HD-11", 100000, due=date(2026, 11, 15))
    second = await make_bill(rt, merchant, customer, "HD-12", 120000, due=date(2026, 12, 15), rule=AmountRule.exact)
    response = await partner.pay(BILLER, "PA01000123456", 170000, bill_numbers=["HD-12", "HD-11"])
    assert response.status_code == 201, response.text
    assert response.json()["allocations"] == [
        {"bill_number": "HD-12", "amount": 120000},
        {"bill_number": "HD-11", "amount": 50000},
    ]
    assert await bill_row(rt, second) == {"status": "paid", "amount_paid": 120000}
    assert await bill_row(rt, first) == {"status": "partially_paid", "amount_paid": 50000}
    receipt = await the_receipt(client, merchant, response.json()["payment_id"])
    assert [i["amount"] for i in receipt["items"]] == [120000, 50000]
    assert receipt["bill_ids"] == [second, first]
    payment = await get_payment(client, merchant, response.json()["payment_id"])
    assert (payment["bill_id"], payment["reference"]) == (None, "PA01000123456")


async def test_the_bills_rules_apply_to_the_bills_named(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    await make_bill(rt, merchant, customer, "HD-EXACT", 100000, rule=AmountRule.exact)
    await make_bill(rt, merchant, customer, "HD-PART", 80000)
    await make_bill(rt, merchant, customer, "HD-ANY", 50000, rule=AmountRule.any)
    await make_bill(rt, merchant, customer, "HD-PAID", 10000)
    void = await make_bill(rt, merchant, customer, "HD-VOID", 10000)
    await execute(rt, "UPDATE bills SET status = 'void' WHERE id = :id", id=void)
    other = await make_customer(rt, merchant, code="PA-OTHER")
    await make_bill(rt, merchant, other, "HD-OTHERS", 10000)
    assert (await partner.pay(BILLER, "PA01000123456", 10000, bill_numbers=["HD-PAID"])).status_code == 201

    def pay(amount: int, *numbers: str) -> object:
        return partner.pay(BILLER, "PA01000123456", amount, bill_numbers=list(numbers))

    assert_problem(await pay(99999, "HD-EXACT"), 422, "amount_not_allowed")
    assert_problem(await pay(100001, "HD-EXACT"), 422, "amount_not_allowed")
    assert_problem(await pay(80001, "HD-PART"), 422, "amount_not_allowed")
    assert_problem(await pay(180001, "HD-EXACT", "HD-PART"), 422, "amount_not_allowed")  # more than both owe
    assert_problem(await pay(150000, "HD-PART", "HD-EXACT"), 422, "amount_not_allowed")  # exact one short
    assert_problem(await pay(10000, "HD-PAID"), 409, "bill_not_payable")
    assert_problem(await pay(10000, "HD-VOID"), 409, "bill_not_payable")
    body = assert_problem(await pay(10000, "HD-NOPE"), 404, "not_found")
    assert "HD-NOPE" in body["detail"]
    assert_problem(await pay(10000, "HD-OTHERS"), 404, "not_found")  # another customer's bill
    assert_problem(await pay(10000, "HD-PART", "HD-PART"), 422, "validation_error", ["body", "bill_numbers"])
    assert (await sql(rt, "SELECT COUNT(*) AS n FROM payments"))[0]["n"] == 1  # nothing refused left a trace

    # An `any` bill among them lifts the maximum: the surplus becomes balance.
    taken = await pay(200000, "HD-PART", "HD-ANY")
    assert taken.status_code == 201, taken.text
    assert taken.json()["allocations"] == [
        {"bill_number": "HD-PART", "amount": 80000},
        {"bill_number": "HD-ANY", "amount": 50000},
    ]
    assert taken.json()["balance_added"] == 70000
    exact = await pay(100000, "HD-EXACT")
    assert exact.status_code == 201, exact.text


async def test_the_same_transaction_again_answers_the_same_collection_another_body_is_a_duplicate(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    await make_bill(rt, merchant, customer, "HD-11", 100000)
    body = {
        "biller_code": BILLER,
        "customer_code": "PA01000123456",
        "amount": 100000,
        "partner_transaction_id": "VCB-42",
        "paid_at": "2026-11-22T09:59:00Z",
        "channel": "app",
    }
    first = await partner.send("POST", "/v1/collect/payments", body)
    assert first.status_code == 201, first.text
    # The same body in another key order and spacing: the same request.
    again = await partner.send(
        "POST",
        "/v1/collect/payments",
        body=b'{"channel":"app",  "amount":100000,'
        + (
            b'"partner_transaction_id":"VCB-42","paid_at":"2026-11-22T09:59:00Z","customer_code":"PA01000123456",'
            b'"biller_code":"EVNQN"}'
        ),
    )
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert_problem(
        await partner.send("POST", "/v1/collect/payments", {**body, "amount": 99000}), 409, "duplicate_transaction"
    )
    assert (await sql(rt, "SELECT COUNT(*) AS n FROM payments"))[0]["n"] == 1
    assert (await sql(rt, "SELECT COUNT(*) AS n FROM collections"))[0]["n"] == 1

    status = await partner.status("VCB-42")
    assert status.status_code == 200, status.text
    assert status.json() == first.json()
    assert_problem(await partner.status("VCB-NEVER"), 404, "not_found")
    assert_problem(await partner.status("X" * 300), 404, "not_found")

    # Another partner's transaction ids are its own: the same id is a new collection, invisible to the first.
    second_partner = await make_partner(rt, "BIDV")
    await enable_partner(rt, merchant, second_partner)
    theirs = second_partner.client(client, rt)
    assert_problem(await theirs.status("VCB-42"), 404, "not_found")
    assert (await theirs.send("POST", "/v1/collect/payments", body)).status_code == 201


async def test_invalid_payment_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    await make_customer(rt, merchant)
    good = {
        "biller_code": BILLER,
        "customer_code": "PA01000123456",
        "amount": 1000,
        "partner_transaction_id": "T-1",
        "paid_at": "2026-11-22T09:59:00+07:00",
        "channel": "atm",
    }
    for field, value in (
        ("amount", 0),
        ("amount", -5),
        ("amount", 10.5),
        ("amount", "1000"),
        ("amount", 10_000_000_000_000),
        ("amount", 10**30),
        ("partner_transaction_id", ""),
        ("partner_transaction_id", "x" * 65),
        ("paid_at", "2026-11-22"),
        ("paid_at", 1700000000),
        ("channel", "pigeon"),
        ("bill_numbers", []),
        ("payer", {"name": "A", "email": "a@example.com"}),
    ):
        response = await partner.send("POST", "/v1/collect/payments", {**good, field: value})
        assert_problem(response, 422, "validation_error", ["body", field])
    missing = {k: v for k, v in good.items() if k != "channel"}
    assert_problem(
        await partner.send("POST", "/v1/collect/payments", missing), 422, "validation_error", ["body", "channel"]
    )
    assert_problem(
        await partner.send("POST", "/v1/collect/payments", {**good, "ammount": 5}),
        422,
        "validation_error",
        ["body", "ammount"],
    )
    assert (await partner.send("POST", "/v1/collect/payments", good)).status_code == 201


async def test_a_partner_payment_cannot_be_refunded_through_the_refunds_api(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    await make_customer(rt, merchant)
    collection = (await partner.pay(BILLER, "PA01000123456", 5000)).json()
    assert_problem(await refund(client, merchant, collection["payment_id"]), 422, "refund_not_supported")
    helper = await client.post(
        f"/v1/test-helpers/payments/{collection['payment_id']}/pay",
        json={"outcome": "success"},
        headers=merchant.headers,
    )
    assert_problem(helper, 422, "outcome_not_supported")
