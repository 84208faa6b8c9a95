"""What the receipts tests share: turning receipts on, reading a payment's receipts."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ADMIN, MerchantHandle

SELLER = {
    "name": "Công ty Điện lực Quảng Ninh",
    "tax_code": "5700100256",
    "address": "Số 21 Lê Thánh Tông, Hạ Long, Quảng Ninh",
}
SETTINGS = {"enabled": True, "template": "01BLP0-001", "series": "AA-26E", "seller": SELLER}


async def put_receipt_settings(client: httpx.AsyncClient, merchant: MerchantHandle, **overrides: Any) -> httpx.Response:
    return await client.put(f"/v1/merchants/{merchant.id}/receipts", json={**SETTINGS, **overrides}, headers=ADMIN)


async def enable_receipts(client: httpx.AsyncClient, merchant: MerchantHandle, **overrides: Any) -> dict[str, Any]:
    response = await put_receipt_settings(client, merchant, **overrides)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def receipts_of(
    client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str | None = None, **query: str
) -> list[dict[str, Any]]:
    params = {"limit": "100", **query, **({"payment_id": payment_id} if payment_id else {})}
    response = await client.get("/v1/receipts", params=params, headers=merchant.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def the_receipt(client: httpx.AsyncClient, merchant: MerchantHandle, payment_id: str) -> dict[str, Any]:
    found = await receipts_of(client, merchant, payment_id)
    assert len(found) == 1, found
    return found[0]
