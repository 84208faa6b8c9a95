"""Listing refunds (CONTRACT §4)."""

from __future__ import annotations

import httpx

from tests.conftest import MerchantHandle, create_vietqr_payment, pay


async def test_refund_list_by_payment(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant, amount=30000)
    await pay(client, merchant, payment["id"])
    made = []
    for _ in range(3):
        refund = await client.post(
            "/v1/refunds", json={"payment_id": payment["id"], "amount": 10000}, headers=merchant.idem()
        )
        made.append(refund.json()["id"])
    listed = (await client.get(f"/v1/refunds?payment_id={payment['id']}&limit=2", headers=merchant.headers)).json()
    assert [r["id"] for r in listed["data"]] == made[::-1][:2] and listed["has_more"] is True
