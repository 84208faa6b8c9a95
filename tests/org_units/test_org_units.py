"""§17 organisation units: the tree's rules, who may read and write them, merchants placed in them, and the unit a
payment is recorded with."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.allocation.factories import make_bill, make_customer
from tests.allocation.test_allocation import counter_payment
from tests.conftest import ADMIN, MerchantHandle, assert_problem, paid_payment, sql
from tests.org_units.support import post_unit, province_tree, set_customer_unit, set_merchant_unit


async def test_the_tree_is_built_read_and_changed(
    client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock
) -> None:
    created = await post_unit(client, code="HT", name="Hà Tĩnh", kind="province", online_target=0.4)
    assert created.status_code == 201, created.text
    unit = created.json()
    assert {k: v for k, v in unit.items() if k not in ("created_at", "updated_at")} == {
        "object": "org_unit",
        "code": "HT",
        "name": "Hà Tĩnh",
        "kind": "province",
        "parent": None,
        "online_target": 0.4,
    }
    assert unit["created_at"] == unit["updated_at"] == "2026-11-22T10:00:00Z"
    for code, kind, parent in [
        ("TH", "district", "HT"),
        ("th", "district", "HT"),  # exact case: another code
        ("TH.TV_1", "commune", "TH"),
        ("SYT", "agency", "HT"),
        ("UBND-TH", "agency", "TH"),
        ("MC-TV", "agency", "TH.TV_1"),
    ]:
        clock.advance(1)  # one a second: the list is newest first
        response = await post_unit(client, code=code, name=f"Đơn vị {code}", kind=kind, parent=parent)
        assert response.status_code == 201, (code, response.text)
        assert (response.json()["parent"], response.json()["online_target"]) == (parent, None)

    assert_problem(
        await post_unit(client, code="HT", name="Again", kind="province"), 409, "org_unit_exists", ["body", "code"]
    )

    listed = (await client.get("/v1/org-units", params={"limit": 3}, headers=merchant.headers)).json()
    assert [u["code"] for u in listed["data"]] == ["MC-TV", "UBND-TH", "SYT"] and listed["has_more"] is True
    rest = (await client.get("/v1/org-units", params={"starting_after": "SYT"}, headers=ADMIN)).json()
    assert ([u["code"] for u in rest["data"]], rest["has_more"]) == (["TH.TV_1", "th", "TH", "HT"], False)
    got = await client.get("/v1/org-units/TH.TV_1", headers=merchant.headers)
    assert (got.status_code, got.json()["kind"], got.json()["parent"]) == (200, "commune", "TH")
    assert_problem(await client.get("/v1/org-units/tH", headers=ADMIN), 404, "not_found")

    changed = await client.patch("/v1/org-units/TH", json={"name": "Thạch Hà", "online_target": 0.3755}, headers=ADMIN)
    assert (changed.status_code, changed.json()["name"], changed.json()["online_target"]) == (200, "Thạch Hà", 0.3755)
    cleared = await client.patch("/v1/org-units/TH", json={"online_target": None}, headers=ADMIN)
    assert (cleared.json()["name"], cleared.json()["online_target"]) == ("Thạch Hà", None)
    assert_problem(
        await client.patch("/v1/org-units/TH", json={"name": None}, headers=ADMIN),
        422,
        "validation_error",
        ["body", "name"],
    )
    assert_problem(
        await client.patch("/v1/org-units/TH", json={"kind": "commune"}, headers=ADMIN),
        422,
        "validation_error",
        ["body", "kind"],
    )
    assert_problem(await client.patch("/v1/org-units/NONE", json={"name": "x"}, headers=ADMIN), 404, "not_found")

    # Writes take the admin token only; reads take either.
    body = {"code": "CX", "name": "Cẩm Xuyên", "kind": "district", "parent": "HT"}
    assert_problem(await client.post("/v1/org-units", json=body, headers=merchant.headers), 403, "forbidden")
    assert_problem(
        await client.patch("/v1/org-units/HT", json={"name": "x"}, headers=merchant.headers), 403, "forbidden"
    )
    assert_problem(await client.get("/v1/org-units"), 401, "unauthenticated")


BAD_UNITS: list[tuple[dict[str, Any], str]] = [
    ({"parent": "HT"}, "parent"),  # a province with a parent
    ({"kind": "district"}, "parent"),  # a district without one
    ({"kind": "district", "parent": "NOWHERE"}, "parent"),
    ({"kind": "district", "parent": "TH"}, "parent"),  # a district under a district
    ({"kind": "commune", "parent": "HT"}, "parent"),  # a commune under the province
    ({"kind": "agency", "parent": "SYT"}, "parent"),  # an agency under an agency
    ({"kind": "agency"}, "parent"),
    ({"code": ""}, "code"),
    ({"code": "X" * 33}, "code"),
    ({"code": "HÀ"}, "code"),
    ({"code": "A B"}, "code"),
    ({"name": ""}, "name"),
    ({"kind": "village"}, "kind"),
    ({"online_target": 1.5}, "online_target"),
    ({"online_target": -0.1}, "online_target"),
    ({"online_target": 0.12345}, "online_target"),
    ({"online_target": "0.4"}, "online_target"),
    ({"target": 0.4}, "target"),  # unknown field
]


@pytest.mark.parametrize(("change", "field"), BAD_UNITS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_UNITS)])
async def test_bad_units_are_refused(client: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    for code, kind, parent in [("HT", "province", None), ("TH", "district", "HT"), ("SYT", "agency", "HT")]:
        assert (await post_unit(client, code=code, name=code, kind=kind, parent=parent)).status_code == 201
    body = {"code": "NEW", "name": "Mới", "kind": "province", **change}
    assert_problem(
        await client.post("/v1/org-units", json=body, headers=ADMIN), 422, "validation_error", ["body", field]
    )
    # Created in the same instant: by code, descending.
    assert [u["code"] for u in (await client.get("/v1/org-units", headers=ADMIN)).json()["data"]] == ["TH", "SYT", "HT"]


async def test_merchants_take_a_unit_and_payments_keep_the_one_they_were_made_in(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    await province_tree(client)
    created = await client.post(
        "/v1/merchants", json={"name": "Sở Y tế", "category": "hospital", "org_unit": "SYT"}, headers=ADMIN
    )
    assert (created.status_code, created.json()["org_unit"]) == (201, "SYT"), created.text
    got = await client.get(f"/v1/merchants/{created.json()['id']}", headers=ADMIN)
    assert got.json()["org_unit"] == "SYT"
    refused = await client.post(
        "/v1/merchants", json={"name": "X", "category": "hospital", "org_unit": "NOWHERE"}, headers=ADMIN
    )
    assert_problem(refused, 422, "validation_error", ["body", "org_unit"])
    assert_problem(
        await client.patch(f"/v1/merchants/{merchant.id}", json={"org_unit": "ht"}, headers=ADMIN),
        422,
        "validation_error",
        ["body", "org_unit"],
    )
    await set_merchant_unit(client, merchant, "TH")
    renamed = await client.patch(f"/v1/merchants/{merchant.id}", json={"name": "Bệnh viện"}, headers=ADMIN)
    assert renamed.json()["org_unit"] == "TH"  # untouched when not sent

    # A payment belongs to its bill's customer's unit when set, else to the merchant's; fixed when it succeeds.
    customer = await make_customer(rt, merchant)
    await set_customer_unit(client, merchant, customer, "TH-TV")
    bill = await make_bill(rt, merchant, customer, "HD-1", 50000)
    by_customer = await counter_payment(client, merchant, None, bill_id=bill)
    by_merchant = await paid_payment(client, merchant, 20000)
    await set_customer_unit(client, merchant, customer, None)
    other = await make_bill(rt, merchant, customer, "HD-2", 30000)
    customer_without = await counter_payment(client, merchant, None, bill_id=other)
    await set_customer_unit(client, merchant, customer, "CX")  # the customer moves; its payments stay where they were
    await set_merchant_unit(client, merchant, None)
    unplaced = await paid_payment(client, merchant, 10000)
    rows = await sql(rt, "SELECT id, org_unit, succeeded_on FROM payments WHERE merchant_id = :m", m=merchant.id)
    units = {row["id"]: row["org_unit"] for row in rows}
    assert units == {
        by_customer["id"]: "TH-TV",
        by_merchant["id"]: "TH",
        customer_without["id"]: "TH",
        unplaced["id"]: None,
    }
    assert {str(row["succeeded_on"]) for row in rows} == {"2026-11-22"}
    assert (await client.get(f"/v1/merchants/{merchant.id}", headers=ADMIN)).json()["org_unit"] is None
