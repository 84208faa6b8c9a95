"""Organisation units created through the API, and the small province most tests count in."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ADMIN, MerchantHandle

# Hà Tĩnh (target 50%) with two districts, a commune of Thạch Hà, and a department straight under the province.
PROVINCE_TREE: list[dict[str, Any]] = [
    {"code": "HT", "name": "Hà Tĩnh", "kind": "province", "parent": None, "online_target": 0.5},
    {"code": "TH", "name": "Thạch Hà", "kind": "district", "parent": "HT", "online_target": 0.4},
    {"code": "CX", "name": "Cẩm Xuyên", "kind": "district", "parent": "HT", "online_target": 0.6},
    {"code": "TH-TV", "name": "Thạch Văn", "kind": "commune", "parent": "TH", "online_target": None},
    {"code": "SYT", "name": "Sở Y tế", "kind": "agency", "parent": "HT", "online_target": None},
]


async def post_unit(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/org-units", json=body, headers=ADMIN)


async def province_tree(client: httpx.AsyncClient) -> None:
    for unit in PROVINCE_TREE:
        response = await post_unit(client, **unit)
        assert response.status_code == 201, response.text


async def set_merchant_unit(client: httpx.AsyncClient, merchant: MerchantHandle, code: str | None) -> None:
    response = await client.patch(f"/v1/merchants/{merchant.id}", json={"org_unit": code}, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json()["org_unit"] == code


async def set_customer_unit(
    client: httpx.AsyncClient, merchant: MerchantHandle, customer_id: str, code: str | None
) -> None:
    response = await client.patch(f"/v1/customers/{customer_id}", json={"org_unit": code}, headers=merchant.headers)
    assert response.status_code == 200, response.text
