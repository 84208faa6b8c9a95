"""GET /v1/payments: filters and keyset pagination, newest first."""

from __future__ import annotations

import httpx
import pytest

from gateway.clock import ManualClock
from tests.conftest import MerchantHandle, create_vietqr_payment, pay


async def test_filters_and_pages(client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock) -> None:
    created = []
    for i in range(7):
        created.append(await create_vietqr_payment(client, merchant, amount=10000 + i, reference=f"BILL-{i % 3}"))
        clock.advance(60)
    await pay(client, merchant, created[2]["id"])
    newest_first = [p["id"] for p in reversed(created)]

    seen: list[str] = []
    cursor = None
    while True:
        query = "?limit=3" + (f"&starting_after={cursor}" if cursor else "")
        page = (await client.get(f"/v1/payments{query}", headers=merchant.headers)).json()
        assert page["object"] == "list"
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == newest_first

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/payments?{query}", headers=merchant.headers)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert await ids("status=succeeded") == [created[2]["id"]]
    assert await ids("reference=BILL-1") == [created[4]["id"], created[1]["id"]]
    assert await ids("method=vietqr&provider=vietqr&limit=100") == newest_first
    assert await ids("provider=vnpay") == []
    start = created[2]["created_at"]
    end = created[5]["created_at"]
    assert await ids(f"created_gte={start}&created_lt={end}") == [
        created[4]["id"],
        created[3]["id"],
        created[2]["id"],
    ]


@pytest.mark.parametrize("value", ["0", "1700000000", "1700000000.5", "2026-11-22", "2026-11-22T10:00:00"])
async def test_created_filters_take_rfc3339_only(
    client: httpx.AsyncClient, merchant: MerchantHandle, value: str
) -> None:
    # Issue 9: pydantic reads `0` as the unix epoch and accepts dates without an offset; RFC 3339 has neither.
    for param in ("created_gte", "created_lt"):
        response = await client.get("/v1/payments", params={param: value}, headers=merchant.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"][0]["loc"] == ["query", param]


@pytest.mark.parametrize("value", ["2026-11-22T10:00:00Z", "2026-11-22t16:59:59.123456+07:00", "2026-11-22T10:00:00z"])
async def test_created_filters_take_rfc3339(client: httpx.AsyncClient, merchant: MerchantHandle, value: str) -> None:
    await create_vietqr_payment(client, merchant)
    response = await client.get("/v1/payments", params={"created_gte": value}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 1
