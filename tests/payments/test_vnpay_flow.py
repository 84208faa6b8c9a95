"""A whole VNPAY card payment through the public API and the VNPAY simulator (CONTRACT.md §3, §4, §6, §7):
the signed redirect, the payment page, the IPN and its answers, the browser return, refunds and the
simulator's deliberate faults."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from sqlalchemy import text

from gateway.adapters.base import PaymentLookup, ProviderContext, ProviderStatus, RefundLookup, RefundOutcome
from gateway.adapters.base import StartRefund as StartRefundRequest
from gateway.adapters.vnpay.adapter import VNPayAdapter
from gateway.adapters.vnpay.wire import hash_data, secure_hash
from gateway.merchants.credentials import context_for
from gateway.payments.models import Payment
from gateway.runtime import Runtime
from tests.conftest import BASE_URL, MerchantHandle, pay, sandbox_secrets

SIM = "/sandbox/vnpay"
IPN = "/v1/providers/vnpay/notifications"
TMN = VNPayAdapter.sandbox.settings["tmn_code"]
CONFIRM_SUCCESS = {"RspCode": "00", "Message": "Confirm Success"}


# --- helpers -------------------------------------------------------------------------------------------


async def create_card_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, amount: int = 150000, **extra: Any
) -> dict[str, Any]:
    body = {"amount": amount, "method": "card", "reference": "VIEN-PHI-2026-0042", "confirm": True, **extra}
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


def hash_secret(rt: Runtime) -> str:
    return sandbox_secrets(rt, "vnpay")["hash_secret"]


def params_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def local(url: str) -> str:
    """The path and query of an absolute URL on the gateway (the test client's base URL)."""
    assert url.startswith(BASE_URL), url
    return url[len(BASE_URL) :]


async def simulator_pay(
    client: httpx.AsyncClient, payment: dict[str, Any], outcome: str = "success", amount: int | None = None
) -> dict[str, Any]:
    """The payer at VNPAY, driven directly: answers what the gateway said to the IPN."""
    body: dict[str, Any] = {"payment_url": payment["next_action"]["url"], "outcome": outcome}
    if amount is not None:
        body["amount"] = amount
    response = await client.post(f"{SIM}/_sandbox/pay", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def set_fault(client: httpx.AsyncClient, fault: str, count: int = 1) -> None:
    response = await client.post(f"{SIM}/_sandbox/faults", json={"fault": fault, "count": count})
    assert response.status_code == 200, response.text


async def simulator_view(client: httpx.AsyncClient, txn_ref: str) -> dict[str, Any]:
    response = await client.get(f"{SIM}/_sandbox/transactions/{txn_ref}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def signed_ipn_query(secret: str, **fields: str) -> str:
    return f"{hash_data(fields)}&vnp_SecureHash={secure_hash(secret, fields)}"


def ipn_fields(txn_ref: str, amount: int, **overrides: str) -> dict[str, str]:
    fields = {
        "vnp_Amount": str(amount * 100),
        "vnp_BankCode": "NCB",
        "vnp_BankTranNo": "VNP90000001",
        "vnp_CardType": "ATM",
        "vnp_OrderInfo": "Thanh toan VIEN-PHI-2026-0042",
        "vnp_PayDate": "20261122170500",
        "vnp_ResponseCode": "00",
        "vnp_TmnCode": TMN,
        "vnp_TransactionNo": "90000001",
        "vnp_TransactionStatus": "00",
        "vnp_TxnRef": txn_ref,
    }
    fields.update(overrides)
    return fields


async def get_payment(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/payments/{payment_id}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger_kinds(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[str]:
    response = await client.get("/v1/ledger/transactions", params=query, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return [t["kind"] for t in response.json()["data"]]


async def sql(rt: Runtime, statement: str, **params: Any) -> list[dict[str, Any]]:
    async with rt.db.transaction() as session:
        return [dict(row._mapping) for row in await session.execute(text(statement), params)]


async def notification_outcomes(rt: Runtime) -> list[str]:
    rows = await sql(rt, "SELECT outcome FROM provider_notifications WHERE provider = 'vnpay' ORDER BY received_at, id")
    return [r["outcome"] for r in rows]


async def vnpay_context(rt: Runtime, merchant: MerchantHandle) -> ProviderContext:
    async with rt.db.transaction() as session:
        return await context_for(session, rt, rt.registry.get("vnpay"), merchant.id, False)


async def lookup(rt: Runtime, payment_id: str) -> PaymentLookup:
    async with rt.db.transaction() as session:
        payment = await session.get(Payment, payment_id)
        assert payment is not None
        return PaymentLookup(
            payment_id=payment.id,
            provider_reference=payment.provider_reference,
            provider_data=dict(payment.provider_data),
            amount=payment.amount,
            created_at=payment.created_at,
        )


async def refund(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/refunds", json={"payment_id": payment_id, **body}, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


# --- the redirect and the payment page -----------------------------------------------------------------


async def test_confirm_redirects_to_a_signed_vnpay_page(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)

    assert (payment["status"], payment["provider"], payment["method"]) == ("requires_action", "vnpay", "card")
    action = payment["next_action"]
    assert action["type"] == "redirect"
    url = action["url"]
    assert url.startswith("http://gateway.test/sandbox/vnpay/paymentv2/vpcpay.html?")
    params = params_of(url)
    assert params["vnp_SecureHash"] == secure_hash(hash_secret(rt), params)
    assert params["vnp_TmnCode"] == TMN
    assert params["vnp_Amount"] == "15000000"
    assert params["vnp_TxnRef"] == payment["provider_reference"] == payment["id"].removeprefix("pay_")
    assert params["vnp_ReturnUrl"] == "http://gateway.test/v1/providers/vnpay/return"
    assert (params["vnp_CreateDate"], params["vnp_ExpireDate"]) == ("20261122170000", "20261122171500")  # GMT+7

    page = await client.get(local(url))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "150.000 VND" in page.text and "Thanh toan VIEN-PHI-2026-0042" in page.text
    assert page.text.count("<button") == 3

    tampered = await client.get(local(url).replace("vnp_Amount=15000000", "vnp_Amount=100000"))
    assert tampered.status_code == 400
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"


async def test_payer_on_the_page_pays_and_the_browser_comes_back(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_card_payment(client, merchant, return_url="https://his.example.vn/done")
    page = await client.get(local(payment["next_action"]["url"]))
    assert page.status_code == 200
    # The page's form, as a browser submits it when the payer clicks "pay".
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page.text)[1])  # type: ignore[index]
    query = html.unescape(re.search(r'name="query" value="([^"]*)"', page.text)[1])  # type: ignore[index]
    assert action == "http://gateway.test/sandbox/vnpay/_sandbox/checkout"
    assert 'name="outcome" value="pay"' in page.text

    checkout = await client.post(
        local(action),
        content=urlencode({"query": query, "outcome": "pay"}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert checkout.status_code == 302
    back = checkout.headers["location"]
    assert back.startswith("http://gateway.test/v1/providers/vnpay/return?")

    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"  # by the IPN
    visit = await client.get(local(back))
    assert visit.status_code == 303
    assert visit.headers["location"] == f"https://his.example.vn/done?payment_id={payment['id']}&status=succeeded"


# --- the IPN -------------------------------------------------------------------------------------------


async def test_test_helper_payment_succeeds_and_posts_the_ledger_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)

    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    assert paid.json()["next_action"] is None
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == ["payment_received"]
    [funds] = await sql(rt, "SELECT provider_transaction_id, amount, status, payer FROM received_funds")
    view = await simulator_view(client, payment["provider_reference"])
    assert (funds["provider_transaction_id"], funds["amount"], funds["status"]) == (
        view["transaction_no"],
        150000,
        "matched",
    )
    assert await notification_outcomes(rt) == ["applied"]
    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()["balances"]
    assert balance == [{"currency": "VND", "collected": 150000, "refunded": 0, "net": 150000}]


async def test_forged_ipn_is_answered_97_and_changes_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    fields = ipn_fields(payment["provider_reference"], 150000)

    forged = await client.get(f"{IPN}?{signed_ipn_query('not-the-vnpay-secret', **fields)}")
    genuine_query = signed_ipn_query(hash_secret(rt), **fields)
    tampered = await client.get(f"{IPN}?{genuine_query.replace('vnp_Amount=15000000', 'vnp_Amount=25000000')}")

    for answer in (forged, tampered):
        assert answer.status_code == 200
        assert answer.json() == {"RspCode": "97", "Message": "Invalid signature"}
        assert list(answer.json()) == ["RspCode", "Message"]
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("requires_action", 0)
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == []
    assert await sql(rt, "SELECT id FROM received_funds") == []
    assert await notification_outcomes(rt) == ["rejected", "rejected"]


async def test_ipn_for_an_unknown_order_is_answered_01(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await create_card_payment(client, merchant, amount=150000)
    query = signed_ipn_query(hash_secret(rt), **ipn_fields("01NOSUCHORDER0000000000000", 150000))

    answer = await client.get(f"{IPN}?{query}")

    assert answer.json() == {"RspCode": "01", "Message": "Order not found"}
    assert await ledger_kinds(client, merchant) == []


async def test_wrong_amount_is_answered_04_and_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)

    result = await simulator_pay(client, payment, amount=100000)

    assert result["ipn_status"] == 200
    assert result["ipn_response"] == {"RspCode": "04", "Message": "Invalid amount"}
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("requires_action", 0)
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == []
    assert await notification_outcomes(rt) == ["amount_mismatch"]

    # Through the test helper too: the payer is charged the wrong amount, the gateway credits nothing.
    other = await create_card_payment(client, merchant, amount=150000)
    helper = await pay(client, merchant, other["id"], amount=150001)
    assert helper.status_code == 200, helper.text
    assert (helper.json()["status"], helper.json()["amount_received"]) == ("requires_action", 0)


async def test_the_same_ipn_twice_credits_once_and_answers_02(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    result = await simulator_pay(client, payment)
    assert result["ipn_response"] == CONFIRM_SUCCESS

    # VNPAY retries with the very same signed fields (the browser return carries them too).
    again = await client.get(f"{IPN}?{urlsplit(result['return_url']).query}")

    assert again.json() == {"RspCode": "02", "Message": "Order already confirmed"}
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == ["payment_received"]
    assert await notification_outcomes(rt) == ["applied", "duplicate"]


async def test_payer_cancel_fails_the_payment_and_is_answered_00(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)

    result = await simulator_pay(client, payment, outcome="failure")

    assert (result["response_code"], result["transaction_status"]) == ("24", "02")
    assert result["ipn_response"] == CONFIRM_SUCCESS
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["failure_code"], after["amount_received"]) == ("failed", "payer_canceled", 0)
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == []
    events = (await client.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert [e["type"] for e in events] == ["payment.failed", "payment.requires_action"]


async def test_test_helper_failure_outcome(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    failed = await pay(client, merchant, payment["id"], outcome="failure")
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["failure_code"]) == ("failed", "payer_canceled")


# --- the browser return --------------------------------------------------------------------------------


async def test_browser_return_redirects_without_changing_the_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_card_payment(client, merchant, return_url="https://his.example.vn/done")
    await set_fault(client, "ipn_lost")
    result = await simulator_pay(client, payment)
    assert result["ipn_lost"] is True and result["ipn_status"] is None
    assert params_of(result["return_url"])["vnp_ResponseCode"] == "00"

    visit = await client.get(local(result["return_url"]))

    assert visit.status_code == 303
    assert visit.headers["location"] == (
        f"https://his.example.vn/done?payment_id={payment['id']}&status=requires_action"
    )
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("requires_action", 0)  # only the IPN or a query counts


async def test_tampered_browser_return_is_refused(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_card_payment(client, merchant, return_url="https://his.example.vn/done")
    await set_fault(client, "ipn_lost")
    result = await simulator_pay(client, payment, outcome="failure")
    tampered = local(result["return_url"]).replace("vnp_ResponseCode=24", "vnp_ResponseCode=00")
    assert tampered != local(result["return_url"])

    visit = await client.get(tampered)

    assert visit.status_code == 400
    assert visit.headers["content-type"].startswith("application/problem+json")
    assert visit.json()["code"] == "invalid_signature"
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"


# --- refunds -------------------------------------------------------------------------------------------


async def test_partial_refunds_then_the_rest(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_card_payment(client, merchant, amount=200000)
    assert (await pay(client, merchant, payment["id"])).json()["status"] == "succeeded"

    first = await refund(client, merchant, payment["id"], amount=50000)
    rest = await refund(client, merchant, payment["id"])

    assert (first["status"], first["amount"]) == ("succeeded", 50000)
    assert (rest["status"], rest["amount"]) == ("succeeded", 150000)
    after = await get_payment(client, merchant, payment["id"])
    assert (after["amount_received"], after["amount_refunded"]) == (200000, 200000)
    view = await simulator_view(client, payment["provider_reference"])
    assert view["refunded"] == 200000
    assert [(r["transaction_type"], r["amount"]) for r in view["refunds"]] == [("03", 50000), ("03", 150000)]
    assert [r["request_id"] for r in view["refunds"]] == [first["id"][3:], rest["id"][3:]]
    for made in (first, rest):
        assert await ledger_kinds(client, merchant, refund_id=made["id"]) == ["refund_succeeded"]
    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()["balances"]
    assert balance == [{"currency": "VND", "collected": 200000, "refunded": 200000, "net": 0}]
    nothing_left = await client.post(
        "/v1/refunds", json={"payment_id": payment["id"], "amount": 1}, headers=merchant.idem()
    )
    assert nothing_left.status_code == 422 and nothing_left.json()["code"] == "amount_exceeds_refundable"


async def test_full_refund_is_type_02(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_card_payment(client, merchant, amount=120000)
    await pay(client, merchant, payment["id"])

    made = await refund(client, merchant, payment["id"])

    assert (made["status"], made["amount"]) == ("succeeded", 120000)
    view = await simulator_view(client, payment["provider_reference"])
    assert [(r["transaction_type"], r["amount"]) for r in view["refunds"]] == [("02", 120000)]


async def test_refund_vnpay_refuses_fails(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    payment = await create_card_payment(client, merchant, amount=200000)
    await pay(client, merchant, payment["id"])
    view = await simulator_view(client, payment["provider_reference"])
    # Someone refunds part of it in VNPAY's merchant portal, outside the gateway: VNPAY now holds less.
    portal = await rt.registry.get("vnpay").refund(
        await vnpay_context(rt, merchant),
        StartRefundRequest(
            refund_id="re_PORTAL0001",
            payment_id=payment["id"],
            amount=100000,
            currency="VND",
            payment_amount_received=200000,
            payment_provider_reference=payment["provider_reference"],
            payment_provider_data=(await lookup(rt, payment["id"])).provider_data,
            payer={},
            reason=None,
            provider_transaction_id=view["transaction_no"],
        ),
    )
    assert portal.status is RefundOutcome.succeeded

    refused = await refund(client, merchant, payment["id"])

    assert (refused["status"], refused["amount"], refused["failure_code"]) == ("failed", 200000, "vnpay_95")
    after = await get_payment(client, merchant, payment["id"])
    assert after["amount_refunded"] == 0
    assert await ledger_kinds(client, merchant, refund_id=refused["id"]) == []
    assert (await simulator_view(client, payment["provider_reference"]))["refunded"] == 100000


async def test_refund_with_vnpay_down_stays_pending_and_the_resend_settles_it(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])
    await set_fault(client, "api_5xx")

    pending = await refund(client, merchant, payment["id"], amount=40000)

    assert pending["status"] == "pending"  # a 503 is no refusal: VNPAY may yet have it
    assert (await simulator_view(client, payment["provider_reference"]))["refunded"] == 0
    adapter = rt.registry.get("vnpay")
    payment_lookup = await lookup(rt, payment["id"])
    view = await simulator_view(client, payment["provider_reference"])
    refund_lookup = RefundLookup(
        refund_id=pending["id"],
        payment_id=payment["id"],
        amount=40000,
        provider_reference=None,
        payment_provider_reference=payment["provider_reference"],
        payment_provider_data=payment_lookup.provider_data,
        provider_transaction_id=view["transaction_no"],
        created_at=rt.clock.now(),
    )
    ctx = await vnpay_context(rt, merchant)
    # VNPAY is slow this time: a second asking while the first is being processed hears 94 (in progress).
    await set_fault(client, "api_slow")
    first, meanwhile = await asyncio.gather(
        adapter.fetch_refund_status(ctx, refund_lookup), adapter.fetch_refund_status(ctx, refund_lookup)
    )
    again = await adapter.fetch_refund_status(ctx, refund_lookup)

    assert meanwhile.status is RefundOutcome.pending
    assert first.status is RefundOutcome.succeeded
    assert again == first  # idempotent on vnp_RequestId: a completed refund answers the same again
    view = await simulator_view(client, payment["provider_reference"])
    assert [(r["request_id"], r["transaction_type"], r["amount"]) for r in view["refunds"]] == [
        (pending["id"][3:], "03", 40000)
    ]


# --- faults and the status query -----------------------------------------------------------------------


async def test_ipn_sent_twice_credits_once(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    await set_fault(client, "ipn_twice")

    paid = await pay(client, merchant, payment["id"])

    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    assert await ledger_kinds(client, merchant, payment_id=payment["id"]) == ["payment_received"]
    assert await notification_outcomes(rt) == ["applied", "duplicate"]
    assert len(await sql(rt, "SELECT id FROM received_funds")) == 1
    # The fault was consumed: the next payment's IPN is sent once.
    other = await create_card_payment(client, merchant, amount=90000)
    await pay(client, merchant, other["id"])
    assert await notification_outcomes(rt) == ["applied", "duplicate", "applied"]


async def test_lost_ipn_leaves_the_payment_open_and_querydr_reveals_it(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    adapter = rt.registry.get("vnpay")
    ctx = await vnpay_context(rt, merchant)

    never_opened = await adapter.fetch_status(ctx, await lookup(rt, payment["id"]))
    assert (never_opened.status, never_opened.amount_received) == (ProviderStatus.requires_action, 0)  # 91
    assert (await client.get(local(payment["next_action"]["url"]))).status_code == 200
    opened = await adapter.fetch_status(ctx, await lookup(rt, payment["id"]))
    assert (opened.status, opened.provider_transaction_id) == (ProviderStatus.requires_action, None)  # 01

    await set_fault(client, "ipn_lost")
    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("requires_action", 0)
    assert await notification_outcomes(rt) == []
    status = await adapter.fetch_status(ctx, await lookup(rt, payment["id"]))
    view = await simulator_view(client, payment["provider_reference"])
    assert (status.status, status.amount_received) == (ProviderStatus.succeeded, 150000)
    # The same id the IPN would have carried: a late IPN after the query is a duplicate.
    assert status.provider_transaction_id == view["transaction_no"]
    assert status.provider_transaction_id is not None and status.provider_transaction_id.isdigit()
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"


async def test_querydr_reports_a_canceled_payment_failed(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"], outcome="failure")

    status = await rt.registry.get("vnpay").fetch_status(
        await vnpay_context(rt, merchant), await lookup(rt, payment["id"])
    )

    assert (status.status, status.failure_code) == (ProviderStatus.failed, "vnpay_02")


async def test_merchant_api_refuses_a_bad_checksum(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])
    query = {
        "vnp_RequestId": "R1",
        "vnp_Version": "2.1.0",
        "vnp_Command": "querydr",
        "vnp_TmnCode": TMN,
        "vnp_TxnRef": payment["provider_reference"],
        "vnp_TransactionDate": "20261122170000",
        "vnp_CreateDate": "20261122170500",
        "vnp_IpAddr": "127.0.0.1",
        "vnp_OrderInfo": "query",
        "vnp_SecureHash": "0" * 128,
    }
    answer = await client.post(f"{SIM}/merchant_webapi/api/transaction", json=query)
    assert answer.status_code == 200
    assert answer.json()["vnp_ResponseCode"] == "97"
