"""The bank's signed transfer notifications (PROVIDERS.md, "Bank transfer notification") and what they do to
payments, refunds, the ledger and the events (CONTRACT.md §3, §5, §6, §7, §8).

Notifications are built and signed here exactly as a bank would send them, with the sandbox account's
webhook secret, and POSTed to the gateway's public callback route.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from gateway.adapters.vietqr.wire import payment_code
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import (
    MerchantHandle,
    create_vietqr_payment,
    events_of,
    get_payment,
    ledger_of,
    pay,
    refund,
    sql,
    types,
)
from tests.notifications.vietqr_bank import (
    bank_notification,
    bank_secret,
    post_raw,
    send_notification,
    signed_headers,
    transfer,
)

# --- a bank, as seen from the gateway ------------------------------------------------------------------


# --- reading the outcome -------------------------------------------------------------------------------


async def notifications_stored(rt: Runtime) -> list[dict[str, Any]]:
    return await sql(
        rt,
        "SELECT verified, outcome, detail, payment_id, body FROM provider_notifications ORDER BY received_at, id",
    )


async def received_funds(rt: Runtime) -> list[dict[str, Any]]:
    return await sql(
        rt,
        "SELECT provider_transaction_id, payment_id, amount, currency, status, reason FROM received_funds "
        "ORDER BY received_at, id",
    )


async def assert_unpaid(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> None:
    """Still waiting for the payer, nothing received, nothing posted, no success reported."""
    payment = await get_payment(client, merchant, payment_id)
    assert (payment["status"], payment["amount_received"]) == ("requires_action", 0)
    assert await ledger_of(client, merchant, payment_id=payment_id) == []
    assert "payment.succeeded" not in types(await events_of(client, merchant))
    assert "payment.partially_paid" not in types(await events_of(client, merchant))


SUCCESS = {"success": True}


# --- signatures: forged, tampered, stale, missing ------------------------------------------------------


async def test_forged_signature_is_refused_changes_nothing_and_is_kept_for_audit(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 150000)

    response = await send_notification(client, rt, clock, note, secret="not-the-bank-secret")

    assert response.status_code == 401
    assert response.json()["success"] is False
    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []
    [stored] = await notifications_stored(rt)
    assert bool(stored["verified"]) is False
    assert stored["outcome"] == "rejected"
    assert orjson.loads(stored["body"]) == note


async def test_body_tampered_after_signing_is_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 1000)
    timestamp = int(clock.now().timestamp())
    headers = signed_headers(bank_secret(rt), timestamp, orjson.dumps(note))

    tampered = orjson.dumps({**note, "amount": 150000})
    response = await post_raw(client, tampered, headers)

    assert response.status_code == 401
    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []
    [stored] = await notifications_stored(rt)
    assert (bool(stored["verified"]), stored["outcome"]) == (False, "rejected")


@pytest.mark.parametrize("offset", [-301, 301, -3600])
async def test_timestamp_outside_300_seconds_is_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, offset: int
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 150000)

    response = await send_notification(client, rt, clock, note, timestamp=int(clock.now().timestamp()) + offset)

    assert response.status_code == 401
    await assert_unpaid(client, merchant, payment["id"])
    [stored] = await notifications_stored(rt)
    assert (bool(stored["verified"]), stored["outcome"]) == (False, "rejected")


@pytest.mark.parametrize("offset", [-299, 299, 0])
async def test_timestamp_within_300_seconds_is_accepted(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, offset: int
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 150000)

    response = await send_notification(client, rt, clock, note, timestamp=int(clock.now().timestamp()) + offset)

    assert response.status_code == 200, response.text
    assert response.json() == SUCCESS
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1


@pytest.mark.parametrize("missing", ["both", "signature", "timestamp", "empty_signature"])
async def test_missing_signature_headers_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, missing: str
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    body = orjson.dumps(bank_notification(payment["provider_reference"], 150000))
    headers = signed_headers(bank_secret(rt), int(clock.now().timestamp()), body)
    if missing in ("both", "signature"):
        del headers["X-Bank-Signature"]
    if missing in ("both", "timestamp"):
        del headers["X-Bank-Timestamp"]
    if missing == "empty_signature":
        headers["X-Bank-Signature"] = ""

    response = await post_raw(client, body, headers)

    assert response.status_code == 401
    await assert_unpaid(client, merchant, payment["id"])
    assert await received_funds(rt) == []
    [stored] = await notifications_stored(rt)
    assert (bool(stored["verified"]), stored["outcome"]) == (False, "rejected")


# --- repeats and matching ------------------------------------------------------------------------------


async def test_the_same_transfer_notified_twice_counts_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    note = bank_notification(payment["provider_reference"], 150000)

    first = await send_notification(client, rt, clock, note)
    clock.advance(30)  # the bank retries a little later, re-signing the same body
    second = await send_notification(client, rt, clock, note)

    assert (first.status_code, first.json()) == (200, SUCCESS)
    assert (second.status_code, second.json()) == (200, SUCCESS)
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    [tx] = await ledger_of(client, merchant, payment_id=payment["id"])
    assert tx["kind"] == "payment_received"
    assert types(await events_of(client, merchant, type="payment.succeeded")) == ["payment.succeeded"]
    funds = await received_funds(rt)
    assert [(f["status"], f["amount"], f["payment_id"]) for f in funds] == [("matched", 150000, payment["id"])]
    assert len(await notifications_stored(rt)) == 2  # every raw notification is kept


def _spaced(code: str) -> str:
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(lambda code: code.lower(), id="lower-cased"),
        pytest.param(_spaced, id="spaces-inside"),
        pytest.param(lambda code: f"MBVCB.1234.IBFT {code} chuyen tien", id="prefix-and-suffix"),
        pytest.param(lambda code: f"MBVCB.1234.IBFT.{_spaced(code).lower()}.chuyen tien", id="all-at-once"),
    ],
)
async def test_the_payment_code_is_found_in_what_banks_make_of_the_content(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, render: Any
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    content = render(payment["provider_reference"])
    assert content != payment["provider_reference"]

    response, _ = await transfer(client, rt, clock, content, 150000)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1


async def test_a_transfer_with_an_unknown_code_is_kept_unmatched(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    unknown = payment_code("pay_01NOSUCHPAYMENT0000000000")
    assert unknown != payment["provider_reference"]

    response, note = await transfer(client, rt, clock, f"IBFT {unknown} chuyen tien", 150000)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    [funds] = await received_funds(rt)
    assert funds["status"] == "unmatched"
    assert (funds["amount"], funds["currency"], funds["payment_id"]) == (150000, "VND", None)
    assert funds["provider_transaction_id"].endswith(note["transaction_id"])
    await assert_unpaid(client, merchant, payment["id"])
    assert await ledger_of(client, merchant) == []


async def test_a_transfer_into_another_account_is_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    response, _ = await transfer(client, rt, clock, payment["provider_reference"], 150000, account_number="9988776655")

    assert response.status_code in (200, 401)
    await assert_unpaid(client, merchant, payment["id"])
    assert [f for f in await received_funds(rt) if f["status"] == "matched"] == []
    assert await ledger_of(client, merchant) == []


async def test_a_debit_for_an_unknown_refund_changes_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])
    before = await get_payment(client, merchant, payment["id"])
    events_before = await events_of(client, merchant)

    response, _ = await transfer(
        client,
        rt,
        clock,
        f"Hoan tien {payment['provider_reference']}",
        50000,
        direction="debit",
        request_id="re_01NOSUCHREFUND00000000000",
    )

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert await get_payment(client, merchant, payment["id"]) == before
    assert await events_of(client, merchant) == events_before
    assert [t["kind"] for t in await ledger_of(client, merchant)] == ["payment_received"]
    listed = await client.get(f"/v1/refunds?payment_id={payment['id']}", headers=merchant.headers)
    assert listed.json()["data"] == []


# --- amounts received ------------------------------------------------------------------------------------


async def test_a_short_transfer_keeps_the_payment_open_until_the_rest_arrives(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    code = payment["provider_reference"]

    first, _ = await transfer(client, rt, clock, code, 100000)

    assert (first.status_code, first.json()) == (200, SUCCESS)
    partial = await get_payment(client, merchant, payment["id"])
    assert (partial["status"], partial["amount_received"]) == ("requires_action", 100000)
    assert partial["next_action"]["type"] == "display_qr"
    [event] = await events_of(client, merchant, type="payment.partially_paid")
    assert event["data"]["object"]["amount_received"] == 100000
    assert event["data"]["object"]["status"] == "requires_action"
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1
    assert await events_of(client, merchant, type="payment.succeeded") == []

    clock.advance(60)
    second, _ = await transfer(client, rt, clock, code, 50000)

    assert (second.status_code, second.json()) == (200, SUCCESS)
    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 150000)
    ledger = await ledger_of(client, merchant, payment_id=payment["id"])
    assert sorted(sum(e["amount"] for e in t["entries"] if e["direction"] == "debit") for t in ledger) == [
        50000,
        100000,
    ]
    assert len(await events_of(client, merchant, type="payment.partially_paid")) == 1
    assert len(await events_of(client, merchant, type="payment.succeeded")) == 1


async def test_a_larger_transfer_succeeds_and_the_surplus_is_refundable(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    response, _ = await transfer(client, rt, clock, payment["provider_reference"], 200000)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["amount"], paid["amount_received"]) == ("succeeded", 150000, 200000)

    too_much = await refund(client, merchant, payment["id"], amount=200001)
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["code"] == "amount_exceeds_refundable"

    everything = await refund(client, merchant, payment["id"], amount=200000)
    assert everything.status_code == 201, everything.text
    assert everything.json()["status"] == "succeeded"
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 200000

    nothing_left = await refund(client, merchant, payment["id"], amount=1)
    assert nothing_left.status_code == 422
    assert nothing_left.json()["code"] == "amount_exceeds_refundable"


# --- late funds, expiry -----------------------------------------------------------------------------------


async def test_funds_for_a_canceled_payment_make_it_succeed_late(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    canceled = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=merchant.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"

    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"
    [event] = await events_of(client, merchant, type="payment.succeeded")
    assert event.get("late") is True
    assert event["data"]["object"]["status"] == "succeeded"
    assert len(await events_of(client, merchant, type="payment.canceled")) == 1
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1


async def test_funds_for_an_expired_payment_make_it_succeed_late(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    clock.advance(901)
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "expired"
    assert len(await events_of(client, merchant, type="payment.expired")) == 1

    paid = await pay(client, merchant, payment["id"])

    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    [event] = await events_of(client, merchant, type="payment.succeeded")
    assert event.get("late") is True
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1


# --- failures and terminal states ----------------------------------------------------------------------


async def test_a_failed_transfer_leaves_the_payment_payable_and_later_funds_pay_it(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    failed = await pay(client, merchant, payment["id"], outcome="failure")

    # A rejected transfer is a fact about that transfer: the payer may send another one.
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["failure_code"]) == ("requires_action", None)
    assert failed.json()["amount_received"] == 0
    assert await events_of(client, merchant, type="payment.failed") == []
    assert await ledger_of(client, merchant, payment_id=payment["id"]) == []

    response, _ = await transfer(client, rt, clock, payment["provider_reference"], 150000)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    funds = await received_funds(rt)
    assert [(f["status"], f["amount"], f["payment_id"]) for f in funds] == [("matched", 150000, payment["id"])]
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1
    assert len(await events_of(client, merchant, type="payment.succeeded")) == 1


# --- refunds ---------------------------------------------------------------------------------------------


# --- events ------------------------------------------------------------------------------------------------
