"""Bad refund requests are refused with the right problem document, and nothing is written (CONTRACT §4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import INVALID_KEYS, MerchantHandle, assert_problem, create_vietqr_payment, paid_payment


async def test_create_refund_without_idempotency_key(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await paid_payment(client, merchant)

    response = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.headers)

    assert_problem(response, 400, "idempotency_key_missing")
    refunds = await client.get("/v1/refunds", headers=merchant.headers)
    assert refunds.status_code == 200 and refunds.json()["data"] == []
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["amount_refunded"] == 0


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_create_refund_with_invalid_idempotency_key(
    client: httpx.AsyncClient, merchant: MerchantHandle, key: str | bytes
) -> None:
    payment = await paid_payment(client, merchant)
    response = await client.post(
        "/v1/refunds",
        json={"payment_id": payment["id"]},
        headers={**merchant.headers, "Idempotency-Key": key},
    )
    assert_problem(response, 400, "idempotency_key_invalid")
    refunds = await client.get("/v1/refunds", headers=merchant.headers)
    assert refunds.json()["data"] == []


async def test_refund_a_payment_awaiting_the_payer(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant)
    assert payment["status"] == "requires_action"

    response = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())

    assert_problem(response, 409, "invalid_state")
    assert (await client.get("/v1/refunds", headers=merchant.headers)).json()["data"] == []


async def test_refund_more_than_received(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await paid_payment(client, merchant, amount=150000)
    assert payment["amount_received"] == 150000

    response = await client.post(
        "/v1/refunds", json={"payment_id": payment["id"], "amount": 150001}, headers=merchant.idem()
    )

    assert_problem(response, 422, "amount_exceeds_refundable")
    assert (await client.get("/v1/refunds", headers=merchant.headers)).json()["data"] == []
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["amount_refunded"] == 0


@pytest.mark.parametrize("second", [{"amount": 150000}, {}], ids=["explicit-amount", "default-amount"])
async def test_a_second_full_refund(
    client: httpx.AsyncClient, merchant: MerchantHandle, second: dict[str, Any]
) -> None:
    payment = await paid_payment(client, merchant, amount=150000)
    first = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == 150000

    response = await client.post("/v1/refunds", json={"payment_id": payment["id"], **second}, headers=merchant.idem())

    assert_problem(response, 422, "amount_exceeds_refundable")
    refunds = (await client.get("/v1/refunds", headers=merchant.headers)).json()["data"]
    assert [r["id"] for r in refunds] == [first.json()["id"]]
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["amount_refunded"] == 150000


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"amount": 1000}, ["body", "payment_id"], id="payment-id-missing"),
        pytest.param({"payment_id": "PAYMENT", "amount": 0}, ["body", "amount"], id="amount-zero"),
        pytest.param({"payment_id": "PAYMENT", "amount": 1000.0}, ["body", "amount"], id="amount-float"),
        pytest.param({"payment_id": "PAYMENT", "amount": "1000"}, ["body", "amount"], id="amount-string"),
        pytest.param({"payment_id": "PAYMENT", "ammount": 1000}, ["body", "ammount"], id="typo"),
    ],
)
async def test_create_refund_refuses_bad_input(
    client: httpx.AsyncClient, merchant: MerchantHandle, body: dict[str, Any], loc: list[str]
) -> None:
    payment = await paid_payment(client, merchant)
    if "payment_id" in body:
        body = {**body, "payment_id": payment["id"]}

    response = await client.post("/v1/refunds", json=body, headers=merchant.idem())

    assert_problem(response, 422, "validation_error", loc)
    assert (await client.get("/v1/refunds", headers=merchant.headers)).json()["data"] == []
