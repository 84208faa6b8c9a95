"""§12 inquiry: what a partner shows before it takes the money."""

from __future__ import annotations

from datetime import date

import httpx

from gateway.domain import AmountRule, PartnerKind
from gateway.runtime import Runtime
from tests.allocation.factories import execute, make_bill, make_customer
from tests.allocation.test_allocation import transfer
from tests.collections.factories import BILLER, biller_with_partner, enable_partner, make_live_customer, make_partner
from tests.conftest import MerchantHandle, assert_problem, create_merchant, sql


async def test_inquiry_lists_payable_bills_oldest_due_first_with_the_name_masked(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant, name="Nguyễn Văn Thành An")
    await make_bill(rt, merchant, customer, "HD-12", 120000, due=date(2026, 12, 15), rule=AmountRule.exact)
    await make_bill(rt, merchant, customer, "HD-11", 110000, due=date(2026, 11, 15))
    paid = await make_bill(rt, merchant, customer, "HD-10", 100000, due=date(2026, 10, 15))
    await execute(rt, "UPDATE bills SET status = 'void' WHERE id = :id", id=paid)
    await execute(rt, "UPDATE bills SET period = '2026-11' WHERE number = 'HD-11'")
    await transfer(client, merchant, customer, 10000)  # a static-QR transfer: the oldest payable bill takes it

    response = await partner.inquiry("evnqn", "pa01000123456")  # codes in any case
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "bill_inquiry",
        "customer": {"code": "PA01000123456", "name": "Nguyễn V** T** An"},
        "bills": [
            {
                "number": "HD-11",
                "period": "2026-11",
                "due_date": "2026-11-15",
                "amount_remaining": 100000,
                "amount_rule": "partial",
            },
            {
                "number": "HD-12",
                "period": None,
                "due_date": "2026-12-15",
                "amount_remaining": 120000,
                "amount_rule": "exact",
            },
        ],
        "total_due": 220000,
        "balance": 0,
    }


async def test_a_telco_allowed_to_show_names_sees_the_full_name_a_bank_never_does(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    telco = await biller_with_partner(rt, merchant, "VTL", kind=PartnerKind.telco, shows_full_names=True)
    bank = await make_partner(rt, "BIDV", shows_full_names=True)  # a flag only telcos and platforms may use
    await enable_partner(rt, merchant, bank)
    await make_customer(rt, merchant, name="Trần Thị Bình")
    shown = await telco.client(client, rt).inquiry(BILLER, "PA01000123456")
    assert shown.json()["customer"] == {"code": "PA01000123456", "name": "Trần Thị Bình"}
    masked = await bank.client(client, rt).inquiry(BILLER, "PA01000123456")
    assert masked.json()["customer"]["name"] == "Trần T** Bình"


async def test_nothing_due_is_an_empty_list_and_the_balance_is_shown(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    await transfer(client, merchant, customer, 50000)  # no bill: credit
    response = await partner.inquiry(BILLER, "PA01000123456")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["bills"], body["total_due"], body["balance"]) == ([], 0, 50000)


async def test_unknown_customer_unknown_biller_and_a_biller_that_did_not_enable_the_partner_are_404(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    handle = await biller_with_partner(rt, merchant)
    partner = handle.client(client, rt)
    await make_customer(rt, merchant)
    assert_problem(await partner.inquiry(BILLER, "PA-NOBODY"), 404, "customer_not_found")
    assert_problem(await partner.inquiry("NOSUCH", "PA01000123456"), 404, "biller_not_found")

    other = await create_merchant(client, "Nước sạch Hà Nội")
    await execute(rt, "UPDATE merchants SET biller_code = 'NSHN' WHERE id = :id", id=other.id)
    await make_customer(rt, other)
    assert_problem(await partner.inquiry("NSHN", "PA01000123456"), 404, "biller_not_found")  # never enabled
    await enable_partner(rt, other, handle, enabled=False)
    assert_problem(await partner.inquiry("NSHN", "PA01000123456"), 404, "biller_not_found")  # disabled


async def test_a_test_partner_sees_only_test_customers_and_a_live_partner_only_live_ones(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    test_partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    live = await make_partner(rt, "VCB-LIVE", livemode=True)
    await enable_partner(rt, merchant, live)
    live_partner = live.client(client, rt)
    await make_customer(rt, merchant, code="PA-TEST", name="Khách Thử")
    await make_live_customer(rt, merchant, code="PA-LIVE", name="Khách Thật")

    assert (await test_partner.inquiry(BILLER, "PA-TEST")).status_code == 200
    assert_problem(await test_partner.inquiry(BILLER, "PA-LIVE"), 404, "customer_not_found")
    assert (await live_partner.inquiry(BILLER, "PA-LIVE")).status_code == 200
    assert_problem(await live_partner.inquiry(BILLER, "PA-TEST"), 404, "customer_not_found")
    paid = await live_partner.pay(BILLER, "PA-TEST", 10000)
    assert_problem(paid, 404, "customer_not_found")
    assert await sql(rt, "SELECT id FROM payments") == []


async def test_bad_bodies_are_refused_after_the_signature_naming_the_field(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    path = "/v1/collect/inquiry"
    assert_problem(await partner.send("POST", path, body=b"{not json"), 400, "malformed_json")
    assert_problem(await partner.send("POST", path, body="{}".encode("utf-16")), 400, "malformed_json")
    assert_problem(await partner.send("POST", path, body=b""), 400, "malformed_json")
    assert_problem(await partner.send("POST", path, [1]), 422, "validation_error", ["body"])
    typo = {"biller_code": BILLER, "customer_cod": "PA01"}
    body = assert_problem(await partner.send("POST", path, typo), 422, "validation_error", ["body", "customer_cod"])
    assert {"loc": ["body", "customer_cod"], "msg": "unknown field"} in body["errors"]
    assert_problem(
        await partner.send("POST", path, {"biller_code": BILLER, "customer_code": 12}),
        422,
        "validation_error",
        ["body", "customer_code"],
    )
    # A body nobody signed is refused for its signature, however broken it is.
    unsigned = await client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_problem(unsigned, 401, "invalid_signature")
