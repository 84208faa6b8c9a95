"""Telco mobile money through the gateway (§15), in test mode against the fake telco mounted as the sandbox: the
redirect and the USSD push, the telco's verify-order for gateway- and subscriber-started payments, its signed result,
the janitor's TRANS_INQUIRY and refunds. Verify and result calls are also sent here directly, signed by hand."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from gateway.adapters.telco import wire
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.janitor import check_payments_once
from gateway.runtime import Runtime
from tests.adapters.telco_fake import FakeTelco, install_fake_telco
from tests.conftest import (
    ADMIN,
    MerchantHandle,
    events_of,
    get_payment,
    ledger_of,
    make_settings,
    pay,
    refund,
    sandbox_secrets,
    sql,
    types,
)

PROVIDER = "viettel_money"
PROFILE = wire.VIETTEL_MONEY
SANDBOX_CODE = PROFILE.sandbox_merchant_code
BILLER = "NUOCHN"


@pytest.fixture(autouse=True)
def fake_telco(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_telco(monkeypatch)  # before the app fixture builds the registry


def telco_of(app: FastAPI, provider: str = PROVIDER) -> FakeTelco:
    fake: FakeTelco = app.state.sandbox.state.simulators[provider]
    return fake


def signed(
    rt: Runtime, fields: dict[str, str], names: tuple[str, ...], profile: wire.TelcoProfile = PROFILE
) -> dict[str, str]:
    keys = sandbox_secrets(rt, profile.provider)
    return {**fields, "check_sum": wire.sign(keys["hash_key"], keys["access_code"], fields, names, profile.encoding)}


async def verify(
    client: httpx.AsyncClient, rt: Runtime, billcode: str, order_id: str, merchant_code: str = BILLER, **extra: str
) -> dict[str, Any]:
    fields = signed(
        rt, {"billcode": billcode, "merchant_code": merchant_code, "order_id": order_id, **extra}, wire.VERIFY_SIGNED
    )
    response = await client.post(f"/v1/providers/{PROVIDER}/verify", data=fields)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if answer["error_code"] != wire.VERIFY_BAD_CHECKSUM:
        unsigned = {k: v for k, v in answer.items() if k != "customer_name"}
        assert answer["check_sum"] == signed(rt, unsigned, wire.VERIFY_ANSWER_SIGNED)["check_sum"]
    return answer


def result_fields(
    rt: Runtime,
    order_id: str,
    amount: int,
    *,
    billcode: str | None = None,
    merchant_code: str = BILLER,
    code: str = "00",
    transaction: str = "VT000000001",
) -> dict[str, str]:
    fields = {
        "billcode": billcode or order_id,
        "cust_msisdn": "84987654321",
        "error_code": code,
        "merchant_code": merchant_code,
        "order_id": order_id,
        "payment_status": "1" if code == "00" else "0",
        "trans_amount": str(amount),
        "vt_transaction_id": transaction,
    }
    return signed(rt, fields, wire.RESULT_SIGNED)


async def post_result(client: httpx.AsyncClient, fields: dict[str, str], *, as_json: bool = False) -> dict[str, Any]:
    url = f"/v1/providers/{PROVIDER}/notifications"
    response = await (client.post(url, json=fields) if as_json else client.post(url, data=fields))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_biller(rt: Runtime, merchant: MerchantHandle, code: str = BILLER) -> None:
    async with rt.db.transaction() as session:
        await session.execute(
            text("UPDATE merchants SET biller_code = :code WHERE id = :id"), {"code": code, "id": merchant.id}
        )


async def customer_with_bills(
    client: httpx.AsyncClient, merchant: MerchantHandle, code: str, *amounts: int
) -> tuple[str, list[str]]:
    created = await client.post("/v1/customers", json={"code": code, "name": "Nguyễn Văn An"}, headers=merchant.idem())
    assert created.status_code == 201, created.text
    customer = created.json()["id"]
    bills = []
    for index, amount in enumerate(amounts, 1):
        body = {"customer": customer, "number": f"{code}-B{index}", "amount": amount, "due_date": f"2026-1{index}-01"}
        bill = await client.post("/v1/bills", json=body, headers=merchant.idem())
        assert bill.status_code == 201, bill.text
        bills.append(bill.json()["id"])
    return customer, bills


async def bill_of(client: httpx.AsyncClient, merchant: MerchantHandle, bill_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/bills/{bill_id}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def mobile_payment(client: httpx.AsyncClient, merchant: MerchantHandle, **extra: Any) -> dict[str, Any]:
    body = {"method": "mobile_money", "confirm": True, **extra}
    if "bill_id" not in body:
        body = {"amount": 150000, "reference": "HD-2026-1", **body}
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def payments_of(client: httpx.AsyncClient, merchant: MerchantHandle) -> list[dict[str, Any]]:
    response = await client.get("/v1/payments", params={"provider": PROVIDER}, headers=merchant.headers)
    return list(response.json()["data"])


# --- gateway-started -------------------------------------------------------------------------------------


async def test_a_redirect_payment_for_a_bill_is_paid_with_a_receipt(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, app: FastAPI
) -> None:
    receipts = {"enabled": True, "template": "01BLP0-001", "series": "AA-26E", "seller": {"name": "Công ty nước"}}
    assert (await client.put(f"/v1/merchants/{merchant.id}/receipts", json=receipts, headers=ADMIN)).status_code == 200
    _customer, [bill] = await customer_with_bills(client, merchant, "KH001", 150000)
    payment = await mobile_payment(client, merchant, bill_id=bill, customer={"phone": "0987654321"})
    assert (payment["provider"], payment["status"], payment["next_action"]["type"]) == (
        PROVIDER,
        "requires_action",
        "redirect",
    )
    url = payment["next_action"]["url"]
    assert url.startswith(f"http://gateway.test/sandbox/{PROVIDER}{PROFILE.payment_page_path}?")
    assert "login_msisdn=84987654321" in url
    assert (await client.get(url)).status_code == 200  # the payer's browser at the telco

    paid = await pay(client, merchant, payment["id"])
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    assert (await bill_of(client, merchant, bill))["status"] == "paid"
    assert [t["kind"] for t in await ledger_of(client, merchant, payment_id=payment["id"])] == ["payment_received"]
    assert "payment.succeeded" in types(await events_of(client, merchant))
    listed = (await client.get("/v1/receipts", headers=merchant.headers)).json()["data"]
    assert [r["payment_id"] for r in listed] == [payment["id"]]


async def test_a_push_awaits_the_payer_on_ussd(
    client: httpx.AsyncClient, merchant: MerchantHandle, app: FastAPI
) -> None:
    payment = await mobile_payment(client, merchant, customer={"phone": "0987654321"}, mobile_money={"push": True})
    assert payment["status"] == "requires_action"
    assert (payment["next_action"]["type"], payment["next_action"]["channel"]) == ("await_customer", "ussd")
    [push] = telco_of(app).received
    assert (push["cmd"], push["msisdn"], push["order_id"]) == ("USSD_PUSH", "84987654321", payment["id"])
    paid = await pay(client, merchant, payment["id"])
    assert paid.json()["status"] == "succeeded"


async def test_push_options_are_validated(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    from tests.conftest import assert_problem

    base = {"amount": 150000, "reference": "HD-1", "method": "mobile_money", "mobile_money": {"push": True}}
    no_phone = await client.post("/v1/payments", json=base, headers=merchant.idem())
    assert_problem(no_phone, 422, "validation_error", ["body", "customer", "phone"])
    wrong_method = await client.post("/v1/payments", json={**base, "method": "vietqr"}, headers=merchant.idem())
    assert_problem(wrong_method, 422, "validation_error", ["body", "mobile_money"])


async def test_the_verify_of_a_gateway_started_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await mobile_payment(client, merchant, customer={"name": "Trần Thị Bình"})
    pid = payment["id"]
    open_ = await verify(client, rt, pid, pid, SANDBOX_CODE, trans_amount="150000")
    assert (open_["error_code"], open_["trans_amount"], open_["customer_name"]) == ("00", "150000", "Trần T** Bình")
    assert (await verify(client, rt, pid, pid, SANDBOX_CODE, trans_amount="150001"))["error_code"] == "01"
    forged = {"billcode": pid, "merchant_code": SANDBOX_CODE, "order_id": pid, "check_sum": "AAAA"}
    answer = (await client.post(f"/v1/providers/{PROVIDER}/verify", json=forged)).json()
    assert (answer["error_code"], answer["check_sum"]) == ("02", "")
    audit = await sql(rt, "SELECT verified, outcome FROM provider_notifications ORDER BY received_at, id")
    assert [(bool(r["verified"]), r["outcome"]) for r in audit] == [
        (True, "applied"),
        (True, "unmatched"),
        (False, "rejected"),
    ]


# --- subscriber-started ----------------------------------------------------------------------------------


async def test_a_subscriber_pays_a_bill_by_its_number(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await make_biller(rt, merchant)
    customer, [bill] = await customer_with_bills(client, merchant, "KH002", 120000)
    answer = await verify(client, rt, "KH002-B1", "VTORDER1")
    assert (answer["error_code"], answer["trans_amount"], answer["customer_name"]) == ("00", "120000", "Nguyễn V** An")
    again = await verify(client, rt, "KH002-B1", "VTORDER1")
    assert again["trans_amount"] == "120000"
    [payment] = await payments_of(client, merchant)
    assert (payment["status"], payment["provider_reference"], payment["bill_id"], payment["customer_id"]) == (
        "requires_action",
        "VTORDER1",
        bill,
        customer,
    )
    assert (payment["reference"], payment["channel"], payment["amount"]) == ("KH002-B1", "online", 120000)

    fields = result_fields(rt, "VTORDER1", 120000, billcode="KH002-B1")
    stored = await post_result(client, fields)
    assert stored["error_code"] == "00" and stored["order_id"] == "VTORDER1"
    assert stored["check_sum"] == signed(rt, stored, wire.RESULT_ANSWER_SIGNED)["check_sum"]
    assert (await post_result(client, fields, as_json=True))["error_code"] == "00"  # a repeat: stored already
    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 120000)
    billed = await bill_of(client, merchant, bill)
    assert billed["status"] == "paid"
    assert [a["payment_id"] for a in billed["allocations"]] == [payment["id"]]
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1  # one credit
    assert (await verify(client, rt, "KH002-B1", "VTORDER1"))["error_code"] == "01"  # paid now
    assert (await verify(client, rt, "KH002-B1", "VTORDER2"))["error_code"] == "01"  # the bill is paid


async def test_a_subscriber_pays_what_a_customer_owes_by_its_code(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await make_biller(rt, merchant)
    _customer, bills = await customer_with_bills(client, merchant, "KH003", 50000, 70000)
    answer = await verify(client, rt, "kh003", "VTORDER3")  # customer codes match whatever the case
    assert (answer["error_code"], answer["trans_amount"]) == ("00", "120000")
    [payment] = await payments_of(client, merchant)
    assert payment["bill_id"] is None
    await post_result(client, result_fields(rt, "VTORDER3", 120000, billcode="kh003"))
    assert [(await bill_of(client, merchant, b))["status"] for b in bills] == ["paid", "paid"]


async def test_unpayable_codes_answer_01(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    await make_biller(rt, merchant)
    _customer, [void, _kept] = await customer_with_bills(client, merchant, "KH004", 10000, 20000)
    assert (await client.post(f"/v1/bills/{void}/void", headers=merchant.idem())).status_code == 200
    assert (await verify(client, rt, "KH004-B1", "VT-V1"))["error_code"] == "01"  # void
    assert (await verify(client, rt, "NO-SUCH-CODE", "VT-V2"))["error_code"] == "01"  # unknown
    created = await client.post("/v1/customers", json={"code": "KH005", "name": "Lê Văn C"}, headers=merchant.idem())
    assert created.status_code == 201
    assert (await verify(client, rt, "KH005", "VT-V3"))["error_code"] == "01"  # nothing due
    assert (await verify(client, rt, "KH004-B2", "VT-V4", "OTHERBILLER"))["error_code"] == "02"  # no such biller
    assert await payments_of(client, merchant) == []


async def test_a_forged_result_changes_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await make_biller(rt, merchant)
    await customer_with_bills(client, merchant, "KH006", 90000)
    await verify(client, rt, "KH006-B1", "VTORDER6")
    forged = {**result_fields(rt, "VTORDER6", 90000), "check_sum": "forged"}
    answer = await post_result(client, forged)
    assert (answer["error_code"], answer["check_sum"]) == ("01", "")
    [payment] = await payments_of(client, merchant)
    assert payment["status"] == "requires_action"
    rows = await sql(rt, "SELECT verified, outcome FROM provider_notifications WHERE detail NOT LIKE 'verify-order%'")
    assert [(bool(r["verified"]), r["outcome"]) for r in rows] == [(False, "rejected")]


async def test_a_result_for_another_amount_than_verified_is_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await make_biller(rt, merchant)
    await customer_with_bills(client, merchant, "KH007", 90000)
    await verify(client, rt, "KH007-B1", "VTORDER7")
    answer = await post_result(client, result_fields(rt, "VTORDER7", 80000))
    assert answer["error_code"] == "00"  # stored (for reconciliation): the telco need not send it again
    [payment] = await payments_of(client, merchant)
    assert (payment["status"], payment["amount_received"]) == ("requires_action", 0)
    funds = await sql(rt, "SELECT status, amount, payment_id FROM received_funds")
    assert funds == [{"status": "unmatched", "amount": 80000, "payment_id": payment["id"]}]


@pytest.mark.parametrize(
    ("code", "failure"), [("16", "insufficient_funds"), ("V06", "payer_canceled"), ("17", "limit_exceeded")]
)
async def test_a_failed_result_fails_the_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, code: str, failure: str
) -> None:
    await make_biller(rt, merchant)
    await customer_with_bills(client, merchant, "KH008", 90000)
    await verify(client, rt, "KH008-B1", "VTORDER8")
    await post_result(client, result_fields(rt, "VTORDER8", 90000, code=code, transaction=""))
    [payment] = await payments_of(client, merchant)
    assert (payment["status"], payment["failure_code"]) == ("failed", failure)


async def test_a_late_result_still_pays(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    await make_biller(rt, merchant)
    _customer, [bill] = await customer_with_bills(client, merchant, "KH009", 90000)
    await verify(client, rt, "KH009-B1", "VTORDER9")
    clock.advance(16 * 60)
    [payment] = await payments_of(client, merchant)
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "expired"
    assert (await verify(client, rt, "KH009-B1", "VTORDER9"))["error_code"] == "01"
    await post_result(client, result_fields(rt, "VTORDER9", 90000))
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"
    assert (await bill_of(client, merchant, bill))["status"] == "paid"
    [succeeded] = await events_of(client, merchant, type="payment.succeeded")
    assert succeeded.get("late") is True


# --- janitor, refunds, accounts --------------------------------------------------------------------------


async def test_a_lost_result_is_settled_by_trans_inquiry(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, app: FastAPI, clock: ManualClock
) -> None:
    payment = await mobile_payment(client, merchant)
    await client.get(payment["next_action"]["url"])
    settled = await client.post(
        f"/sandbox/{PROVIDER}/_sandbox/pay", json={"order_id": payment["id"], "outcome": "success", "notify": False}
    )
    assert settled.status_code == 200
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"
    clock.advance(61)
    assert await check_payments_once(rt) == 1
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"
    assert [f["cmd"] for f in telco_of(app).received] == ["TRANS_INQUIRY"]
    # The result arriving after the query is a repeat, never a second credit.
    order = telco_of(app).orders[payment["id"]]
    answer = await telco_of(app).notify(order)
    assert answer.json()["error_code"] == "00"
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1


async def test_refunds_go_through_refund_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, app: FastAPI
) -> None:
    payment = await mobile_payment(client, merchant)
    await client.get(payment["next_action"]["url"])
    await pay(client, merchant, payment["id"])
    partial = await refund(client, merchant, payment["id"], amount=50000)
    assert partial.status_code == 201, partial.text
    assert partial.json()["status"] == "succeeded"
    sent = telco_of(app).received[-1]
    assert (sent["cmd"], sent["refundType"], sent["originalRequestId"]) == ("REFUND_PAYMENT", "1", payment["id"])
    rest = await refund(client, merchant, payment["id"])
    assert rest.json()["status"] == "succeeded"
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 150000


async def test_a_live_account_answers_the_verify_with_its_own_keys(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    live = {
        "merchant_code": "LIVE01",
        "access_code": "acc-live",
        "hash_key": "key-live",
        "api_base_url": "https://vt.test",
    }
    put = await client.put(f"/v1/merchants/{merchant.id}/providers/{PROVIDER}", json=live, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["secrets_set"] == ["access_code", "hash_key"]
    bad = await client.put(
        f"/v1/merchants/{merchant.id}/providers/{PROVIDER}", json={"merchant_code": "X"}, headers=ADMIN
    )
    assert bad.status_code == 422
    fields = {"billcode": "NOPE", "merchant_code": "LIVE01", "order_id": "VTLIVE1"}
    fields["check_sum"] = wire.sign("key-live", "acc-live", fields, wire.VERIFY_SIGNED, PROFILE.encoding)
    answer = (await client.post(f"/v1/providers/{PROVIDER}/verify", data=fields)).json()
    assert answer["error_code"] == "01"  # genuine (signed back), but nothing of that code
    assert answer["check_sum"] == wire.sign("key-live", "acc-live", answer, wire.VERIFY_ANSWER_SIGNED, PROFILE.encoding)


async def test_the_sandbox_lists_its_billers(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    await make_biller(rt, merchant)
    query = signed(rt, {"cmd": "BILLER_LIST", "version": "2.0"}, wire.BILLERS_SIGNED)
    listed = await client.get(f"/v1/providers/{PROVIDER}/billers?{urlencode(query)}")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"billers": [{"biller_code": BILLER, "name": "Bach Mai Hospital"}]}
    forged = await client.get(f"/v1/providers/{PROVIDER}/billers", params={**query, "check_sum": "x"})
    assert forged.status_code == 400
    assert (await client.get("/v1/providers/vnpay/billers", params=query)).status_code == 404


async def test_without_the_sandbox_there_is_no_biller_list(database_url: str, clock: ManualClock) -> None:
    application = create_app(make_settings(database_url, sandbox=False), clock=clock, background=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            query = {"cmd": "BILLER_LIST", "version": "2.0", "check_sum": "x"}
            response = await client.get(f"/v1/providers/{PROVIDER}/billers", params=query)
    assert response.status_code == 404
