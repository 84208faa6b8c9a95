"""The test helper `pay` (CONTRACT.md §7) on payments that already ended: a card or wallet order cannot be paid
twice (409 invalid_state, as problem+json), a bank account takes any further transfer, and a canceled or
expired payment still receives late funds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.clock import ManualClock
from gateway.db import UnitOfWork
from tests.conftest import BASE_URL, MerchantHandle, create_vietqr_payment, events_of, get_payment, ledger_of, pay
from tests.payments.test_momo_flow import momo_payment
from tests.payments.test_vnpay_flow import create_card_payment


async def paid_once(client: httpx.AsyncClient, merchant: MerchantHandle, method: str) -> dict[str, object]:
    payment = (
        await create_card_payment(client, merchant, amount=150000)
        if method == "card"
        else await momo_payment(client, merchant, amount=150000)
    )
    return dict(payment)


@pytest.mark.parametrize("method", ["card", "ewallet"])
@pytest.mark.parametrize("first", ["success", "failure"])
async def test_paying_an_ended_card_or_wallet_order_again_is_409(
    client: httpx.AsyncClient, merchant: MerchantHandle, method: str, first: str
) -> None:
    payment = await paid_once(client, merchant, method)
    done = await pay(client, merchant, str(payment["id"]), outcome=first)
    assert done.json()["status"] == ("succeeded" if first == "success" else "failed")
    before = await get_payment(client, merchant, str(payment["id"]))

    again = await pay(client, merchant, str(payment["id"]), amount=150000)

    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "invalid_state"
    assert await get_payment(client, merchant, str(payment["id"])) == before
    expected = 1 if first == "success" else 0
    assert len(await ledger_of(client, merchant, payment_id=str(payment["id"]))) == expected


async def test_a_further_transfer_to_a_paid_vietqr_payment_is_credited_as_surplus(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=150000)
    await pay(client, merchant, payment["id"])

    owed_nothing = await pay(client, merchant, payment["id"])
    surplus = await pay(client, merchant, payment["id"], amount=20000)

    assert owed_nothing.status_code == 409, owed_nothing.text
    assert owed_nothing.json()["code"] == "invalid_state"
    # A bank cannot refuse a transfer into the account: the money is the payment's, and refundable.
    assert surplus.status_code == 200, surplus.text
    assert (surplus.json()["status"], surplus.json()["amount_received"]) == ("succeeded", 170000)
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 2


async def test_late_funds_for_a_canceled_card_payment_and_an_expired_wallet_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock
) -> None:
    card = await create_card_payment(client, merchant, amount=150000)
    wallet = await momo_payment(client, merchant, amount=150000)
    assert (await client.post(f"/v1/payments/{card['id']}/cancel", headers=merchant.headers)).status_code == 200

    late_card = await pay(client, merchant, card["id"])
    clock.advance(901)
    assert (await get_payment(client, merchant, wallet["id"]))["status"] == "expired"
    late_wallet = await pay(client, merchant, wallet["id"])

    for late in (late_card, late_wallet):
        assert late.status_code == 200, late.text
        assert (late.json()["status"], late.json()["amount_received"]) == ("succeeded", 150000)
    assert [e.get("late") for e in await events_of(client, merchant, type="payment.succeeded")] == [True, True]


async def test_a_pay_retried_after_a_crash_past_the_payment_answers_the_paid_payment(
    app: FastAPI, merchant: MerchantHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        payment = await create_vietqr_payment(client, merchant)
        original, crashes = UnitOfWork.resume, [RuntimeError("simulated crash after the payer paid")]

        async def crash_once(self: UnitOfWork) -> Any:
            if crashes:
                raise crashes.pop()
            return await original(self)

        monkeypatch.setattr(UnitOfWork, "resume", crash_once)
        headers = merchant.idem("pay-after-crash")
        crashed = await client.post(
            f"/v1/test-helpers/payments/{payment['id']}/pay", json={"outcome": "success"}, headers=headers
        )
        assert crashed.status_code == 500
        retried = await client.post(
            f"/v1/test-helpers/payments/{payment['id']}/pay", json={"outcome": "success"}, headers=headers
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "succeeded" and retried.json()["amount_received"] == 150000
        assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1
