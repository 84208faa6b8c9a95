"""The bank's signed transfer notifications (PROVIDERS.md, "Bank transfer notification") and what they do to
payments, refunds, the ledger and the events (CONTRACT.md §3, §5, §6, §7, §8).

Notifications are built and signed here exactly as a bank would send them, with the sandbox account's
webhook secret, and POSTed to the gateway's public callback route.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vietqr.wire import payment_code, sign_bank_message
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from gateway.workers import sweep_once
from tests.conftest import MerchantHandle, create_vietqr_payment, pay, sandbox_secrets

NOTIFY_URL = "/v1/providers/vietqr/notifications"
SANDBOX = VietQRAdapter.sandbox.settings


# --- a bank, as seen from the gateway ------------------------------------------------------------------


def bank_secret(rt: Runtime) -> str:
    return sandbox_secrets(rt, "vietqr")["webhook_secret"]


def bank_notification(content: str, amount: int, **overrides: Any) -> dict[str, Any]:
    """A credit to the sandbox account, as the bank reports it."""
    note: dict[str, Any] = {
        "transaction_id": f"FT26326{uuid.uuid4().hex[:10].upper()}",
        "bank_bin": SANDBOX["bank_bin"],
        "account_number": SANDBOX["account_number"],
        "direction": "credit",
        "amount": amount,
        "currency": "VND",
        "content": content,
        "counter_bank_bin": "970415",
        "counter_account_number": "0123456789",
        "counter_account_name": "NGUYEN VAN A",
        "transaction_time": "2026-11-22T17:05:00+07:00",
    }
    note.update(overrides)
    return note


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "X-Bank-Timestamp": str(timestamp),
        "X-Bank-Signature": sign_bank_message(secret, str(timestamp), body),
    }


async def post_raw(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(NOTIFY_URL, content=body, headers=headers)


async def send_notification(
    client: httpx.AsyncClient,
    rt: Runtime,
    clock: ManualClock,
    note: dict[str, Any],
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> httpx.Response:
    """Sign `note` like the bank does and POST it."""
    body = orjson.dumps(note)
    ts = int(clock.now().timestamp()) if timestamp is None else timestamp
    return await post_raw(client, body, signed_headers(secret or bank_secret(rt), ts, body))


async def transfer(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock, content: str, amount: int, **overrides: Any
) -> tuple[httpx.Response, dict[str, Any]]:
    note = bank_notification(content, amount, **overrides)
    return await send_notification(client, rt, clock, note), note


# --- reading the outcome -------------------------------------------------------------------------------


async def sql(rt: Runtime, statement: str, **params: Any) -> list[dict[str, Any]]:
    async with rt.db.transaction() as session:
        result = await session.execute(text(statement), params)
        return [dict(row._mapping) for row in result]


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


async def get_payment(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/payments/{payment_id}", headers=merchant.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ledger_of(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/ledger/transactions", params={**query, "limit": "100"}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def events_of(client: httpx.AsyncClient, merchant: MerchantHandle, **query: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={**query, "limit": "100"}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def assert_unpaid(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> None:
    """Still waiting for the payer, nothing received, nothing posted, no success reported."""
    payment = await get_payment(client, merchant, payment_id)
    assert (payment["status"], payment["amount_received"]) == ("requires_action", 0)
    assert await ledger_of(client, merchant, payment_id=payment_id) == []
    assert "payment.succeeded" not in types(await events_of(client, merchant))
    assert "payment.partially_paid" not in types(await events_of(client, merchant))


async def refund(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/refunds", json={"payment_id": payment_id, **body}, headers=merchant.idem())


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


async def test_expiry_is_checked_on_read(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    read_one = await create_vietqr_payment(client, merchant, amount=150000)
    listed_one = await create_vietqr_payment(client, merchant, amount=90000)
    clock.advance(899)
    assert (await get_payment(client, merchant, read_one["id"]))["status"] == "requires_action"

    clock.advance(2)

    got = await get_payment(client, merchant, read_one["id"])
    assert got["status"] == "expired"
    assert got["next_action"] is None
    listing = await client.get("/v1/payments", headers=merchant.headers)
    assert listing.status_code == 200
    statuses = {p["id"]: p["status"] for p in listing.json()["data"]}
    assert statuses == {read_one["id"]: "expired", listed_one["id"]: "expired"}
    expired_filter = await client.get("/v1/payments?status=expired", headers=merchant.headers)
    assert {p["id"] for p in expired_filter.json()["data"]} == {read_one["id"], listed_one["id"]}
    assert len(await events_of(client, merchant, type="payment.expired")) == 2


async def test_the_sweeper_expires_due_payments_only(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    due = [await create_vietqr_payment(client, merchant, amount=150000) for _ in range(2)]
    later = await create_vietqr_payment(client, merchant, amount=150000, expires_in=3600)
    clock.advance(901)

    assert await sweep_once(rt) == 2

    rows = await sql(rt, "SELECT id, status FROM payments")
    assert {r["id"]: r["status"] for r in rows} == {
        due[0]["id"]: "expired",
        due[1]["id"]: "expired",
        later["id"]: "requires_action",
    }
    expired_events = await events_of(client, merchant, type="payment.expired")
    assert sorted(e["data"]["object"]["id"] for e in expired_events) == sorted(p["id"] for p in due)
    assert await sweep_once(rt) == 0
    assert (await get_payment(client, merchant, later["id"]))["status"] == "requires_action"


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


async def test_a_succeeded_payment_never_goes_back(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])

    cancel = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=merchant.headers)
    confirm = await client.post(f"/v1/payments/{payment['id']}/confirm", headers=merchant.headers)

    assert cancel.status_code == 409, cancel.text
    assert cancel.json()["code"] == "invalid_state"
    assert confirm.status_code == 409, confirm.text
    assert confirm.json()["code"] == "invalid_state"
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", 150000)
    assert await events_of(client, merchant, type="payment.canceled") == []


# --- refunds ---------------------------------------------------------------------------------------------


async def test_a_refund_the_bank_rejects_fails_and_frees_the_amount(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])
    armed = await client.post("/sandbox/vietqr/_sandbox/fail-next-transfers", json={"count": 1})
    assert armed.status_code == 200, armed.text

    rejected = await refund(client, merchant, payment["id"], amount=150000)

    assert rejected.status_code == 201, rejected.text
    assert rejected.json()["status"] == "failed"
    assert rejected.json()["failure_code"]
    refund_id = rejected.json()["id"]
    assert (await client.get(f"/v1/refunds/{refund_id}", headers=merchant.headers)).json()["status"] == "failed"
    [event] = await events_of(client, merchant, type="refund.failed")
    assert event["data"]["object"]["id"] == refund_id
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 0
    assert await ledger_of(client, merchant, refund_id=refund_id) == []
    assert [t["kind"] for t in await ledger_of(client, merchant, payment_id=payment["id"])] == ["payment_received"]

    again = await refund(client, merchant, payment["id"])

    assert again.status_code == 201, again.text
    assert (again.json()["status"], again.json()["amount"]) == ("succeeded", 150000)
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 150000
    assert [t["kind"] for t in await ledger_of(client, merchant, refund_id=again.json()["id"])] == ["refund_succeeded"]


async def test_concurrent_partial_refunds_never_exceed_what_was_received(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    paid = await pay(client, merchant, payment["id"])
    assert paid.json()["status"] == "succeeded"

    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/refunds",
                json={"payment_id": payment["id"], "amount": 10000},
                headers=merchant.idem(f"refund-{i}"),
            )
            for i in range(20)
        )
    )

    codes = Counter(r.status_code for r in responses)
    assert not [r.text for r in responses if r.status_code >= 500]
    assert codes == {201: 15, 422: 5}, [r.text for r in responses if r.status_code not in (201, 422)]
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"amount_exceeds_refundable"}
    assert (await get_payment(client, merchant, payment["id"]))["amount_refunded"] == 150000
    listed = await client.get(f"/v1/refunds?payment_id={payment['id']}&limit=100", headers=merchant.headers)
    refunds = listed.json()["data"]
    assert sum(r["amount"] for r in refunds if r["status"] == "succeeded") == 150000
    assert sum(r["amount"] for r in refunds if r["status"] in ("pending", "succeeded")) <= 150000
    kinds = Counter(t["kind"] for t in await ledger_of(client, merchant, payment_id=payment["id"]))
    assert kinds == {"payment_received": 1, "refund_succeeded": 15}


# --- events ------------------------------------------------------------------------------------------------


async def test_events_snapshot_the_object_and_list_newest_first(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    clock.advance(5)
    await transfer(client, rt, clock, payment["provider_reference"], 100000)
    clock.advance(5)
    await transfer(client, rt, clock, payment["provider_reference"], 50000)
    clock.advance(5)
    refunded = await refund(client, merchant, payment["id"], amount=30000)
    assert refunded.status_code == 201, refunded.text

    events = await events_of(client, merchant)

    assert types(events) == [
        "refund.succeeded",
        "refund.created",
        "payment.succeeded",
        "payment.partially_paid",
        "payment.requires_action",
    ]
    assert [e["created_at"] for e in events] == sorted((e["created_at"] for e in events), reverse=True)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    by_type = {e["type"]: e for e in events}
    succeeded = by_type["payment.succeeded"]["data"]["object"]
    assert (succeeded["id"], succeeded["status"], succeeded["amount_received"]) == (
        payment["id"],
        "succeeded",
        150000,
    )
    assert succeeded["amount_refunded"] == 0  # as it was then, not as it is now
    assert "late" not in by_type["payment.succeeded"]
    partially = by_type["payment.partially_paid"]["data"]["object"]
    assert (partially["status"], partially["amount_received"]) == ("requires_action", 100000)
    assert by_type["payment.requires_action"]["data"]["object"]["amount_received"] == 0
    assert by_type["refund.created"]["data"]["object"]["status"] == "pending"
    assert by_type["refund.succeeded"]["data"]["object"]["status"] == "succeeded"

    filtered = await events_of(client, merchant, type="payment.succeeded")
    assert [e["id"] for e in filtered] == [by_type["payment.succeeded"]["id"]]
    one = await client.get(f"/v1/events/{filtered[0]['id']}", headers=merchant.headers)
    assert one.status_code == 200
    assert one.json() == filtered[0]
