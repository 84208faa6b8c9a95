"""Customers (§11): create, read, change, list by code; the payment code and the static VietQR."""

from __future__ import annotations

import asyncio
import io
import unicodedata
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from gateway.adapters.emvco import parse_emvco, parse_vietqr
from gateway.adapters.testmode import Sandboxed
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import (
    ADMIN,
    VIETQR_LIVE,
    MerchantHandle,
    assert_problem,
    create_merchant,
    ids_listed,
    new_key,
    sql,
)

EVN = {"code": "PA01000123456", "name": "Nguyễn Văn An", "phone": "0912345678", "address": "12 Hàng Bài, Hà Nội"}


async def create_customer(client: httpx.AsyncClient, merchant: MerchantHandle, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/customers", json={**EVN, **fields}, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_get_and_change_a_customer(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    created = await create_customer(client, merchant, email="an@example.vn", org_unit="HN-HK", metadata={"k": "v"})
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer" and created["livemode"] is False
    assert (created["code"], created["name"], created["phone"]) == ("PA01000123456", "Nguyễn Văn An", "0912345678")
    assert (created["email"], created["address"], created["org_unit"]) == ("an@example.vn", EVN["address"], "HN-HK")
    assert created["metadata"] == {"k": "v"}
    assert (created["balance"], created["currency"]) == (0, "VND")
    assert created["created_at"] == created["updated_at"] == "2026-11-22T10:00:00Z"

    fetched = await client.get(f"/v1/customers/{created['id']}", headers=merchant.headers)
    assert fetched.status_code == 200 and fetched.json() == created

    changed = await client.patch(
        f"/v1/customers/{created['id']}",
        json={"name": "Trần Thị Bình", "phone": None, "code": "pa01-new", "metadata": {}},
        headers=merchant.headers,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["phone"], body["code"], body["metadata"]) == ("Trần Thị Bình", None, "pa01-new", {})
    # what was not sent is kept; the payment code and QR never change
    assert (body["email"], body["address"], body["org_unit"]) == ("an@example.vn", EVN["address"], "HN-HK")
    assert (body["payment_code"], body["qr_payload"]) == (created["payment_code"], created["qr_payload"])
    again = (await client.get(f"/v1/customers/{created['id']}", headers=merchant.headers)).json()
    assert again == body
    found = await client.get("/v1/customers", params={"code": "PA01-NEW"}, headers=merchant.headers)
    assert [c["id"] for c in found.json()["data"]] == [created["id"]]
    assert (await client.get("/v1/customers?code=PA01000123456", headers=merchant.headers)).json()["data"] == []


async def test_codes_are_unique_case_insensitively(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    first = await create_customer(client, merchant, code="Pa01.A_b-9")
    duplicate = await client.post("/v1/customers", json={**EVN, "code": "pA01.a_B-9"}, headers=merchant.idem())
    assert_problem(duplicate, 409, "customer_code_taken")

    other = await create_customer(client, merchant, code="PA02")
    taken = await client.patch(f"/v1/customers/{other['id']}", json={"code": "PA01.A_B-9"}, headers=merchant.headers)
    assert_problem(taken, 409, "customer_code_taken")
    # a customer may change the case of its own code
    recased = await client.patch(f"/v1/customers/{first['id']}", json={"code": "PA01.A_B-9"}, headers=merchant.headers)
    assert recased.status_code == 200 and recased.json()["code"] == "PA01.A_B-9"
    assert set(await ids_listed(client, "/v1/customers", merchant.headers)) == {first["id"], other["id"]}

    # another merchant, or the live mode, has codes of its own
    elsewhere = await create_merchant(client, "Hanoi Water")
    assert (await create_customer(client, elsewhere, code="pa01.a_b-9"))["code"] == "pa01.a_b-9"
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    assert (await create_customer(client, live, code="PA02"))["livemode"] is True


async def test_concurrent_creates_of_one_code_answer_409_not_500(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/v1/customers", json={**EVN, "code": code}, headers=merchant.idem())
            for code in ("RACE1", "race1", "Race1", "rACE1", "RACE1", "race1")
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "customer_code_taken")
    assert len(await ids_listed(client, "/v1/customers", merchant.headers)) == 1


async def test_list_newest_first_with_pages_and_a_code_filter_in_any_case(
    client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock
) -> None:
    created = []
    for i in range(5):
        created.append(await create_customer(client, merchant, code=f"HS-{i}"))
        clock.advance(1)
    newest_first = [c["id"] for c in reversed(created)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"starting_after": cursor} if cursor else {})}
        page = (await client.get("/v1/customers", params=params, headers=merchant.headers)).json()
        assert page["object"] == "list"
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == newest_first
    for code in ("HS-3", "hs-3", "Hs-3"):
        listed = (await client.get("/v1/customers", params={"code": code}, headers=merchant.headers)).json()
        assert [c["id"] for c in listed["data"]] == [created[3]["id"]]
        assert listed["data"][0] == created[3]
    assert (await client.get("/v1/customers?code=HS-9", headers=merchant.headers)).json()["data"] == []


async def test_the_static_qr_carries_the_payment_code_and_no_amount(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    customer = await create_customer(client, merchant)
    code = customer["payment_code"]
    assert code.isascii() and code.isalnum() and len(code) <= 20

    payload = customer["qr_payload"]
    assert parse_emvco(payload)["01"] == "11"  # point of initiation: static, reusable
    qr = parse_vietqr(payload)
    assert qr.amount is None
    assert qr.purpose == code
    adapter = rt.registry.get("vietqr")
    assert isinstance(adapter, Sandboxed)
    sandbox = adapter.sandbox.settings  # test mode: the sandbox bank's account is the beneficiary
    assert (qr.bank_bin, qr.account_number) == (sandbox["bank_bin"], sandbox["account_number"])

    png = await client.get(f"/v1/customers/{customer['id']}/qr.png", headers=merchant.headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert barcode.text == payload
    svg = await client.get(f"/v1/customers/{customer['id']}/qr.svg", headers=merchant.headers)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<?xml")

    second = await create_customer(client, merchant, code="PA02")
    assert second["payment_code"] != code


async def test_live_customers_have_a_qr_only_with_the_merchants_vietqr_account(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    customer = await create_customer(client, live)
    assert customer["livemode"] is True and customer["qr_payload"] is None
    assert customer["payment_code"]
    for kind in ("png", "svg"):
        assert_problem(
            await client.get(f"/v1/customers/{customer['id']}/qr.{kind}", headers=live.headers), 404, "not_found"
        )

    put = await client.put(f"/v1/merchants/{merchant.id}/providers/vietqr", json=VIETQR_LIVE, headers=ADMIN)
    assert put.status_code == 200, put.text
    now = (await client.get(f"/v1/customers/{customer['id']}", headers=live.headers)).json()
    qr = parse_vietqr(now["qr_payload"])
    assert (qr.bank_bin, qr.account_number, qr.amount, qr.purpose) == (
        "970436",
        "1017595600",
        None,
        customer["payment_code"],
    )
    png = await client.get(f"/v1/customers/{customer['id']}/qr.png", headers=live.headers)
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert barcode.text == now["qr_payload"]


async def test_names_are_stored_nfc(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hương")
    assert decomposed != "Nguyễn Thị Hương"
    customer = await create_customer(client, merchant, name=decomposed, address=unicodedata.normalize("NFD", "Huế"))
    assert customer["name"] == "Nguyễn Thị Hương" == unicodedata.normalize("NFC", decomposed)
    assert customer["address"] == "Huế"
    [row] = await sql(rt, "SELECT name FROM customers WHERE id = :id", id=customer["id"])
    assert row["name"] == "Nguyễn Thị Hương"
    patched = await client.patch(
        f"/v1/customers/{customer['id']}",
        json={"name": unicodedata.normalize("NFD", "Lê Văn Đức")},
        headers=merchant.headers,
    )
    assert patched.json()["name"] == "Lê Văn Đức"
    # 120 characters composed is within the limit even though its decomposed form is longer
    long_name = "ễ" * 120
    ok = await client.post(
        "/v1/customers", json={"code": "LONG", "name": unicodedata.normalize("NFD", long_name)}, headers=merchant.idem()
    )
    assert ok.status_code == 201 and ok.json()["name"] == long_name


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"name": "A"}, ["body", "code"], id="code-missing"),
        pytest.param({"code": "", "name": "A"}, ["body", "code"], id="code-empty"),
        pytest.param({"code": "A" * 33, "name": "A"}, ["body", "code"], id="code-33"),
        pytest.param({"code": "PA 01", "name": "A"}, ["body", "code"], id="code-space"),
        pytest.param({"code": "PĐ01", "name": "A"}, ["body", "code"], id="code-non-ascii"),
        pytest.param({"code": "PA/01", "name": "A"}, ["body", "code"], id="code-slash"),
        pytest.param({"code": 123, "name": "A"}, ["body", "code"], id="code-number"),
        pytest.param({"code": "PA01"}, ["body", "name"], id="name-missing"),
        pytest.param({"code": "PA01", "name": ""}, ["body", "name"], id="name-empty"),
        pytest.param({"code": "PA01", "name": "A" * 121}, ["body", "name"], id="name-121"),
        pytest.param({"code": "PA01", "name": "A", "nmae": "B"}, ["body", "nmae"], id="unknown-field"),
        pytest.param({"code": "PA01", "name": "A", "metadata": {"k": 1}}, ["body", "metadata"], id="metadata-int"),
        pytest.param({"code": "PA01", "name": "A", "phone": "0" * 33}, ["body", "phone"], id="phone-long"),
        pytest.param({"code": "PA01", "name": "A\x00"}, ["body", "name"], id="name-nul"),
    ],
)
async def test_bad_customers_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, body: dict[str, Any], loc: list[str]
) -> None:
    assert_problem(await client.post("/v1/customers", json=body, headers=merchant.idem()), 422, "validation_error", loc)
    assert await ids_listed(client, "/v1/customers", merchant.headers) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"code": None}, ["body", "code"], id="code-null"),
        pytest.param({"name": None}, ["body", "name"], id="name-null"),
        pytest.param({"metadata": None}, ["body", "metadata"], id="metadata-null"),
        pytest.param({"code": "A B"}, ["body", "code"], id="code-space"),
        pytest.param({"balance": 5}, ["body", "balance"], id="balance-read-only"),
        pytest.param({"payment_code": "X"}, ["body", "payment_code"], id="payment-code-read-only"),
    ],
)
async def test_bad_changes_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, body: dict[str, Any], loc: list[str]
) -> None:
    customer = await create_customer(client, merchant)
    refused = await client.patch(f"/v1/customers/{customer['id']}", json=body, headers=merchant.headers)
    assert_problem(refused, 422, "validation_error", loc)
    assert (await client.get(f"/v1/customers/{customer['id']}", headers=merchant.headers)).json() == customer


async def test_another_merchants_or_modes_customers_answer_404(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    customer = await create_customer(client, merchant)
    other = await create_merchant(client, "Hanoi Water")
    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    for outsider in (other, live):
        path = f"/v1/customers/{customer['id']}"
        assert_problem(await client.get(path, headers=outsider.headers), 404, "not_found")
        assert_problem(await client.patch(path, json={"name": "X"}, headers=outsider.headers), 404, "not_found")
        assert_problem(await client.get(f"{path}/qr.png", headers=outsider.headers), 404, "not_found")
        assert await ids_listed(client, "/v1/customers", outsider.headers) == []
        listed = await client.get("/v1/customers", params={"code": customer["code"]}, headers=outsider.headers)
        assert listed.json()["data"] == []
    assert_problem(await client.get("/v1/customers/cus_nope", headers=merchant.headers), 404, "not_found")
    assert (await client.get(f"/v1/customers/{customer['id']}", headers=merchant.headers)).json()["name"] == EVN["name"]


async def test_an_idempotent_create_replays(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    headers = merchant.idem("customer-PA01")
    first = await client.post("/v1/customers", json=EVN, headers=headers)
    again = await client.post("/v1/customers", json=EVN, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert await ids_listed(client, "/v1/customers", merchant.headers) == [first.json()["id"]]
    assert_problem(
        await client.post("/v1/customers", json={**EVN, "code": "OTHER"}, headers=headers),
        422,
        "idempotency_key_reused",
    )


async def test_concurrent_changes_to_one_code_answer_409_not_500(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    customers = [await create_customer(client, merchant, code=f"C{i}") for i in range(4)]
    responses = await asyncio.gather(
        *(
            client.patch(f"/v1/customers/{c['id']}", json={"code": "WANTED"}, headers=merchant.headers)
            for c in customers
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409], [r.text for r in responses]
    [winner] = [r.json()["id"] for r in responses if r.status_code == 200]
    listed = (await client.get("/v1/customers", params={"code": "wanted"}, headers=merchant.headers)).json()["data"]
    assert [c["id"] for c in listed] == [winner]
