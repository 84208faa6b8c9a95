"""A refund settles once, however its outcome is learned, and never refunds more than was received."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import orjson

from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vietqr.wire import sign_bank_message
from gateway.runtime import Runtime
from tests.conftest import (
    MerchantHandle,
    create_vietqr_payment,
    events_of,
    get_payment,
    ledger_of,
    pay,
    refund,
    sandbox_secrets,
)


async def test_a_refund_confirmed_after_it_failed_succeeds_late(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=60000)
    await pay(client, merchant, payment["id"])
    await client.post("/sandbox/vietqr/_sandbox/fail-next-transfers", json={"count": 1})
    refund = (await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())).json()
    assert refund["status"] == "failed"
    # The bank's transfer went out after all: its completed debit notification must not be dropped.
    settings = VietQRAdapter.sandbox.settings
    body = orjson.dumps(
        {
            "transaction_id": "FT-LATE-1",
            "bank_bin": settings["bank_bin"],
            "account_number": settings["account_number"],
            "direction": "debit",
            "amount": 60000,
            "currency": "VND",
            "content": "Hoan tien",
            "request_id": refund["id"],
        }
    )
    timestamp = str(int(rt.clock.now().timestamp()))
    secret = sandbox_secrets(rt, "vietqr")["webhook_secret"]
    answer = await client.post(
        "/v1/providers/vietqr/notifications",
        content=body,
        headers={"x-bank-timestamp": timestamp, "x-bank-signature": sign_bank_message(secret, timestamp, body)},
    )
    assert answer.status_code == 200
    late = (await client.get(f"/v1/refunds/{refund['id']}", headers=merchant.headers)).json()
    assert late["status"] == "succeeded" and late["failure_code"] is None
    assert (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()[
        "amount_refunded"
    ] == 60000
    kinds = [
        t["kind"]
        for t in (
            await client.get(f"/v1/ledger/transactions?refund_id={refund['id']}", headers=merchant.headers)
        ).json()["data"]
    ]
    assert kinds == ["refund_succeeded"]


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
