"""Which payment a provider's report of funds credits, and when it credits none (CONTRACT.md §3, §6, §8):
a card or wallet order is paid once; a bank transfer payment takes every transfer; a failed transfer is a
fact about that transfer, not about the payment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

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
from tests.notifications.test_vietqr_notifications import SUCCESS, received_funds
from tests.notifications.vietqr_bank import transfer
from tests.payments.test_momo_flow import momo_payment, post_ipn, signed_ipn
from tests.payments.test_vnpay_flow import CONFIRM_SUCCESS, IPN, create_card_payment, hash_secret, ipn_fields
from tests.payments.test_vnpay_flow import signed_ipn_query as vnpay_query

ALREADY_CONFIRMED = {"RspCode": "02", "Message": "Order already confirmed"}


async def vnpay_ipn(client: httpx.AsyncClient, rt: Runtime, txn_ref: str, amount: int, **fields: str) -> httpx.Response:
    return await client.get(f"{IPN}?{vnpay_query(hash_secret(rt), **ipn_fields(txn_ref, amount, **fields))}")


async def assert_credited_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, payment: dict[str, Any], amount: int
) -> None:
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("succeeded", amount)
    assert [t["kind"] for t in await ledger_of(client, merchant, payment_id=payment["id"])] == ["payment_received"]
    assert len(await events_of(client, merchant, type="payment.succeeded")) == 1
    doubled = await refund(client, merchant, payment["id"], amount=2 * amount)
    assert doubled.status_code == 422, doubled.text
    assert doubled.json()["code"] == "amount_exceeds_refundable"
    balance = (await client.get("/v1/balance", headers=merchant.headers)).json()["balances"]
    assert balance == [{"currency": "VND", "collected": amount, "refunded": 0, "net": amount}]


# --- a card or wallet order is paid once ---------------------------------------------------------------


async def test_a_second_vnpay_success_for_a_paid_order_is_answered_02_and_recorded_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=330000)
    ref = payment["provider_reference"]

    first = await vnpay_ipn(client, rt, ref, 330000, vnp_TransactionNo="90000001")
    second = await vnpay_ipn(client, rt, ref, 330000, vnp_TransactionNo="90000002")
    retried = await vnpay_ipn(client, rt, ref, 330000, vnp_TransactionNo="90000002")

    assert first.json() == CONFIRM_SUCCESS
    assert second.json() == ALREADY_CONFIRMED
    assert retried.json() == ALREADY_CONFIRMED
    await assert_credited_once(client, merchant, rt, payment, 330000)
    funds = await received_funds(rt)
    assert [(f["provider_transaction_id"], f["status"], f["payment_id"], f["amount"]) for f in funds] == [
        ("90000001", "matched", payment["id"], 330000),
        ("90000002", "unmatched", payment["id"], 330000),  # kept for operators: the payer was charged twice
    ]
    assert funds[1]["reason"]


async def test_a_second_momo_success_for_a_paid_order_is_recorded_not_credited(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await momo_payment(client, merchant, amount=330000)

    first = await post_ipn(client, signed_ipn(rt, payment["id"], 330000, 0, transId=4100000001))
    second = await post_ipn(client, signed_ipn(rt, payment["id"], 330000, 0, transId=4100000002))

    assert (first.status_code, second.status_code) == (204, 204)
    await assert_credited_once(client, merchant, rt, payment, 330000)
    funds = await received_funds(rt)
    assert [(f["provider_transaction_id"], f["status"], f["payment_id"]) for f in funds] == [
        ("4100000001", "matched", payment["id"]),
        ("4100000002", "unmatched", payment["id"]),
    ]


async def test_a_late_card_success_after_cancel_still_succeeds_and_a_second_one_does_not_add(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    canceled = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=merchant.headers)
    assert canceled.json()["status"] == "canceled"

    late = await vnpay_ipn(client, rt, payment["provider_reference"], 150000, vnp_TransactionNo="91000001")
    again = await vnpay_ipn(client, rt, payment["provider_reference"], 150000, vnp_TransactionNo="91000002")

    assert late.json() == CONFIRM_SUCCESS
    assert again.json() == ALREADY_CONFIRMED
    [event] = await events_of(client, merchant, type="payment.succeeded")
    assert event.get("late") is True
    await assert_credited_once(client, merchant, rt, payment, 150000)


async def test_a_vnpay_success_for_a_failed_payment_is_answered_02_and_kept_for_operators(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_card_payment(client, merchant, amount=150000)
    failed = await pay(client, merchant, payment["id"], outcome="failure")
    assert failed.json()["status"] == "failed"

    answer = await vnpay_ipn(client, rt, payment["provider_reference"], 150000, vnp_TransactionNo="92000001")

    assert answer.json() == ALREADY_CONFIRMED
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"]) == ("failed", 0)
    assert await ledger_of(client, merchant, payment_id=payment["id"]) == []
    assert [(f["status"], f["payment_id"]) for f in await received_funds(rt)] == [("unmatched", payment["id"])]
    # The amount is checked before "already confirmed", in VNPAY's order.
    wrong = await vnpay_ipn(client, rt, payment["provider_reference"], 1000, vnp_TransactionNo="92000002")
    assert wrong.json() == {"RspCode": "04", "Message": "Invalid amount"}


# --- a bank transfer payment: a failed transfer fails nothing ------------------------------------------


async def test_a_failed_transfer_leaves_the_payment_payable_and_its_funds_refundable(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    code = payment["provider_reference"]
    await transfer(client, rt, clock, code, 100000)

    failed, _ = await transfer(
        client, rt, clock, code, 50000, status="failed", failure_reason="Payer's bank rejected the transfer"
    )

    assert (failed.status_code, failed.json()) == (200, SUCCESS)
    after = await get_payment(client, merchant, payment["id"])
    assert (after["status"], after["amount_received"], after["failure_code"]) == ("requires_action", 100000, None)
    assert after["next_action"]["type"] == "display_qr"
    assert "payment.failed" not in types(await events_of(client, merchant))
    [stored] = await sql(rt, "SELECT outcome, payment_id FROM provider_notifications WHERE body LIKE '%failed%'")
    assert stored["payment_id"] == payment["id"]

    good, _ = await transfer(client, rt, clock, code, 50000)

    assert (good.status_code, good.json()) == (200, SUCCESS)
    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 150000)
    assert [f["status"] for f in await received_funds(rt)] == ["matched", "matched"]
    refunded = await refund(client, merchant, payment["id"], amount=150000)
    assert refunded.status_code == 201, refunded.text
    assert refunded.json()["status"] == "succeeded"


async def test_the_test_helper_failure_outcome_leaves_a_vietqr_payment_payable(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)

    failed = await pay(client, merchant, payment["id"], outcome="failure")

    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["amount_received"]) == ("requires_action", 0)
    paid = await pay(client, merchant, payment["id"])
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 150000)
    assert [f["status"] for f in await received_funds(rt)] == ["matched"]


# --- a transfer naming two payment codes ----------------------------------------------------------------


@pytest.mark.parametrize("first_state", ["failed", "succeeded", "expired"])
async def test_a_transfer_naming_two_codes_goes_to_the_payable_one(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock, first_state: str
) -> None:
    first = await create_vietqr_payment(client, merchant, amount=150000, expires_in=60)
    payable = await create_vietqr_payment(client, merchant, amount=90000, expires_in=3600)
    assert first["id"] < payable["id"]  # the one the lookup used to pick
    if first_state == "succeeded":
        await pay(client, merchant, first["id"])
    elif first_state == "expired":
        clock.advance(61)
        assert (await get_payment(client, merchant, first["id"]))["status"] == "expired"
    else:  # a state only payments from before this change reach through a bank transfer
        async with rt.db.transaction() as session:
            await session.execute(
                text("UPDATE payments SET status = 'failed', failure_code = 'transfer_failed' WHERE id = :id"),
                {"id": first["id"]},
            )
    before = await get_payment(client, merchant, first["id"])

    response, _ = await transfer(
        client, rt, clock, f"{first['provider_reference']} {payable['provider_reference']}", 90000
    )

    assert (response.status_code, response.json()) == (200, SUCCESS)
    paid = await get_payment(client, merchant, payable["id"])
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 90000)
    assert await get_payment(client, merchant, first["id"]) == before
    assert [f["payment_id"] for f in await received_funds(rt) if f["amount"] == 90000] == [payable["id"]]
