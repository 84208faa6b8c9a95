"""Merchants' optional, unique `biller_code`, by which collection partners name them (CONTRACT §9, §12), and the
merchant PATCH that sets, changes and clears it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, assert_problem, ids_listed

EVN = {"name": "EVN Ha Noi", "category": "electricity"}


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/merchants", json={**EVN, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def patch(client: httpx.AsyncClient, merchant_id: str, body: Any) -> httpx.Response:
    return await client.patch(f"/v1/merchants/{merchant_id}", json=body, headers=ADMIN)


async def test_a_merchant_has_no_biller_code_unless_given(client: httpx.AsyncClient) -> None:
    plain = await create(client)
    assert plain["biller_code"] is None
    coded = await create(client, biller_code="EVN_HN")
    assert coded["biller_code"] == "EVN_HN"
    assert (await client.get(f"/v1/merchants/{coded['id']}", headers=ADMIN)).json()["biller_code"] == "EVN_HN"
    listed = (await client.get("/v1/merchants", headers=ADMIN)).json()["data"]
    assert {m["id"]: m["biller_code"] for m in listed} == {plain["id"]: None, coded["id"]: "EVN_HN"}


async def test_a_biller_code_is_stored_as_given(client: httpx.AsyncClient) -> None:
    assert (await create(client, biller_code="pc.hanoi-01"))["biller_code"] == "pc.hanoi-01"


async def test_patch_sets_changes_and_clears_the_biller_code(client: httpx.AsyncClient) -> None:
    merchant = await create(client)
    set_ = await patch(client, merchant["id"], {"biller_code": "EVN_HN"})
    assert set_.status_code == 200, set_.text
    assert set_.json()["biller_code"] == "EVN_HN"
    changed = (await patch(client, merchant["id"], {"biller_code": "evn_hn"})).json()  # its own code, recased
    assert changed["biller_code"] == "evn_hn"
    renamed = (await patch(client, merchant["id"], {"name": "EVN Hà Nội"})).json()
    assert (renamed["name"], renamed["biller_code"], renamed["category"]) == ("EVN Hà Nội", "evn_hn", "electricity")
    cleared = (await patch(client, merchant["id"], {"biller_code": None})).json()
    assert cleared["biller_code"] is None
    assert (await client.get(f"/v1/merchants/{merchant['id']}", headers=ADMIN)).json() == cleared
    # the cleared code is free again
    assert (await create(client, biller_code="EVN_HN"))["biller_code"] == "EVN_HN"


async def test_patch_changes_name_and_category(client: httpx.AsyncClient) -> None:
    merchant = await create(client)
    changed = (await patch(client, merchant["id"], {"name": "Nuoc Sach Ha Noi", "category": "water"})).json()
    assert (changed["name"], changed["category"]) == ("Nuoc Sach Ha Noi", "water")
    assert (await patch(client, merchant["id"], {})).json()["name"] == "Nuoc Sach Ha Noi"


async def test_a_taken_biller_code_is_409_in_any_case(client: httpx.AsyncClient) -> None:
    holder = await create(client, biller_code="EVN_HN")
    for code in ("EVN_HN", "evn_hn"):
        response = await client.post("/v1/merchants", json={**EVN, "biller_code": code}, headers=ADMIN)
        assert_problem(response, 409, "biller_code_taken", ["body", "biller_code"])
    other = await create(client, name="EVN HCMC")
    assert_problem(await patch(client, other["id"], {"biller_code": "Evn_Hn"}), 409, "biller_code_taken")
    assert (await client.get(f"/v1/merchants/{other['id']}", headers=ADMIN)).json()["biller_code"] is None
    assert set(await ids_listed(client, "/v1/merchants", ADMIN)) == {holder["id"], other["id"]}


async def test_concurrent_creates_of_one_biller_code_answer_409_not_500(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/merchants", json={**EVN, "biller_code": "RACE"}, headers=ADMIN) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "biller_code_taken")
    assert len(await ids_listed(client, "/v1/merchants", ADMIN)) == 1


async def test_concurrent_creates_of_one_code_in_different_cases_answer_409(client: httpx.AsyncClient) -> None:
    spellings = ["Race", "RACE", "race", "rAcE", "RaCe"]
    responses = await asyncio.gather(
        *(client.post("/v1/merchants", json={**EVN, "biller_code": code}, headers=ADMIN) for code in spellings)
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
    assert len(await ids_listed(client, "/v1/merchants", ADMIN)) == 1


async def test_concurrent_patches_to_one_biller_code_answer_409_not_500(client: httpx.AsyncClient) -> None:
    merchants = [await create(client, name=f"Biller {i}") for i in range(4)]
    responses = await asyncio.gather(*(patch(client, m["id"], {"biller_code": "WANTED"}) for m in merchants))
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [r.text for r in responses]
    listed = (await client.get("/v1/merchants", headers=ADMIN)).json()["data"]
    assert sorted(m["biller_code"] or "" for m in listed) == ["", "", "", "WANTED"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"biller_code": ""}, ["body", "biller_code"], id="empty"),
        pytest.param({"biller_code": "B" * 33}, ["body", "biller_code"], id="too-long"),
        pytest.param({"biller_code": "EVN HN"}, ["body", "biller_code"], id="space"),
        pytest.param({"biller_code": "EVN/HN"}, ["body", "biller_code"], id="slash"),
        pytest.param({"biller_code": 123}, ["body", "biller_code"], id="number"),
        pytest.param({"biller_cod": "EVN"}, ["body", "biller_cod"], id="unknown-field"),
    ],
)
async def test_invalid_biller_codes_are_422(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    assert_problem(
        await client.post("/v1/merchants", json={**EVN, **body}, headers=ADMIN), 422, "validation_error", loc
    )
    merchant = await create(client)
    assert_problem(await patch(client, merchant["id"], body), 422, "validation_error", loc)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"name": None}, ["body", "name"], id="null-name"),
        pytest.param({"category": None}, ["body", "category"], id="null-category"),
        pytest.param({"name": ""}, ["body", "name"], id="empty-name"),
        pytest.param({"category": "bank"}, ["body", "category"], id="bad-category"),
    ],
)
async def test_invalid_patches_are_422(client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]) -> None:
    merchant = await create(client, biller_code="EVN_HN")
    assert_problem(await patch(client, merchant["id"], body), 422, "validation_error", loc)
    unchanged = {k: v for k, v in merchant.items() if k != "api_key"}
    assert (await client.get(f"/v1/merchants/{merchant['id']}", headers=ADMIN)).json() == unchanged


async def test_patching_an_unknown_merchant_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await patch(client, "mch_nope", {"name": "X"}), 404, "not_found")
