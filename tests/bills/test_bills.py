"""Bills (§11): create for a customer by id or code, read with allocations, list with filters, void; a customer's
balance pays a new bill at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.allocation.test_allocation import transfer
from tests.conftest import (
    MerchantHandle,
    assert_problem,
    create_merchant,
    events_of,
    ids_listed,
    ledger_of,
    new_key,
    types,
)


async def create_customer(client: httpx.AsyncClient, merchant: MerchantHandle, code: str = "PA01000123456") -> str:
    body = {"code": code, "name": "Nguyễn Văn An"}
    response = await client.post("/v1/customers", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def bill_body(customer: Any, number: str = "HD-2026-11-0001", amount: int = 250000, **fields: Any) -> dict[str, Any]:
    return {"customer": customer, "number": number, "amount": amount, **fields}


async def create_bill(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: Any, **fields: Any
) -> dict[str, Any]:
    response = await client.post("/v1/bills", json=bill_body(customer, **fields), headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def customer(client: httpx.AsyncClient, merchant: MerchantHandle) -> str:
    return await create_customer(client, merchant)


async def test_create_and_get_a_bill(client: httpx.AsyncClient, merchant: MerchantHandle, customer: str) -> None:
    lines = [{"description": "Điện sinh hoạt bậc 1", "amount": 200000}, {"description": "VAT", "amount": 50000}]
    bill = await create_bill(
        client,
        merchant,
        customer,
        description="Tiền điện tháng 11/2026",
        period="2026-11",
        due_date="2026-12-05",
        lines=lines,
        amount_rule="exact",
        metadata={"evn_branch": "HN"},
    )
    assert bill["id"].startswith("bill_")
    assert (bill["object"], bill["livemode"], bill["customer"]) == ("bill", False, customer)
    assert (bill["number"], bill["amount"], bill["currency"]) == ("HD-2026-11-0001", 250000, "VND")
    assert (bill["description"], bill["period"], bill["due_date"]) == (
        "Tiền điện tháng 11/2026",
        "2026-11",
        "2026-12-05",
    )
    assert bill["lines"] == lines
    assert (bill["amount_rule"], bill["metadata"]) == ("exact", {"evn_branch": "HN"})
    assert (bill["status"], bill["amount_paid"], bill["amount_remaining"], bill["paid_at"]) == ("open", 0, 250000, None)
    assert (bill["allocations"], bill["receipts"]) == ([], [])
    assert bill["created_at"] == bill["updated_at"] == "2026-11-22T10:00:00Z"

    fetched = await client.get(f"/v1/bills/{bill['id']}", headers=merchant.headers)
    assert fetched.status_code == 200 and fetched.json() == bill

    [event] = await events_of(client, merchant)
    assert event["type"] == "bill.created" and event["data"]["object"] == bill

    # defaults: VND, the partial rule, no lines; the customer named by its code in any case
    by_code = await create_bill(client, merchant, {"code": "pa01000123456"}, number="HD-2")
    assert (by_code["customer"], by_code["currency"], by_code["amount_rule"]) == (customer, "VND", "partial")
    assert (by_code["lines"], by_code["description"], by_code["period"], by_code["due_date"]) == (
        None,
        None,
        None,
        None,
    )
    assert by_code["metadata"] == {}


async def test_a_bill_needs_an_existing_customer(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str
) -> None:
    other = await create_merchant(client, "Hanoi Water")
    elsewhere = await create_customer(client, other, code="NUOC01")
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    for who, named in (
        (merchant, "cus_unknown"),
        (merchant, {"code": "NOPE"}),
        (merchant, elsewhere),  # another merchant's customer
        (merchant, {"code": "NUOC01"}),
        (live, customer),  # a test customer from a live key
        (live, {"code": "PA01000123456"}),
    ):
        refused = await client.post("/v1/bills", json=bill_body(named), headers=who.idem())
        assert_problem(refused, 422, "validation_error", ["body", "customer"])
    assert await ids_listed(client, "/v1/bills", merchant.headers) == []
    assert await ids_listed(client, "/v1/bills", live.headers) == []


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        pytest.param({"amount": 0}, ["body", "amount"], id="amount-zero"),
        pytest.param({"amount": -1000}, ["body", "amount"], id="amount-negative"),
        pytest.param({"amount": 250000.0}, ["body", "amount"], id="amount-float"),
        pytest.param({"amount": 250000.5}, ["body", "amount"], id="amount-fraction"),
        pytest.param({"amount": "250000"}, ["body", "amount"], id="amount-string"),
        pytest.param({"amount": True}, ["body", "amount"], id="amount-bool"),
        pytest.param({"amount": 10_000_000_000_000}, ["body", "amount"], id="amount-above-max"),
        pytest.param({"amount": None}, ["body", "amount"], id="amount-null"),
        pytest.param({"number": ""}, ["body", "number"], id="number-empty"),
        pytest.param({"number": "N" * 65}, ["body", "number"], id="number-65"),
        pytest.param({"currency": "XYZ"}, ["body", "currency"], id="currency-unknown"),
        pytest.param({"currency": "USD"}, ["body", "currency"], id="currency-not-the-customers"),
        pytest.param({"description": "d" * 256}, ["body", "description"], id="description-256"),
        pytest.param({"period": "p" * 33}, ["body", "period"], id="period-33"),
        pytest.param({"due_date": "30/11/2026"}, ["body", "due_date"], id="due-date-format"),
        pytest.param({"due_date": "2026-02-30"}, ["body", "due_date"], id="due-date-impossible"),
        pytest.param({"due_date": 0}, ["body", "due_date"], id="due-date-timestamp"),
        pytest.param({"due_date": "2026-11-30T00:00:00Z"}, ["body", "due_date"], id="due-date-datetime"),
        pytest.param({"amount_rule": "most"}, ["body", "amount_rule"], id="amount-rule-unknown"),
        pytest.param({"metadata": {"k": 1}}, ["body", "metadata"], id="metadata-int"),
        pytest.param({"ammount": 1}, ["body", "ammount"], id="unknown-field"),
        pytest.param(
            {"lines": [{"description": "a", "amount": 100000}, {"description": "b", "amount": 100000}]},
            ["body", "lines"],
            id="lines-not-summing",
        ),
        pytest.param({"lines": []}, ["body", "lines"], id="lines-empty"),
        pytest.param({"lines": [{"description": "a", "amount": 0}]}, ["body", "lines"], id="line-amount-zero"),
        pytest.param({"lines": [{"description": "a", "amount": 250000.0}]}, ["body", "lines"], id="line-amount-float"),
        pytest.param({"lines": [{"amount": 250000}]}, ["body", "lines"], id="line-description-missing"),
        pytest.param(
            {"lines": [{"description": "a", "amount": 250000, "vat": 1}]}, ["body", "lines"], id="line-unknown-field"
        ),
        pytest.param({"customer": {"code": "PA 01"}}, ["body", "customer"], id="customer-code-invalid"),
        pytest.param({"customer": {"id": "cus_x"}}, ["body", "customer"], id="customer-object-unknown-field"),
        pytest.param({"customer": 12}, ["body", "customer"], id="customer-number"),
        pytest.param({"customer": ""}, ["body", "customer"], id="customer-empty"),
    ],
)
async def test_bad_bills_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, fields: dict[str, Any], loc: list[str]
) -> None:
    refused = await client.post("/v1/bills", json={**bill_body(customer), **fields}, headers=merchant.idem())
    assert_problem(refused, 422, "validation_error", loc)
    assert await ids_listed(client, "/v1/bills", merchant.headers) == []
    assert await events_of(client, merchant) == []


@pytest.mark.parametrize("field", ["customer", "number", "amount"])
async def test_required_fields(client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, field: str) -> None:
    body = bill_body(customer)
    del body[field]
    assert_problem(
        await client.post("/v1/bills", json=body, headers=merchant.idem()), 422, "validation_error", ["body", field]
    )


async def test_bill_numbers_are_unique_per_merchant_and_mode(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str
) -> None:
    first = await create_bill(client, merchant, customer, number="HD-1")
    duplicate = await client.post(
        "/v1/bills", json=bill_body(customer, number="HD-1", amount=1), headers=merchant.idem()
    )
    assert_problem(duplicate, 409, "bill_number_taken")
    assert await ids_listed(client, "/v1/bills", merchant.headers) == [first["id"]]

    other = await create_merchant(client, "Hanoi Water")
    assert (await create_bill(client, other, await create_customer(client, other), number="HD-1"))["number"] == "HD-1"
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    assert (await create_bill(client, live, await create_customer(client, live), number="HD-1"))["livemode"] is True


async def test_concurrent_creates_of_one_number_answer_409_not_500(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str
) -> None:
    second = await create_customer(client, merchant, code="PA02")
    responses = await asyncio.gather(
        *(
            client.post("/v1/bills", json=bill_body(who, number="RACE-1"), headers=merchant.idem())
            for who in (customer, second, customer, second, customer, second)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "bill_number_taken")
    assert len(await ids_listed(client, "/v1/bills", merchant.headers)) == 1
    assert types(await events_of(client, merchant)) == ["bill.created"]


async def test_list_filters_and_pages(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, clock: ManualClock
) -> None:
    second = await create_customer(client, merchant, code="PA02")
    specs = [
        (customer, "2026-10", "2026-11-05"),
        (customer, "2026-11", "2026-12-05"),
        (second, "2026-11", "2026-12-10"),
        (second, "2026-11", None),
        (customer, "2026-12", "2027-01-05"),
    ]
    bills = []
    for i, (who, period, due) in enumerate(specs):
        fields: dict[str, Any] = {"number": f"HD-{i}", "period": period}
        if due:
            fields["due_date"] = due
        bills.append(await create_bill(client, merchant, who, **fields))
        clock.advance(1)
    voided = await client.post(f"/v1/bills/{bills[0]['id']}/void", headers=merchant.headers)
    assert voided.status_code == 200, voided.text
    ids = [b["id"] for b in bills]

    async def listed(**query: str) -> list[str]:
        response = await client.get("/v1/bills", params={**query, "limit": "100"}, headers=merchant.headers)
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["data"]]

    assert await listed() == ids[::-1]
    assert await listed(customer=customer) == [ids[4], ids[1], ids[0]]
    assert await listed(customer=second) == [ids[3], ids[2]]
    assert await listed(customer="cus_nobody") == []
    assert await listed(status="void") == [ids[0]]
    assert await listed(status="open") == [ids[4], ids[3], ids[2], ids[1]]
    assert await listed(status="paid") == []
    assert await listed(number="HD-2") == [ids[2]]
    assert await listed(number="hd-2") == []  # bill numbers are the biller's, compared exactly
    assert await listed(period="2026-11") == [ids[3], ids[2], ids[1]]
    assert await listed(due_before="2026-12-10") == [ids[1], ids[0]]  # strictly before; no due date never matches
    assert await listed(due_before="2026-12-11") == [ids[2], ids[1], ids[0]]
    assert await listed(period="2026-11", customer=second, due_before="2027-01-01") == [ids[2]]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"starting_after": cursor} if cursor else {})}
        page = (await client.get("/v1/bills", params=params, headers=merchant.headers)).json()
        assert page["object"] == "list"
        seen += [b["id"] for b in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        pytest.param({"status": "closed"}, ["query", "status"], id="status"),
        pytest.param({"due_before": "05/12/2026"}, ["query", "due_before"], id="due-before-format"),
        pytest.param({"due_before": "0"}, ["query", "due_before"], id="due-before-timestamp"),
        pytest.param({"due_before": "2026-12-05T00:00:00Z"}, ["query", "due_before"], id="due-before-datetime"),
        pytest.param({"limit": "0"}, ["query", "limit"], id="limit-0"),
        pytest.param({"limit": "101"}, ["query", "limit"], id="limit-101"),
        pytest.param({"number": "N" * 65}, ["query", "number"], id="number-long"),
    ],
)
async def test_bad_list_filters_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, query: dict[str, str], loc: list[str]
) -> None:
    assert_problem(await client.get("/v1/bills", params=query, headers=merchant.headers), 422, "validation_error", loc)


async def test_void_an_open_bill(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, clock: ManualClock
) -> None:
    bill = await create_bill(client, merchant, customer)
    clock.advance(60)
    voided = await client.post(f"/v1/bills/{bill['id']}/void", headers=merchant.idem())
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert (body["status"], body["amount_paid"], body["amount_remaining"]) == ("void", 0, 0)
    assert body["updated_at"] == "2026-11-22T10:01:00Z" and body["created_at"] == bill["created_at"]
    assert (await client.get(f"/v1/bills/{bill['id']}", headers=merchant.headers)).json() == body

    events = await events_of(client, merchant)
    assert types(events) == ["bill.voided", "bill.created"]
    assert events[0]["data"]["object"] == body

    again = await client.post(f"/v1/bills/{bill['id']}/void", headers=merchant.idem())
    assert_problem(again, 409, "invalid_state")
    assert types(await events_of(client, merchant)) == ["bill.voided", "bill.created"]


async def fund_customer(
    rt: Runtime, client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, amount: int
) -> str:
    """Money received for the customer with no bill named (a static-QR transfer): its balance."""
    payment = await transfer(client, merchant, customer, amount)
    return str(payment["id"])


async def customer_balance(client: httpx.AsyncClient, merchant: MerchantHandle, customer: str) -> int:
    return int((await client.get(f"/v1/customers/{customer}", headers=merchant.headers)).json()["balance"])


async def test_a_new_bill_takes_the_customers_balance_at_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str, rt: Runtime
) -> None:
    payment_id = await fund_customer(rt, client, merchant, customer, 300000)
    assert await customer_balance(client, merchant, customer) == 300000

    first = await create_bill(client, merchant, customer, number="HD-1", amount=250000)
    assert (first["status"], first["amount_paid"], first["amount_remaining"]) == ("paid", 250000, 0)
    assert first["paid_at"] == "2026-11-22T10:00:00Z"
    assert [(a["payment_id"], a["amount"]) for a in first["allocations"]] == [(payment_id, 250000)]
    assert await customer_balance(client, merchant, customer) == 50000

    second = await create_bill(client, merchant, customer, number="HD-2", amount=80000)
    assert (second["status"], second["amount_paid"], second["amount_remaining"]) == ("partially_paid", 50000, 30000)
    assert [(a["payment_id"], a["amount"]) for a in second["allocations"]] == [(payment_id, 50000)]
    assert await customer_balance(client, merchant, customer) == 0
    assert (await client.get(f"/v1/bills/{second['id']}", headers=merchant.headers)).json() == second

    third = await create_bill(client, merchant, customer, number="HD-3", amount=10000)
    assert (third["status"], third["amount_paid"], third["allocations"]) == ("open", 0, [])

    events = await events_of(client, merchant)
    bill_and_customer = [e["type"] for e in events if e["type"].startswith(("bill.", "customer."))]
    assert bill_and_customer == [
        "bill.created",  # HD-3: nothing left to take
        "customer.balance_changed",
        "bill.partially_paid",
        "bill.created",
        "customer.balance_changed",
        "bill.paid",
        "bill.created",
        "customer.balance_changed",  # the funds arrived
    ]
    balances = [e["data"]["object"]["balance"] for e in events if e["type"] == "customer.balance_changed"]
    assert balances == [0, 50000, 300000]
    # the credit moved from the customers' credit account back as the bills took it (each transaction balances)
    kinds = [t["kind"] for t in await ledger_of(client, merchant)]
    assert kinds.count("customer_credit_added") == 1 and kinds.count("customer_credit_applied") == 2

    # a bill with money on it cannot be voided
    for bill in (first, second):
        assert_problem(
            await client.post(f"/v1/bills/{bill['id']}/void", headers=merchant.headers), 409, "invalid_state"
        )
    assert (await client.get(f"/v1/bills/{second['id']}", headers=merchant.headers)).json()[
        "status"
    ] == "partially_paid"


async def test_another_merchants_or_modes_bills_answer_404(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer: str
) -> None:
    bill = await create_bill(client, merchant, customer)
    other = await create_merchant(client, "Hanoi Water")
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    for outsider in (other, live):
        assert_problem(await client.get(f"/v1/bills/{bill['id']}", headers=outsider.headers), 404, "not_found")
        assert_problem(await client.post(f"/v1/bills/{bill['id']}/void", headers=outsider.headers), 404, "not_found")
        assert await ids_listed(client, "/v1/bills", outsider.headers) == []
        listed = await client.get("/v1/bills", params={"customer": customer}, headers=outsider.headers)
        assert listed.json()["data"] == []
    assert_problem(await client.get("/v1/bills/bill_nope", headers=merchant.headers), 404, "not_found")
    assert (await client.get(f"/v1/bills/{bill['id']}", headers=merchant.headers)).json()["status"] == "open"


async def test_an_idempotent_create_replays(client: httpx.AsyncClient, merchant: MerchantHandle, customer: str) -> None:
    headers = merchant.idem("bill-HD-1")
    first = await client.post("/v1/bills", json=bill_body(customer), headers=headers)
    again = await client.post("/v1/bills", json=bill_body(customer), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert await ids_listed(client, "/v1/bills", merchant.headers) == [first.json()["id"]]
    assert types(await events_of(client, merchant)) == ["bill.created"]
