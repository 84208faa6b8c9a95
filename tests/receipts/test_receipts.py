"""Electronic receipts (CONTRACT.md §14): settings, one numbered receipt per succeeded payment, cancellation and
replacement by refunds, the routes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from gateway.bills.models import Bill
from gateway.customers.models import Customer
from gateway.domain import AmountRule, BillStatus
from gateway.payments.models import Payment
from gateway.runtime import Runtime
from tests.conftest import (
    ADMIN,
    MerchantHandle,
    assert_problem,
    create_merchant,
    create_vietqr_payment,
    events_of,
    paid_payment,
    pay,
    refund,
)
from tests.payments.test_vnpay_flow import create_card_payment
from tests.receipts.support import (
    SELLER,
    SETTINGS,
    enable_receipts,
    put_receipt_settings,
    receipts_of,
    the_receipt,
)

# --- settings ------------------------------------------------------------------------------------------------


async def test_settings_are_stored_and_answered(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    document = await enable_receipts(client, merchant)

    assert document == {
        "object": "receipt_settings",
        "merchant_id": merchant.id,
        "enabled": True,
        "template": "01BLP0-001",
        "series": "AA-26E",
        "seller": SELLER,
        "updated_at": "2026-11-22T10:00:00Z",
    }
    off = await enable_receipts(client, merchant, enabled=False, seller={})
    assert (off["enabled"], off["seller"]) == (False, {"name": None, "tax_code": None, "address": None})


async def test_settings_need_the_admin_token(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    path = f"/v1/merchants/{merchant.id}/receipts"

    assert_problem(await client.put(path, json=SETTINGS, headers=merchant.headers), 403, "forbidden")
    assert_problem(await client.put(path, json=SETTINGS), 401, "unauthenticated")
    assert_problem(
        await client.put("/v1/merchants/mch_nobody/receipts", json=SETTINGS, headers=ADMIN), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        pytest.param({"template": ""}, ["body", "template"], id="empty-template"),
        pytest.param({"template": "T" * 33}, ["body", "template"], id="long-template"),
        pytest.param({"series": "AA\n26E"}, ["body", "series"], id="unprintable-series"),
        pytest.param({"series": None}, ["body", "series"], id="null-series"),
        pytest.param({"enabled": "yes"}, ["body", "enabled"], id="string-enabled"),
        pytest.param({"seller": {"tax_code": "5700100256"}}, ["body", "seller", "name"], id="enabled-without-seller"),
        pytest.param({"seller": {**SELLER, "tax_code": "57-001"}}, ["body", "seller", "tax_code"], id="bad-tax-code"),
        pytest.param({"seller": {**SELLER, "phone": "1"}}, ["body", "seller", "phone"], id="unknown-seller-field"),
        pytest.param({"serie": "AA-26E"}, ["body", "serie"], id="unknown-field"),
    ],
)
async def test_invalid_settings_name_the_field(
    client: httpx.AsyncClient, merchant: MerchantHandle, change: dict[str, Any], loc: list[str]
) -> None:
    assert_problem(await put_receipt_settings(client, merchant, **change), 422, "validation_error", loc)
    assert_problem(
        await client.put(f"/v1/merchants/{merchant.id}/receipts", json={"template": "01BLP0-001"}, headers=ADMIN),
        422,
        "validation_error",
        ["body", "enabled"],
    )


# --- issuing -------------------------------------------------------------------------------------------------


async def test_each_paid_payment_gets_exactly_one_receipt_numbered_in_sequence(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)

    first = await paid_payment(client, merchant, amount=150000)
    second = await paid_payment(client, merchant, amount=75000)

    receipt = await the_receipt(client, merchant, first["id"])
    assert receipt["number"] == "00000001"
    assert (await the_receipt(client, merchant, second["id"]))["number"] == "00000002"
    assert receipt["status"] == "issued"
    assert (receipt["template"], receipt["series"], receipt["seller"]) == ("01BLP0-001", "AA-26E", SELLER)
    assert receipt["amount"] == 150000 and receipt["currency"] == "VND"
    assert receipt["amount_in_words"] == "Một trăm năm mươi nghìn đồng"
    assert receipt["items"] == [{"description": "HIS-2026-000123", "amount": 150000}]
    assert (receipt["method"], receipt["channel"], receipt["bill_ids"], receipt["replaces"]) == (
        "vietqr",
        "online",
        [],
        None,
    )
    assert len(receipt["lookup_code"]) >= 12
    assert receipt["lookup_url"] == f"http://gateway.test/receipts/{receipt['lookup_code']}"
    issued = await events_of(client, merchant, type="receipt.issued")
    assert sorted(e["data"]["object"]["number"] for e in issued) == ["00000001", "00000002"]
    assert next(e for e in issued if e["data"]["object"]["id"] == receipt["id"])["data"]["object"] == receipt
    got = await client.get(f"/v1/receipts/{receipt['id']}", headers=merchant.headers)
    assert got.status_code == 200 and got.json() == receipt

    # A further transfer to the paid payment is surplus on the same payment: still one receipt.
    assert (await pay(client, merchant, first["id"], amount=1000)).status_code == 200
    assert len(await receipts_of(client, merchant, first["id"])) == 1


async def test_a_vnpay_card_payment_gets_a_receipt_naming_its_payer(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)
    payment = await create_card_payment(client, merchant, amount=250000, customer={"name": "Trần Thị Bình"})

    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"

    receipt = await the_receipt(client, merchant, payment["id"])
    assert (receipt["number"], receipt["method"], receipt["amount"]) == ("00000001", "card", 250000)
    assert receipt["payer"] == {"name": "Trần Thị Bình", "code": None}
    assert receipt["amount_in_words"] == "Hai trăm năm mươi nghìn đồng"


async def test_no_receipts_while_disabled_and_numbers_continue_when_enabled_again(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    before = await paid_payment(client, merchant)  # receipts were never turned on
    await enable_receipts(client, merchant)
    after = await paid_payment(client, merchant)
    await enable_receipts(client, merchant, enabled=False)
    while_off = await paid_payment(client, merchant)
    await enable_receipts(client, merchant)
    again = await paid_payment(client, merchant)
    await enable_receipts(client, merchant, series="AB-26E")
    new_series = await paid_payment(client, merchant)

    assert await receipts_of(client, merchant, before["id"]) == []
    assert await receipts_of(client, merchant, while_off["id"]) == []
    assert (await the_receipt(client, merchant, after["id"]))["number"] == "00000001"
    assert (await the_receipt(client, merchant, again["id"]))["number"] == "00000002"
    assert [(r["series"], r["number"]) for r in [await the_receipt(client, merchant, new_series["id"])]] == [
        ("AB-26E", "00000001")
    ]
    assert len(await receipts_of(client, merchant)) == 3


async def test_an_unpaid_or_partly_paid_payment_has_no_receipt(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    assert (await pay(client, merchant, payment["id"], amount=50000)).json()["status"] == "requires_action"
    assert await receipts_of(client, merchant, payment["id"]) == []
    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"
    assert (await the_receipt(client, merchant, payment["id"]))["amount"] == 150000


async def test_items_follow_the_bills_and_the_balance_the_funds_went_to(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await enable_receipts(client, merchant)
    now = rt.clock.now()
    async with rt.db.transaction() as session:
        session.add(
            Customer(
                id="cus_rcpt1",
                merchant_id=merchant.id,
                livemode=False,
                code="PA01000123456",
                code_key="PA01000123456",
                name="Nguyễn Văn An",
                phone="0912345678",
                metadata_={},
                payment_code="KHRCPT1",
                balance=0,
                currency="VND",
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        session.add(
            Bill(
                id="bill_rcpt1",
                merchant_id=merchant.id,
                livemode=False,
                customer_id="cus_rcpt1",
                number="HD-2026-11-001",
                amount=100000,
                currency="VND",
                period="2026-11",
                amount_rule=AmountRule.any,
                metadata_={},
                status=BillStatus.open,
                amount_paid=0,
                created_at=now,
                updated_at=now,
            )
        )
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    # No bills API on this branch yet: the payment is made for the bill as POST /v1/payments {bill_id} will make it.
    async with rt.db.transaction() as session:
        await session.execute(
            update(Payment).where(Payment.id == payment["id"]).values(customer_id="cus_rcpt1", bill_id="bill_rcpt1")
        )

    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"

    receipt = await the_receipt(client, merchant, payment["id"])
    assert receipt["items"] == [
        {"description": "Hóa đơn HD-2026-11-001 kỳ 2026-11", "amount": 100000},
        {"description": "Tiền trả trước vào số dư của khách hàng", "amount": 50000},
    ]
    assert receipt["bill_ids"] == ["bill_rcpt1"]
    assert receipt["payer"] == {"name": "Nguyễn Văn An", "code": "PA01000123456"}

    # A refund takes the balance first, then the bill: the replacement's items shrink from the last.
    assert (await refund(client, merchant, payment["id"], amount=60000)).json()["status"] == "succeeded"
    replacement = next(r for r in await receipts_of(client, merchant, payment["id"]) if r["status"] == "issued")
    assert replacement["items"] == [{"description": "Hóa đơn HD-2026-11-001 kỳ 2026-11", "amount": 90000}]
    assert replacement["amount"] == 90000 and replacement["bill_ids"] == ["bill_rcpt1"]


# --- refunds -------------------------------------------------------------------------------------------------


async def test_a_full_refund_cancels_the_receipt(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    await enable_receipts(client, merchant)
    payment = await paid_payment(client, merchant)
    receipt = await the_receipt(client, merchant, payment["id"])

    assert (await refund(client, merchant, payment["id"])).json()["status"] == "succeeded"

    canceled = await the_receipt(client, merchant, payment["id"])
    assert (canceled["id"], canceled["status"], canceled["canceled_at"]) == (
        receipt["id"],
        "canceled",
        "2026-11-22T10:00:00Z",
    )
    events = await events_of(client, merchant, type="receipt.canceled")
    assert [e["data"]["object"] for e in events] == [canceled]
    assert await receipts_of(client, merchant, status="issued") == []


async def test_a_partial_refund_replaces_the_receipt_with_one_for_what_remains(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    await enable_receipts(client, merchant)
    payment = await paid_payment(client, merchant, amount=150000)
    original = await the_receipt(client, merchant, payment["id"])

    assert (await refund(client, merchant, payment["id"], amount=50000)).json()["status"] == "succeeded"

    receipts = {r["id"]: r for r in await receipts_of(client, merchant, payment["id"])}
    assert receipts[original["id"]]["status"] == "canceled"
    (replacement,) = [r for r in receipts.values() if r["status"] == "issued"]
    assert replacement["replaces"] == original["id"]
    assert replacement["number"] == "00000002"
    assert replacement["amount"] == 100000
    assert replacement["amount_in_words"] == "Một trăm nghìn đồng"
    assert replacement["items"] == [{"description": "HIS-2026-000123", "amount": 100000}]
    assert replacement["lookup_code"] != original["lookup_code"]
    assert [e["data"]["object"]["id"] for e in await events_of(client, merchant, type="receipt.canceled")] == [
        original["id"]
    ]
    issued = {e["data"]["object"]["id"] for e in await events_of(client, merchant, type="receipt.issued")}
    assert issued == {original["id"], replacement["id"]}

    # Refunding the rest cancels the replacement too, and issues nothing.
    assert (await refund(client, merchant, payment["id"])).json()["status"] == "succeeded"
    assert {r["status"] for r in await receipts_of(client, merchant, payment["id"])} == {"canceled"}
    assert len(await receipts_of(client, merchant, payment["id"])) == 2


async def test_refunds_of_a_payment_paid_before_receipts_change_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await paid_payment(client, merchant)
    await enable_receipts(client, merchant)

    assert (await refund(client, merchant, payment["id"], amount=1000)).json()["status"] == "succeeded"

    assert await receipts_of(client, merchant) == []


# --- routes --------------------------------------------------------------------------------------------------


async def test_another_merchants_receipt_is_404(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    await enable_receipts(client, merchant)
    payment = await paid_payment(client, merchant)
    receipt = await the_receipt(client, merchant, payment["id"])
    other = await create_merchant(client, "Trường THPT Hòn Gai")

    for path in (f"/v1/receipts/{receipt['id']}", f"/v1/receipts/{receipt['id']}.pdf"):
        assert_problem(await client.get(path, headers=other.headers), 404, "not_found")
    assert await receipts_of(client, other) == []
    assert await receipts_of(client, other, payment["id"]) == []
    assert_problem(await client.get("/v1/receipts/rcp_nothing", headers=merchant.headers), 404, "not_found")
    assert_problem(await client.get("/v1/receipts", headers=ADMIN), 403, "forbidden")


async def test_the_list_pages_and_filters(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    await enable_receipts(client, merchant)
    payments = []
    for _ in range(3):
        payments.append(await paid_payment(client, merchant))
        rt.clock.advance(1)  # type: ignore[attr-defined]
    assert (await refund(client, merchant, payments[0]["id"])).json()["status"] == "succeeded"

    page = await client.get("/v1/receipts", params={"limit": 2}, headers=merchant.headers)
    rest = await client.get(
        "/v1/receipts", params={"starting_after": page.json()["data"][-1]["id"]}, headers=merchant.headers
    )

    assert page.json()["has_more"] is True and rest.json()["has_more"] is False
    numbers = [r["number"] for r in page.json()["data"] + rest.json()["data"]]
    assert numbers == ["00000003", "00000002", "00000001"]
    assert [r["number"] for r in await receipts_of(client, merchant, status="canceled")] == ["00000001"]
    assert [r["payment_id"] for r in await receipts_of(client, merchant, payments[1]["id"])] == [payments[1]["id"]]
    assert_problem(
        await client.get("/v1/receipts", params={"status": "void"}, headers=merchant.headers),
        422,
        "validation_error",
        ["query", "status"],
    )
