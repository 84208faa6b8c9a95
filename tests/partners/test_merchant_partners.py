"""Which partners may collect for a merchant (PUT /v1/merchants/{id}/partners/{partner_id}, CONTRACT §12), and the
lookups the collection routes use: enabled_for and merchant_by_biller_code."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.partners.repository import enabled_for, merchant_by_biller_code
from gateway.runtime import Runtime
from tests.conftest import ADMIN, MerchantHandle, assert_problem, create_merchant
from tests.partners.test_partners import create_partner


async def put(client: httpx.AsyncClient, merchant_id: str, partner_id: str, body: Any) -> httpx.Response:
    return await client.put(f"/v1/merchants/{merchant_id}/partners/{partner_id}", json=body, headers=ADMIN)


async def is_enabled(rt: Runtime, partner_id: str, merchant_id: str) -> bool:
    async with rt.db.transaction() as session:
        return await enabled_for(session, partner_id, merchant_id)


async def test_enabling_a_partner_creates_then_changes_one_row(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, clock: ManualClock
) -> None:
    partner = await create_partner(client)
    assert await is_enabled(rt, partner["id"], merchant.id) is False  # never enabled

    response = await put(client, merchant.id, partner["id"], {"enabled": True})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "merchant_partner",
        "merchant_id": merchant.id,
        "partner_id": partner["id"],
        "enabled": True,
        "updated_at": "2026-11-22T10:00:00Z",
    }
    assert await is_enabled(rt, partner["id"], merchant.id) is True

    clock.advance(60)
    disabled = (await put(client, merchant.id, partner["id"], {"enabled": False})).json()
    assert (disabled["enabled"], disabled["updated_at"]) == (False, "2026-11-22T10:01:00Z")
    assert await is_enabled(rt, partner["id"], merchant.id) is False
    assert (await put(client, merchant.id, partner["id"], {"enabled": True})).json()["enabled"] is True
    assert await is_enabled(rt, partner["id"], merchant.id) is True


async def test_enablement_is_per_merchant_and_per_partner(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    vcb = await create_partner(client)
    payoo = await create_partner(client, name="Payoo", code="PAYOO", kind="intermediary")
    other = await create_merchant(client, "Hanoi Water")
    assert (await put(client, merchant.id, vcb["id"], {"enabled": True})).status_code == 200

    assert await is_enabled(rt, vcb["id"], merchant.id) is True
    assert await is_enabled(rt, payoo["id"], merchant.id) is False
    assert await is_enabled(rt, vcb["id"], other.id) is False


async def test_concurrent_first_puts_both_land(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = await create_partner(client)
    responses = await asyncio.gather(*(put(client, merchant.id, partner["id"], {"enabled": True}) for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    assert await is_enabled(rt, partner["id"], merchant.id) is True


async def test_an_unknown_merchant_or_partner_is_404(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    partner = await create_partner(client)
    assert_problem(await put(client, "mch_nope", partner["id"], {"enabled": True}), 404, "not_found")
    assert_problem(await put(client, merchant.id, "ptn_nope", {"enabled": True}), 404, "not_found")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({}, ["body", "enabled"], id="missing"),
        pytest.param({"enabled": "true"}, ["body", "enabled"], id="string"),
        pytest.param({"enabled": 1}, ["body", "enabled"], id="number"),
        pytest.param({"enabled": True, "priority": 1}, ["body", "priority"], id="unknown-field"),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle, body: Any, loc: list[str | int]
) -> None:
    partner = await create_partner(client)
    assert_problem(await put(client, merchant.id, partner["id"], body), 422, "validation_error", loc)
    assert await is_enabled(rt, partner["id"], merchant.id) is False


async def test_merchant_by_biller_code_matches_in_any_case(client: httpx.AsyncClient, rt: Runtime) -> None:
    created = await client.post(
        "/v1/merchants", json={"name": "EVN Ha Noi", "category": "electricity", "biller_code": "EVN_HN"}, headers=ADMIN
    )
    merchant_id = created.json()["id"]
    async with rt.db.transaction() as session:
        for code in ("EVN_HN", "evn_hn", "Evn_Hn"):
            found = await merchant_by_biller_code(session, code)
            assert found is not None and found.id == merchant_id
        assert await merchant_by_biller_code(session, "EVN_HCM") is None
        assert await merchant_by_biller_code(session, "") is None
