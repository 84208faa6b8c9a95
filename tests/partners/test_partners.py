"""Collection partners as the operator manages them (CONTRACT §12): created with a secret shown once and stored
encrypted, listed and read without it, rotated with an overlap during which both secrets sign."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.clock import ManualClock
from gateway.errors import PartnerSignatureInvalid
from gateway.partners.auth import SignedRequest, authenticate
from gateway.partners.models import Partner
from gateway.partners.signing import signed_headers
from gateway.runtime import Runtime
from tests.conftest import ADMIN, MerchantHandle, assert_problem, ids_listed

VCB = {"name": "Vietcombank", "code": "VCB", "kind": "bank"}


async def create_partner(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/partners", json={**VCB, **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_partner_is_created_live_with_its_secret_shown_once(client: httpx.AsyncClient) -> None:
    created = await create_partner(client)

    assert created["id"].startswith("ptn_")
    assert created["secret"].startswith("psk_") and len(created["secret"]) > 30
    assert {k: created[k] for k in ("object", "name", "code", "kind", "livemode", "shows_full_names")} == {
        "object": "partner",
        "name": "Vietcombank",
        "code": "VCB",
        "kind": "bank",
        "livemode": True,
        "shows_full_names": False,
    }
    assert created["created_at"].endswith("Z")
    fetched = (await client.get(f"/v1/partners/{created['id']}", headers=ADMIN)).json()
    assert "secret" not in fetched
    assert fetched == {k: v for k, v in created.items() if k != "secret"}
    listed = (await client.get("/v1/partners", headers=ADMIN)).json()
    assert [p["id"] for p in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]


async def test_test_partners_and_full_names_for_telcos_and_platforms(client: httpx.AsyncClient) -> None:
    telco = await create_partner(
        client, name="Viettel Money", code="VTM", kind="telco", mode="test", shows_full_names=True
    )
    assert (telco["livemode"], telco["shows_full_names"], telco["kind"]) == (False, True, "telco")
    platform = await create_partner(client, name="Cổng DVC", code="DVCQG", kind="platform", shows_full_names=True)
    assert (platform["livemode"], platform["shows_full_names"]) == (True, True)
    intermediary = await create_partner(client, name="Payoo", code="PAYOO", kind="intermediary")
    assert intermediary["shows_full_names"] is False


async def test_the_secret_is_encrypted_at_rest(client: httpx.AsyncClient, rt: Runtime) -> None:
    created = await create_partner(client)
    rotated = (await client.post(f"/v1/partners/{created['id']}/rotate-secret", headers=ADMIN)).json()

    async with rt.db.transaction() as session:
        rows = (await session.execute(text("SELECT * FROM partners"))).all()
        keys = (await session.execute(text("SELECT * FROM idempotency_keys"))).all()
    dump = "\n".join(repr(tuple(row)) for row in [*rows, *keys])
    for secret in (created["secret"], rotated["secret"]):
        assert secret not in dump
        assert secret.removeprefix("psk_") not in dump


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({**VCB, "kind": "broker"}, ["body", "kind"], id="bad-kind"),
        pytest.param({**VCB, "shows_full_names": True}, ["body", "shows_full_names"], id="full-names-for-a-bank"),
        pytest.param(
            {**VCB, "kind": "intermediary", "shows_full_names": True}, ["body", "shows_full_names"], id="intermediary"
        ),
        pytest.param({**VCB, "shows_full_names": "yes"}, ["body", "shows_full_names"], id="not-a-bool"),
        pytest.param({**VCB, "colour": "green"}, ["body", "colour"], id="unknown-field"),
        pytest.param({**VCB, "mode": "prod"}, ["body", "mode"], id="bad-mode"),
        pytest.param({**VCB, "code": "VCB BANK"}, ["body", "code"], id="code-with-a-space"),
        pytest.param({**VCB, "code": "V" * 33}, ["body", "code"], id="code-too-long"),
        pytest.param({**VCB, "code": ""}, ["body", "code"], id="empty-code"),
        pytest.param({**VCB, "name": ""}, ["body", "name"], id="empty-name"),
        pytest.param({**VCB, "name": "N" * 121}, ["body", "name"], id="name-too-long"),
        pytest.param({"name": "Vietcombank", "code": "VCB"}, ["body", "kind"], id="no-kind"),
    ],
)
async def test_invalid_partners_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    assert_problem(await client.post("/v1/partners", json=body, headers=ADMIN), 422, "validation_error", loc)
    assert await ids_listed(client, "/v1/partners", ADMIN) == []


async def test_a_taken_code_is_409_in_any_case(client: httpx.AsyncClient) -> None:
    first = await create_partner(client)
    for code in ("VCB", "vcb"):
        response = await client.post("/v1/partners", json={**VCB, "code": code}, headers=ADMIN)
        assert_problem(response, 409, "partner_code_taken", ["body", "code"])
    assert await ids_listed(client, "/v1/partners", ADMIN) == [first["id"]]


async def test_concurrent_creates_of_one_code_answer_409_not_500(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/partners", json={**VCB, "name": f"Bank {i}"}, headers=ADMIN) for i in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "partner_code_taken")
    assert len(await ids_listed(client, "/v1/partners", ADMIN)) == 1


async def test_concurrent_creates_of_one_code_in_different_cases_answer_409(client: httpx.AsyncClient) -> None:
    spellings = ["vcb", "VCB", "Vcb", "vCb", "vcB"]
    responses = await asyncio.gather(
        *(client.post("/v1/partners", json={**VCB, "code": code}, headers=ADMIN) for code in spellings)
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409], [r.text for r in responses]
    assert len(await ids_listed(client, "/v1/partners", ADMIN)) == 1


async def test_an_idempotent_create_replays_the_same_partner(client: httpx.AsyncClient) -> None:
    headers = {**ADMIN, "Idempotency-Key": "ptn-create-1"}
    first = await client.post("/v1/partners", json=VCB, headers=headers)
    again = await client.post("/v1/partners", json=VCB, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await ids_listed(client, "/v1/partners", ADMIN) == [first.json()["id"]]


async def test_list_newest_first_with_pages(client: httpx.AsyncClient, clock: ManualClock) -> None:
    created = []
    for i in range(5):
        created.append((await create_partner(client, code=f"BANK{i}"))["id"])
        clock.advance(1)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"starting_after": cursor} if cursor else {})}
        page = (await client.get("/v1/partners", params=params, headers=ADMIN)).json()
        assert page["object"] == "list"
        seen += [p["id"] for p in page["data"]]
        if not page["has_more"]:
            break
        cursor = seen[-1]
    assert seen == list(reversed(created))


async def test_an_unknown_partner_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/partners/ptn_nope", headers=ADMIN), 404, "not_found")
    assert_problem(await client.post("/v1/partners/ptn_nope/rotate-secret", headers=ADMIN), 404, "not_found")


# --- the secret's rotation, checked by the signature check partners' requests go through ---


async def signed_by(rt: Runtime, partner_id: str, secret: str) -> Partner:
    body = b'{"biller_code": "EVN_HN", "customer_code": "PA01"}'
    stamp = int(rt.clock.now().timestamp())
    headers = signed_headers(partner_id, secret, stamp, "POST", "/v1/collect/inquiry", body)
    request = SignedRequest("POST", "/v1/collect/inquiry", {k.lower(): v for k, v in headers.items()}, body)
    async with rt.db.transaction() as session:
        return await authenticate(session, rt, request)


async def assert_refused(rt: Runtime, partner_id: str, secret: str) -> None:
    with pytest.raises(PartnerSignatureInvalid):
        await signed_by(rt, partner_id, secret)


async def test_both_secrets_sign_until_the_old_one_expires(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock
) -> None:
    created = await create_partner(client)
    partner_id, old = created["id"], created["secret"]
    assert (await signed_by(rt, partner_id, old)).id == partner_id

    response = await client.post(
        f"/v1/partners/{partner_id}/rotate-secret", json={"expire_old_after": 3600}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    rotated = response.json()
    new = rotated["secret"]
    assert new.startswith("psk_") and new != old
    assert rotated["previous_secret_expires_at"] == "2026-11-22T11:00:00Z"
    assert "secret" not in (await client.get(f"/v1/partners/{partner_id}", headers=ADMIN)).json()

    assert (await signed_by(rt, partner_id, old)).id == partner_id
    assert (await signed_by(rt, partner_id, new)).id == partner_id
    clock.advance(3599)
    assert (await signed_by(rt, partner_id, old)).id == partner_id
    clock.advance(1)
    await assert_refused(rt, partner_id, old)
    assert (await signed_by(rt, partner_id, new)).id == partner_id


async def test_rotation_keeps_the_old_secret_a_day_by_default(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock
) -> None:
    created = await create_partner(client)
    rotated = (await client.post(f"/v1/partners/{created['id']}/rotate-secret", headers=ADMIN)).json()
    assert rotated["previous_secret_expires_at"] == "2026-11-23T10:00:00Z"
    clock.advance(86399)
    assert (await signed_by(rt, created["id"], created["secret"])).id == created["id"]
    clock.advance(1)
    await assert_refused(rt, created["id"], created["secret"])


async def test_expire_old_after_zero_kills_the_old_secret_at_once(client: httpx.AsyncClient, rt: Runtime) -> None:
    created = await create_partner(client)
    rotated = (
        await client.post(f"/v1/partners/{created['id']}/rotate-secret", json={"expire_old_after": 0}, headers=ADMIN)
    ).json()
    assert rotated["previous_secret_expires_at"] is None
    await assert_refused(rt, created["id"], created["secret"])
    assert (await signed_by(rt, created["id"], rotated["secret"])).id == created["id"]


async def test_a_second_rotation_retires_the_first_secret(client: httpx.AsyncClient, rt: Runtime) -> None:
    created = await create_partner(client)
    path = f"/v1/partners/{created['id']}/rotate-secret"
    second = (await client.post(path, headers=ADMIN)).json()["secret"]
    third = (await client.post(path, headers=ADMIN)).json()["secret"]
    await assert_refused(rt, created["id"], created["secret"])
    assert (await signed_by(rt, created["id"], second)).id == created["id"]
    assert (await signed_by(rt, created["id"], third)).id == created["id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"expire_old_after": -1}, ["body", "expire_old_after"], id="negative"),
        pytest.param({"expire_old_after": "3600"}, ["body", "expire_old_after"], id="string"),
        pytest.param({"expire_old_after": 8 * 86400}, ["body", "expire_old_after"], id="over-a-week"),
        pytest.param({"expire_after": 10}, ["body", "expire_after"], id="unknown-field"),
    ],
)
async def test_invalid_rotations_are_422(
    client: httpx.AsyncClient, rt: Runtime, body: dict[str, Any], loc: list[str | int]
) -> None:
    created = await create_partner(client)
    response = await client.post(f"/v1/partners/{created['id']}/rotate-secret", json=body, headers=ADMIN)
    assert_problem(response, 422, "validation_error", loc)
    assert (await signed_by(rt, created["id"], created["secret"])).id == created["id"]


# --- who may call ---

ROUTES = [
    pytest.param("GET", "/v1/partners", None, id="list"),
    pytest.param("POST", "/v1/partners", VCB, id="create"),
    pytest.param("GET", "/v1/partners/{partner}", None, id="get"),
    pytest.param("POST", "/v1/partners/{partner}/rotate-secret", {}, id="rotate"),
    pytest.param("PUT", "/v1/merchants/{merchant}/partners/{partner}", {"enabled": True}, id="enable"),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({}, id="no-key"),
        pytest.param({"Authorization": "Bearer adm_test_token_wrong"}, id="wrong-admin-token"),
        pytest.param({"Authorization": "Bearer sk_test_nope"}, id="wrong-key"),
    ],
)
async def test_without_a_valid_key_partner_routes_are_401(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    credentials: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    partner = await create_partner(client, code="OTHER")
    url = path.format(partner=partner["id"], merchant=merchant.id)
    assert_problem(await client.request(method, url, json=body, headers=credentials), 401, "unauthenticated")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_merchant_key_is_forbidden_on_partner_routes(
    client: httpx.AsyncClient, merchant: MerchantHandle, method: str, path: str, body: dict[str, Any] | None
) -> None:
    partner = await create_partner(client, code="OTHER")
    url = path.format(partner=partner["id"], merchant=merchant.id)
    response = await client.request(method, url, json=body, headers=merchant.idem())
    assert_problem(response, 403, "forbidden")
    assert await ids_listed(client, "/v1/partners", ADMIN) == [partner["id"]]
    assert (await client.get(f"/v1/partners/{partner['id']}", headers=ADMIN)).json()[
        "previous_secret_expires_at"
    ] is None
