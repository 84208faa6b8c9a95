"""Provider callbacks that no provider should send: unsigned floods, impossible amounts, odd signatures.
None is a 500, none is stored as money, and every one is answered in the provider's own format."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, create_vietqr_payment, get_payment, ledger_of
from tests.notifications.test_vietqr_notifications import assert_unpaid, notifications_stored, received_funds
from tests.notifications.vietqr_bank import (
    NOTIFY_URL,
    bank_notification,
    bank_secret,
    post_raw,
    send_notification,
    signed_headers,
)
from tests.payments.test_momo_flow import NOTIFY_URL as MOMO_URL
from tests.payments.test_momo_flow import momo_payment, post_ipn, signed_ipn
from tests.payments.test_vnpay_flow import IPN, create_card_payment, hash_secret, ipn_fields, signed_ipn_query

AUDIT_PREFIX = 4096


async def post_json(client: httpx.AsyncClient, fields: dict[str, Any]) -> httpx.Response:
    """POST to MoMo's callback with the standard library's encoder: it writes integers of any size."""
    return await client.post(MOMO_URL, content=json.dumps(fields), headers={"content-type": "application/json"})


# --- the audit keeps a bounded prefix of what it cannot trust --------------------------------------------


async def test_an_unverified_callback_is_kept_as_a_bounded_prefix(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    body = b'{"transaction_id": "' + b"A" * 60_000 + b'"}'  # under the 64 KB callback limit

    response = await post_raw(client, body, {"content-type": "application/json", "X-Bank-Signature": "00"})

    assert response.status_code == 401
    assert response.json()["success"] is False
    [stored] = await notifications_stored(rt)
    assert (bool(stored["verified"]), stored["outcome"]) == (False, "rejected")
    assert stored["body"] == body[:AUDIT_PREFIX].decode()
    assert str(len(body)) in stored["detail"]


async def test_a_verified_callback_is_kept_whole(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(f"{payment['provider_reference']} {'chuyen tien ' * 1500}", 150000)

    response = await send_notification(client, rt, clock, note)

    assert response.status_code == 200, response.text
    [stored] = await notifications_stored(rt)
    assert bool(stored["verified"]) is True
    assert len(stored["body"]) > AUDIT_PREFIX
    assert orjson.loads(stored["body"]) == note


# --- signatures that are not even ASCII ------------------------------------------------------------------


async def test_a_non_ascii_bank_signature_is_refused_with_401(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    body = orjson.dumps(bank_notification(payment["provider_reference"], 150000))
    headers: dict[str, Any] = signed_headers(bank_secret(rt), int(clock.now().timestamp()), body)
    headers["X-Bank-Signature"] = "chữ ký".encode()

    response = await client.post(NOTIFY_URL, content=body, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "invalid_signature"}
    await assert_unpaid(client, merchant, payment["id"])
    [stored] = await notifications_stored(rt)
    assert stored["outcome"] == "rejected"


async def test_non_ascii_vnpay_and_momo_signatures_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    card = await create_card_payment(client, merchant, amount=150000)
    query = signed_ipn_query(hash_secret(rt), **ipn_fields(card["provider_reference"], 150000))
    forged = query.split("&vnp_SecureHash=")[0] + "&vnp_SecureHash=ch%E1%BB%AF"

    vnpay = await client.get(f"{IPN}?{forged}")
    momo = await post_ipn(client, {**signed_ipn(rt, "pay_x", 150000, 0), "signature": "chữ ký"})

    assert vnpay.json() == {"RspCode": "97", "Message": "Invalid signature"}
    assert momo.status_code == 400
    assert [r["outcome"] for r in await notifications_stored(rt)] == ["rejected", "rejected"]


# --- amounts no transfer can carry ---------------------------------------------------------------------


@pytest.mark.parametrize("amount", [2**63, 10**30, 0, -150000, 150000.5])
async def test_a_signed_bank_notification_with_an_impossible_amount_is_refused_not_stored(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, amount: Any
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 0)
    body = orjson.dumps(note).replace(b'"amount":0', b'"amount":' + str(amount).encode())

    response = await post_raw(client, body, signed_headers(bank_secret(rt), int(clock.now().timestamp()), body))

    assert 400 <= response.status_code < 500, response.text
    assert response.json()["success"] is False
    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []
    [stored] = await notifications_stored(rt)
    assert stored["outcome"] != "error"


@pytest.mark.parametrize("wire_amount", ["0", "-15000000", "15000000.5", "15000050", "1" + "0" * 30])
@pytest.mark.parametrize("known_order", [True, False])
async def test_a_signed_vnpay_ipn_with_an_impossible_amount_is_answered_04(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, wire_amount: str, known_order: bool
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    ref = payment["provider_reference"] if known_order else "01NOSUCHORDER0000000000000"
    query = signed_ipn_query(hash_secret(rt), **ipn_fields(ref, 150000, vnp_Amount=wire_amount))

    answer = await client.get(f"{IPN}?{query}")

    assert answer.status_code == 200
    # VNPAY's order: 01 for an order the gateway does not know (when the amount can be read at all), else 04.
    expected = {"04"} if known_order else {"01", "04"}
    assert answer.json()["RspCode"] in expected, answer.json()
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("requires_action", 0)
    assert await received_funds(rt) == []
    assert await ledger_of(client, merchant) == []


@pytest.mark.parametrize("amount", [0, -150000, 150000.5, "150000", 10**30, True])
async def test_a_signed_momo_ipn_with_an_impossible_amount_is_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, amount: Any
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)

    response = await post_json(client, signed_ipn(rt, payment["id"], amount, 0))

    assert response.status_code in (204, 400), response.text
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("requires_action", 0)
    assert await received_funds(rt) == []
    assert await ledger_of(client, merchant) == []
    [stored] = await notifications_stored(rt)
    assert stored["outcome"] != "error"


@pytest.mark.parametrize("field", ["transId", "resultCode"])
async def test_a_signed_momo_ipn_with_a_huge_number_is_not_a_500(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, field: str
) -> None:
    payment = await momo_payment(client, merchant, amount=150000)
    fields: dict[str, Any] = {"transId": 4100000001, "result_code": 1006}
    fields["result_code" if field == "resultCode" else field] = 10**130

    response = await post_json(client, signed_ipn(rt, payment["id"], 150000, **fields))

    assert response.status_code in (204, 400), response.text
    assert (await get_payment(client, merchant, payment["id"]))["amount_received"] == 0
