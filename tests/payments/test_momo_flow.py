"""MoMo e-wallet payments through the public API and the MoMo simulator (PROVIDERS.md, "MoMo e-wallet API v2";
CONTRACT.md §3, §4, §6, §7): redirect, signed IPN, browser return, refunds, and the simulator's faults.

Hand-made IPNs are signed here with the sandbox account's keys, exactly as MoMo signs them.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from gateway.adapters.base import (
    PaymentLookup,
    ProviderDeclinedError,
    ProviderStatus,
    ProviderTechnicalError,
    StartPayment,
    StatusResult,
)
from gateway.adapters.momo.adapter import MoMoAdapter
from gateway.adapters.momo.wire import RESULT_SIGNED, momo_signature
from gateway.merchants.credentials import context_for
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, pay, sandbox_secrets

NOTIFY_URL = "/v1/providers/momo/notifications"
SIMULATOR = "/sandbox/momo"
PARTNER_CODE = MoMoAdapter.sandbox.settings["partner_code"]
RETURN_URL = "https://his.example.vn/thanh-toan/xong"


# --- helpers -------------------------------------------------------------------------------------------


async def create_momo_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, amount: int = 150000, key: str | None = None
) -> httpx.Response:
    body = {
        "amount": amount,
        "method": "ewallet",
        "reference": "EVN-PE0400012345",
        "return_url": RETURN_URL,
        "confirm": True,
    }
    return await client.post("/v1/payments", json=body, headers=merchant.idem(key))


async def momo_payment(client: httpx.AsyncClient, merchant: MerchantHandle, amount: int = 150000) -> dict[str, Any]:
    response = await create_momo_payment(client, merchant, amount)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def get_payment(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/payments/{payment_id}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger_of(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/ledger/transactions", params=query, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def sql(rt: Runtime, statement: str) -> list[dict[str, Any]]:
    async with rt.db.transaction() as session:
        return [dict(row._mapping) for row in await session.execute(text(statement))]


async def notifications_stored(rt: Runtime) -> list[tuple[bool, str]]:
    rows = await sql(rt, "SELECT verified, outcome FROM provider_notifications ORDER BY received_at, id")
    return [(bool(r["verified"]), r["outcome"]) for r in rows]


async def received_funds(rt: Runtime) -> list[dict[str, Any]]:
    return await sql(
        rt,
        "SELECT provider_transaction_id, payment_id, amount, status FROM received_funds ORDER BY received_at, id",
    )


async def assert_unpaid(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> None:
    payment = await get_payment(client, merchant, payment_id)
    assert (payment["status"], payment["amount_received"]) == ("requires_action", 0)
    assert payment["next_action"]["type"] == "redirect"
    assert await ledger_of(client, merchant, payment_id=payment_id) == []


def signed_ipn(rt: Runtime, order_id: str, amount: int, result_code: int, **overrides: Any) -> dict[str, Any]:
    """An IPN as MoMo builds it, signed with `secret_key` (the sandbox account's unless overridden)."""
    keys = sandbox_secrets(rt, "momo")
    secret_key = overrides.pop("secret_key", keys["secret_key"])
    fields: dict[str, Any] = {
        "partnerCode": PARTNER_CODE,
        "orderId": order_id,
        "requestId": order_id,
        "amount": amount,
        "orderInfo": "Thanh toan EVN-PE0400012345",
        "orderType": "momo_wallet",
        "transId": 4_200_000_000 + uuid.uuid4().int % 1_000_000,
        "resultCode": result_code,
        "message": "Thành công.",
        "payType": "qr",
        "responseTime": 1795341600000,
        "extraData": "",
        **overrides,
    }
    signed = {name: fields[name] for name in RESULT_SIGNED if name != "accessKey"}
    fields["signature"] = momo_signature(secret_key, {**signed, "accessKey": keys["access_key"]})
    return fields


async def post_ipn(client: httpx.AsyncClient, fields: dict[str, Any]) -> httpx.Response:
    return await client.post(NOTIFY_URL, content=orjson.dumps(fields), headers={"content-type": "application/json"})


async def complete_at_momo(
    client: httpx.AsyncClient, order_id: str, outcome: str = "success", **extra: Any
) -> dict[str, Any]:
    """The payer approves (or denies) the order in the MoMo app."""
    response = await client.post(f"{SIMULATOR}/_sandbox/orders/{order_id}/complete", json={"outcome": outcome, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def inject_fault(client: httpx.AsyncClient, fault: str, count: int = 1) -> None:
    response = await client.post(f"{SIMULATOR}/_sandbox/faults", json={"fault": fault, "count": count})
    assert response.status_code == 200, response.text


async def refund(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/refunds", json={"payment_id": payment_id, **body}, headers=merchant.idem())


async def fetch_status(rt: Runtime, merchant: MerchantHandle, payment: dict[str, Any]) -> StatusResult:
    """What the janitor would learn by asking MoMo."""
    adapter = rt.registry.get("momo")
    async with rt.db.transaction() as session:
        ctx = await context_for(session, rt, adapter, merchant.id, False)
    provider_data = {"order_id": payment["provider_reference"]} if payment["provider_reference"] else {}
    lookup = PaymentLookup(
        payment["id"], payment["provider_reference"], provider_data, payment["amount"], rt.clock.now()
    )
    return await adapter.fetch_status(ctx, lookup)


# --- the happy path ------------------------------------------------------------------------------------


async def test_confirm_answers_a_redirect_to_momo_with_deeplink_and_qr(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    assert (payment["status"], payment["provider"], payment["method"]) == ("requires_action", "momo", "ewallet")
    assert payment["provider_reference"] == payment["id"]
    assert payment["next_action"] == {
        "type": "redirect",
        "url": f"http://gateway.test/sandbox/momo/pay/{payment['id']}",
        "deeplink": f"momo://app?action=payWithApp&orderId={payment['id']}",
        "qr_code_url": f"momo://qr/{payment['id']}",
    }

    page = await client.get(payment["next_action"]["url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "150,000 VND" in page.text
    assert "Thanh toan EVN-PE0400012345" in page.text


async def test_the_payer_approves_and_the_ipn_succeeds_the_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    [tx] = await ledger_of(client, merchant, payment_id=payment["id"])
    assert tx["kind"] == "payment_received"
    assert sorted((e["direction"], e["amount"]) for e in tx["entries"]) == [("credit", 150000), ("debit", 150000)]
    assert await notifications_stored(rt) == [(True, "applied")]


async def test_the_ipn_is_answered_204_and_keys_funds_by_momo_trans_id(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    completed = await complete_at_momo(client, payment["id"])

    assert completed["ipn_status"] == 204
    [funds] = await received_funds(rt)
    assert (funds["provider_transaction_id"], funds["payment_id"], funds["status"]) == (
        str(completed["transId"]),
        payment["id"],
        "matched",
    )
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"


async def test_the_payer_declines_and_the_payment_fails(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant)

    paid = await pay(client, merchant, payment["id"], outcome="failure")

    assert paid.status_code == 200, paid.text
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["failure_code"], after["amount_received"]) == ("failed", "payer_declined", 0)
    assert await ledger_of(client, merchant, payment_id=payment["id"]) == []


# --- notifications: forged, unknown, wrong, repeated, pending --------------------------------------------


async def test_a_forged_ipn_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant)
    forged = signed_ipn(rt, payment["id"], 150000, 0, secret_key="not-momo's-secret")

    response = await post_ipn(client, forged)

    assert (response.status_code, response.json()) == (400, {"error": "invalid_signature"})
    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []
    assert await notifications_stored(rt) == [(False, "rejected")]

    tampered = {**signed_ipn(rt, payment["id"], 1000, 0), "amount": 150000}
    assert (await post_ipn(client, tampered)).status_code == 400
    await assert_unpaid(client, merchant, payment["id"])


async def test_an_ipn_for_an_unknown_order_is_kept_unmatched(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant)
    stranger = signed_ipn(rt, "pay_01NOSUCHORDER", 150000, 0)

    response = await post_ipn(client, stranger)

    assert (response.status_code, response.content) == (204, b"")
    [funds] = await received_funds(rt)
    assert (funds["status"], funds["payment_id"], funds["provider_transaction_id"]) == (
        "unmatched",
        None,
        str(stranger["transId"]),
    )
    assert await notifications_stored(rt) == [(True, "unmatched")]
    await assert_unpaid(client, merchant, payment["id"])


async def test_a_wrong_amount_is_not_credited(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    paid = await pay(client, merchant, payment["id"], amount=100000)

    assert paid.status_code == 200, paid.text  # MoMo's IPN was answered 204: retrying would not help
    await assert_unpaid(client, merchant, payment["id"])
    assert await notifications_stored(rt) == [(True, "amount_mismatch")]


async def test_the_same_ipn_twice_credits_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    await inject_fault(client, "ipn_twice")

    completed = await complete_at_momo(client, payment["id"])

    assert completed["ipn_status"] == 204
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1
    assert await notifications_stored(rt) == [(True, "applied"), (True, "duplicate")]


async def test_9000_authorized_is_a_success(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    response = await post_ipn(
        client, signed_ipn(rt, payment["id"], 150000, 9000, message="Giao dịch đã được xác nhận.")
    )

    assert response.status_code == 204
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)


async def test_waiting_and_processing_ipns_keep_the_payment_waiting(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant)

    for code in (1000, 7000):
        response = await post_ipn(client, signed_ipn(rt, payment["id"], 150000, code, transId=0))
        assert response.status_code == 204

    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []


# --- the browser return --------------------------------------------------------------------------------


async def test_the_browser_return_redirects_to_the_merchant(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await momo_payment(client, merchant)
    completed = await complete_at_momo(client, payment["id"])
    assert completed["return_url"].startswith("http://gateway.test/v1/providers/momo/return?")

    back = await client.get(completed["return_url"])

    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"{RETURN_URL}?payment_id={payment['id']}&status=succeeded"

    tampered = await client.get(completed["return_url"].replace("amount=150000", "amount=1000"))
    assert tampered.status_code == 400
    assert tampered.json()["code"] == "invalid_signature"


async def test_the_payment_page_buttons_complete_and_send_the_browser_back(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await momo_payment(client, merchant)

    pressed = await client.post(
        f"{SIMULATOR}/_sandbox/orders/{payment['id']}/complete",
        content=b"outcome=cancel",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert pressed.status_code == 303
    back = await client.get(pressed.headers["location"])
    assert back.headers["location"] == f"{RETURN_URL}?payment_id={payment['id']}&status=failed"
    assert (await get_payment(client, merchant, payment["id"]))["failure_code"] == "payer_declined"


# --- refunds -------------------------------------------------------------------------------------------


async def test_partial_then_full_refunds_add_up(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])

    first = await refund(client, merchant, payment["id"], amount=50000)
    rest = await refund(client, merchant, payment["id"])

    assert (first.status_code, first.json()["status"], first.json()["amount"]) == (201, "succeeded", 50000)
    assert (rest.status_code, rest.json()["status"], rest.json()["amount"]) == (201, "succeeded", 100000)
    after = await get_payment(client, merchant, payment["id"])
    assert (after["amount_received"], after["amount_refunded"]) == (150000, 150000)
    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()["balances"][0]
    assert (balance["collected"], balance["refunded"], balance["net"]) == (150000, 150000, 0)
    more = await refund(client, merchant, payment["id"], amount=1000)
    assert (more.status_code, more.json()["code"]) == (422, "amount_exceeds_refundable")


async def test_a_refund_beyond_what_momo_holds_fails(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    completed = await complete_at_momo(client, payment["id"])
    # The merchant's back office refunds part of it directly at MoMo, behind the gateway's back.
    keys = sandbox_secrets(rt, "momo")
    direct = {
        "partnerCode": PARTNER_CODE,
        "orderId": "backoffice-refund-1",
        "requestId": "backoffice-refund-1",
        "amount": 100000,
        "transId": completed["transId"],
        "lang": "vi",
        "description": "Hoan tien tai quay",
    }
    direct["signature"] = momo_signature(
        keys["secret_key"],
        {k: direct[k] for k in ("amount", "description", "orderId", "partnerCode", "requestId", "transId")}
        | {"accessKey": keys["access_key"]},
    )
    assert (await client.post(f"{SIMULATOR}/v2/gateway/api/refund", json=direct)).json()["resultCode"] == 0

    refused = await refund(client, merchant, payment["id"], amount=150000)

    assert refused.status_code == 201, refused.text
    assert (refused.json()["status"], refused.json()["failure_code"]) == ("failed", "momo_1081")
    after = await get_payment(client, merchant, payment["id"])
    assert after["amount_refunded"] == 0
    assert await ledger_of(client, merchant, refund_id=refused.json()["id"]) == []


# --- faults --------------------------------------------------------------------------------------------


async def test_momo_refusing_at_the_door_answers_503_and_a_retry_converges(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    await inject_fault(client, "create_503")
    key = f"momo-{uuid.uuid4().hex}"

    refused = await create_momo_payment(client, merchant, key=key)

    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "provider_unavailable"
    [waiting] = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert (waiting["status"], waiting["provider"]) == ("requires_confirmation", "momo")

    retried = await create_momo_payment(client, merchant, key=key)

    assert retried.status_code == 201, retried.text
    assert (retried.json()["id"], retried.json()["status"]) == (waiting["id"], "requires_action")
    listed = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert [(p["id"], p["status"]) for p in listed] == [(waiting["id"], "requires_action")]


async def test_a_create_answered_after_the_timeout_leaves_the_payment_processing(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    await inject_fault(client, "create_slow")
    default_timeout = rt.provider_http.timeout
    rt.provider_http.timeout = httpx.Timeout(0.5)
    try:
        response = await create_momo_payment(client, merchant)
    finally:
        rt.provider_http.timeout = default_timeout

    assert response.status_code == 201, response.text
    payment = response.json()
    assert (payment["status"], payment["failure_code"]) == ("processing", None)

    # The order was created at MoMo: the janitor's query finds it waiting for the payer...
    asked = await fetch_status(rt, merchant, payment)
    assert (asked.status, asked.amount_received) == (ProviderStatus.requires_action, 0)
    # ...and, once the payer approves (the IPN lost), paid.
    await inject_fault(client, "ipn_lost")
    completed = await complete_at_momo(client, payment["id"])
    assert (completed["ipn_status"], completed["ipn_lost"]) == (None, True)
    asked = await fetch_status(rt, merchant, payment)
    assert (asked.status, asked.amount_received, asked.provider_transaction_id) == (
        ProviderStatus.succeeded,
        150000,
        str(completed["transId"]),
    )


async def test_a_lost_ipn_leaves_the_payment_waiting_and_the_query_tells(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    await inject_fault(client, "ipn_lost")

    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    await assert_unpaid(client, merchant, payment["id"])
    assert await notifications_stored(rt) == []

    asked = await fetch_status(rt, merchant, payment)
    assert (asked.status, asked.amount_received) == (ProviderStatus.succeeded, 150000)
    # The same form as an IPN's transaction id (MoMo's transId), so a late IPN would be a duplicate.
    assert asked.provider_transaction_id is not None and asked.provider_transaction_id.isdigit()


async def test_momo_api_errors_keep_a_refund_pending(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])
    await inject_fault(client, "api_5xx")

    pending = await refund(client, merchant, payment["id"], amount=50000)

    assert pending.status_code == 201, pending.text
    assert (pending.json()["status"], pending.json()["failure_code"]) == ("pending", None)
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 0


async def test_the_simulator_refuses_what_momo_refuses(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    adapter = rt.registry.get("momo")
    async with rt.db.transaction() as session:
        ctx = await context_for(session, rt, adapter, merchant.id, False)
    start = StartPayment(
        payment_id=payment["id"],
        amount=150000,
        currency="VND",
        reference="EVN-PE0400012345",
        description=None,
        customer=None,
        return_url=None,
        expires_at=rt.clock.now(),
        created_at=rt.clock.now(),
    )

    # The same order again (a retry after a crash): MoMo has it already, the outcome is not known here.
    with pytest.raises(ProviderTechnicalError) as duplicate:
        await adapter.start_payment(ctx, start)
    assert (str(duplicate.value).startswith("momo_41"), duplicate.value.certainly_not_created) == (True, False)

    forged = replace(ctx, credentials=replace(ctx.credentials, secrets={**ctx.credentials.secrets, "secret_key": "x"}))
    with pytest.raises(ProviderDeclinedError) as unsigned:
        await adapter.start_payment(forged, replace(start, payment_id="pay_other_1"))
    assert unsigned.value.code == "momo_13"

    with pytest.raises(ProviderDeclinedError) as too_small:
        await adapter.start_payment(ctx, replace(start, payment_id="pay_other_2", amount=500))
    assert too_small.value.code == "momo_22"
