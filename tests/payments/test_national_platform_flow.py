"""The national public-service payment platform through the gateway (§16), in test mode against the sandbox platform
mounted at /sandbox/national_platform (real HTTP, in process): Init and the platform's page, its signed result, the
inquiry by dossier code, the janitor's status query, and a live account's own hash_key."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from gateway.adapters.national_platform import wire
from gateway.adapters.national_platform.simulator import SandboxPlatform
from gateway.clock import ManualClock
from gateway.janitor import check_payments_once
from gateway.payments.schemas import PaymentObject
from gateway.receipts.schemas import ReceiptObject
from gateway.runtime import Runtime
from tests.conftest import (
    ADMIN,
    MerchantHandle,
    assert_problem,
    create_merchant,
    get_payment,
    ledger_of,
    new_key,
    pay,
    refund,
    sandbox_secrets,
    sql,
)
from tests.test_response_models import assert_is_model

PROVIDER = "national_platform"
SANDBOX = "/sandbox/national_platform"
PARTNER = "000.00.00.GW1"
FEES = [
    {"kind": "fee", "code": "PHI01", "name": "Phí thẩm định hồ sơ", "amount": 100000},
    {"kind": "charge", "code": "LP01", "name": "Lệ phí cấp giấy phép", "amount": 50000},
]
BLOCK = {"procedure_code": "1.001234", "service_code": "DVC-2.002", "fees": FEES}


def platform_of(app: FastAPI) -> SandboxPlatform:
    platform: SandboxPlatform = app.state.sandbox.state.simulators[PROVIDER].state.platform
    return platform


async def fee_payment(
    client: httpx.AsyncClient, merchant: MerchantHandle, dossier: str = "000.00.10.H26-261122-0001", **extra: Any
) -> dict[str, Any]:
    body = {
        "amount": 150000,
        "method": PROVIDER,
        "reference": dossier,
        "confirm": True,
        "customer": {"name": "Nguyễn Văn An"},
        "national_platform": BLOCK,
        **extra,
    }
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert response.status_code == 201, response.text
    return dict(response.json())


def signed(key: str, fields: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {**fields, "MaXacThuc": wire.sign(fields, names, key)}


def result(
    key: str, reference: str, amount: int = 150000, code: str = "00", transaction: str = "GD0001"
) -> dict[str, Any]:
    fields = {
        "LoaiBanTin": "2",
        "MaLoi": code,
        "MaDoiTac": PARTNER,
        "MaThamChieu": reference,
        "SoTien": str(amount),
        "MaTienTe": "704",
        "MaGiaoDich": transaction,
        "MaNganHang": "970436",
        "ThoiGianGD": "20261122170500",
        "ThongTinGiaoDich": "Thanh toan le phi",
    }
    return {**signed(key, fields, wire.RESULT_SIGNED), "UrlBienLai": "https://dvc.test/receipts/1"}


async def post_result(client: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/providers/{PROVIDER}/notifications", json=fields)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def inquire(client: httpx.AsyncClient, key: str, dossier: str, partner: str = PARTNER) -> dict[str, Any]:
    fields = signed(key, {"MaHoSo": dossier, "MaDoiTac": partner, "ThoiGianGD": "20261122170000"}, wire.INQUIRY_SIGNED)
    response = await client.post(f"/v1/providers/{PROVIDER}/inquiry", json=fields)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    if answer["error_code"] != -1:
        assert answer["MaXacThuc"] == wire.sign(answer, wire.INQUIRY_ANSWER_SIGNED, key)
    return answer


async def test_a_dossiers_fees_are_paid_on_the_platform_page_with_both_receipts(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, app: FastAPI
) -> None:
    receipts = {"enabled": True, "template": "01BLP0-001", "series": "AA-26E", "seller": {"name": "Sở Tư pháp"}}
    assert (await client.put(f"/v1/merchants/{merchant.id}/receipts", json=receipts, headers=ADMIN)).status_code == 200
    dossier = "000.00.10.H26-261122-0001"
    payment = await fee_payment(client, merchant, dossier)
    reference = payment["provider_reference"]
    assert (payment["status"], payment["provider"], len(reference)) == ("requires_action", PROVIDER, 20)
    assert payment["national_platform"] == {
        **BLOCK,
        "reference": reference,
        "transaction_id": None,
        "receipt_url": None,
    }
    url = payment["next_action"]["url"]
    assert (
        payment["next_action"]["type"] == "redirect" and url == f"http://gateway.test{SANDBOX}/thanh-toan/{reference}"
    )
    # What Init told the platform: the dossier in full, the agency, the fees by kind, the payer.
    sent = platform_of(app).transactions[reference].receipt_info
    assert (sent["MaDichVu"], sent["MaHoSo"], sent["MaTTHC"], sent["MaDVC"]) == ("2", dossier, "1.001234", "DVC-2.002")
    assert (sent["MaDonVi"], sent["TenDonVi"], sent["HoTenNguoiNop"]) == (
        "000.00.00.GW1.SANDBOX",
        "Bach Mai Hospital",
        "Nguyễn Văn An",
    )
    assert [(f["LoaiPhiLePhi"], f["MaPhiLePhi"], f["SoTien"]) for f in sent["PhiLePhi"]] == [
        ("1", "PHI01", 100000),
        ("2", "LP01", 50000),
    ]

    page = await client.get(url)
    assert page.status_code == 200 and dossier in page.text and "Lệ phí cấp giấy phép" in page.text
    assert "970436" in page.text  # a bank to pick
    form = {"MaThamChieu": reference, "bank": "970418", "action": "pay"}
    paid_page = await client.post(f"{SANDBOX}/_sandbox/checkout", data=form)
    assert paid_page.status_code == 200 and "Thanh toán thành công" in paid_page.text

    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["amount_received"]) == ("succeeded", 150000)
    given = paid["national_platform"]
    tx = platform_of(app).transactions[reference]
    assert given["transaction_id"] == tx.transaction_id and given["reference"] == reference
    assert given["receipt_url"] == f"http://gateway.test{SANDBOX}/receipts/{tx.receipt_number}"
    platform_receipt = await client.get(given["receipt_url"])
    assert platform_receipt.status_code == 200 and tx.receipt_number in platform_receipt.text
    assert [t["kind"] for t in await ledger_of(client, merchant, payment_id=payment["id"])] == ["payment_received"]

    [receipt] = (await client.get("/v1/receipts", headers=merchant.headers)).json()["data"]
    assert_is_model(PaymentObject, paid)
    assert_is_model(ReceiptObject, receipt)
    assert receipt["national_platform"] == {k: given[k] for k in ("reference", "transaction_id", "receipt_url")}
    # The gateway's receipt lists the dossier's fee and charge.
    assert receipt["items"] == [{"description": f"{f['name']} (hồ sơ {dossier})", "amount": f["amount"]} for f in FEES]
    public = await client.get(f"/receipts/{receipt['lookup_code']}")
    assert given["receipt_url"] in public.text and tx.transaction_id in public.text
    pdf = await client.get(f"/v1/receipts/{receipt['id']}.pdf", headers=merchant.headers)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    # The platform sending its result again: a repeat, credited once. And it has no refund message.
    again = {
        k: v
        for k, v in (await client.get(f"{SANDBOX}/_sandbox/transactions/{reference}")).json().items()
        if k not in ("status", "MaHoSo")
    }
    answer = await post_result(client, again)
    assert answer["MaLoi"] == "00" and answer["MaXacThuc"] == wire.sign(
        answer, wire.RESULT_ANSWER_SIGNED, sandbox_secrets(rt, PROVIDER)["hash_key"]
    )
    assert len(await ledger_of(client, merchant, payment_id=payment["id"])) == 1
    assert_problem(await refund(client, merchant, payment["id"]), 422, "refund_not_supported")


async def test_the_national_platform_block_is_validated(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    base = {"amount": 150000, "method": PROVIDER, "reference": "HS-1", "national_platform": BLOCK}
    short = {**BLOCK, "fees": FEES[:1]}
    wrong_sum = await client.post("/v1/payments", json={**base, "national_platform": short}, headers=merchant.idem())
    assert_problem(wrong_sum, 422, "validation_error", ["body", "national_platform", "fees"])
    missing = await client.post("/v1/payments", json={**base, "national_platform": None}, headers=merchant.idem())
    assert_problem(missing, 422, "validation_error", ["body", "national_platform"])
    other = await client.post("/v1/payments", json={**base, "method": "vietqr"}, headers=merchant.idem())
    assert_problem(other, 422, "validation_error", ["body", "national_platform"])
    kind = {**BLOCK, "fees": [{**FEES[0], "kind": "fine"}, FEES[1]]}
    bad_kind = await client.post("/v1/payments", json={**base, "national_platform": kind}, headers=merchant.idem())
    assert_problem(bad_kind, 422, "validation_error", ["body", "national_platform", "fees", 0, "kind"])
    listed = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert listed == []


async def test_dossiers_sharing_their_first_20_characters_get_their_own_references(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    prefix = "000.00.10.H26-261122"  # 20 characters
    first = await fee_payment(client, merchant, f"{prefix}-0001")
    second = await fee_payment(
        client, merchant, f"{prefix}-0002", amount=100000, national_platform={**BLOCK, "fees": FEES[:1]}
    )
    assert first["provider_reference"] != second["provider_reference"]
    assert not first["provider_reference"].startswith(prefix[:10])
    key = sandbox_secrets(rt, PROVIDER)["hash_key"]
    await post_result(client, result(key, second["provider_reference"], 100000, transaction="GD-2"))
    assert (await get_payment(client, merchant, first["id"]))["status"] == "requires_action"
    assert (await pay(client, merchant, first["id"])).json()["status"] == "succeeded"
    settled = [await get_payment(client, merchant, p["id"]) for p in (first, second)]
    assert [(p["status"], p["amount_received"]) for p in settled] == [("succeeded", 150000), ("succeeded", 100000)]
    assert settled[1]["national_platform"]["transaction_id"] == "GD-2"


async def test_tampered_unknown_and_declined_results(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    key = sandbox_secrets(rt, PROVIDER)["hash_key"]
    payment = await fee_payment(client, merchant)
    reference = payment["provider_reference"]
    # The sandbox's fault: its result changed after signing.
    armed = await client.post(f"{SANDBOX}/_sandbox/faults", json={"fault": "result_tampered"})
    assert armed.status_code == 200
    played = await client.post(f"{SANDBOX}/_sandbox/transactions/{reference}/pay", json={"amount": 150000})
    assert played.json()["result_stored"] is False
    tampered = {**result(key, reference), "SoTien": "1500"}
    answer = await post_result(client, tampered)
    assert (answer["MaLoi"], answer["MaXacThuc"]) == ("99", "")
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"

    unknown = await post_result(client, result(key, "GW000000000000000000", transaction="GD-X"))
    assert unknown["MaLoi"] == "00"  # stored, for reconciliation: the platform need not send it again

    # A code the gateway does not know ends nothing (the status query will tell); a cancel needs no amount.
    odd = await post_result(client, result(key, reference, code="98", transaction="GD-98"))
    assert odd["MaLoi"] == "00"
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"
    cancel = {**result(key, reference, code=wire.PAYER_CANCELED, transaction=""), "SoTien": ""}
    cancel["MaXacThuc"] = wire.sign(cancel, wire.RESULT_SIGNED, key)
    declined = await post_result(client, cancel)
    assert declined["MaLoi"] == "00"
    failed = await get_payment(client, merchant, payment["id"])
    assert (failed["status"], failed["failure_code"], failed["amount_received"]) == ("failed", "payer_canceled", 0)
    audit = await sql(rt, "SELECT verified, outcome FROM provider_notifications ORDER BY received_at, id")
    assert [(bool(r["verified"]), r["outcome"]) for r in audit] == [
        (False, "rejected"),  # the sandbox's tampered push
        (False, "rejected"),
        (True, "unmatched"),
        (True, "applied"),  # the unknown code: stored, nothing changed
        (True, "applied"),
    ]
    assert await sql(rt, "SELECT status, amount FROM received_funds") == [{"status": "unmatched", "amount": 150000}]


async def test_a_lost_result_is_settled_by_the_status_query(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    payment = await fee_payment(client, merchant)
    reference = payment["provider_reference"]
    clock.advance(61)
    assert await check_payments_once(rt) == 0  # asked: not paid yet
    await client.post(f"{SANDBOX}/_sandbox/faults", json={"fault": "result_lost"})
    played = await client.post(f"{SANDBOX}/_sandbox/transactions/{reference}/pay", json={"amount": 150000})
    assert played.json()["result_lost"] is True
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "requires_action"
    clock.advance(301)
    assert await check_payments_once(rt) == 1
    paid = await get_payment(client, merchant, payment["id"])
    assert (paid["status"], paid["national_platform"]["transaction_id"]) == ("succeeded", played.json()["MaGiaoDich"])
    assert paid["national_platform"]["receipt_url"].startswith(f"http://gateway.test{SANDBOX}/receipts/")


async def test_the_platforms_inquiry_by_dossier_code_in_test_mode(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    key = sandbox_secrets(rt, PROVIDER)["hash_key"]
    dossier = "000.00.10.H26-261122-0007"
    payment = await fee_payment(client, merchant, dossier)
    open_ = await inquire(client, key, dossier)
    assert (open_["error_code"], open_["SoTien"], open_["MaThamChieu"]) == (1, 150000, payment["provider_reference"])
    assert open_["PhiLePhi"] == [
        {"LoaiPhiLePhi": "1", "MaPhiLePhi": "PHI01", "TenPhiLePhi": "Phí thẩm định hồ sơ", "SoTien": 100000},
        {"LoaiPhiLePhi": "2", "MaPhiLePhi": "LP01", "TenPhiLePhi": "Lệ phí cấp giấy phép", "SoTien": 50000},
    ]
    # The sandbox platform's own inquiry (the citizen looking the dossier up on the portal) agrees.
    played = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()
    assert played["authentic"] is True and played["answer"]["MaThamChieu"] == payment["provider_reference"]
    assert (await inquire(client, key, "000.00.10.H26-UNKNOWN"))["error_code"] == 0
    forged = await inquire(client, "not-the-key", dossier)
    assert (forged["error_code"], forged["MaXacThuc"]) == (-1, "")
    await pay(client, merchant, payment["id"])
    assert (await inquire(client, key, dossier))["error_code"] == 0  # paid
    audit = await sql(rt, "SELECT verified, outcome FROM provider_notifications WHERE detail LIKE 'verify-order%'")
    assert [(bool(r["verified"]), r["outcome"]) for r in audit].count((False, "rejected")) == 1
    assert len(audit) == 5


async def test_a_live_account_inquiry_creates_the_bills_payment_and_its_result_pays_it(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    live_creds = {
        "partner_code": "000.00.00.H26",
        "agency_code": "000.00.10.H26",
        "hash_key": "live-hash-key-26",
        "api_base_url": "https://dvc.test",
    }
    put = await client.put(f"/v1/merchants/{merchant.id}/providers/{PROVIDER}", json=live_creds, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["secrets_set"] == ["hash_key"] and "live-hash-key-26" not in put.text
    stored = await sql(rt, "SELECT account_key, secrets_encrypted FROM provider_accounts")
    assert stored[0]["account_key"] == "000.00.00.H26" and "live-hash-key-26" not in stored[0]["secrets_encrypted"]
    bad = await client.put(
        f"/v1/merchants/{merchant.id}/providers/{PROVIDER}", json={"partner_code": "X"}, headers=ADMIN
    )
    assert bad.status_code == 422

    live = MerchantHandle(merchant.id, (await new_key(client, merchant.id, "live"))["secret"])
    customer = await client.post("/v1/customers", json={"code": "CD-01", "name": "Trần Thị Bình"}, headers=live.idem())
    dossier = "000.00.10.H26-261122-0042"
    bill = await client.post(
        "/v1/bills",
        json={"customer": customer.json()["id"], "number": dossier, "amount": 200000, "description": "Lệ phí hộ tịch"},
        headers=live.idem(),
    )
    assert bill.status_code == 201, bill.text
    key = live_creds["hash_key"]
    first = await inquire(client, key, dossier, "000.00.00.H26")
    again = await inquire(client, key, dossier, "000.00.00.H26")
    assert (first["error_code"], first["SoTien"]) == (1, 200000)
    assert again["MaThamChieu"] == first["MaThamChieu"] and len(first["MaThamChieu"]) == 20
    assert first["PhiLePhi"] == [
        {"LoaiPhiLePhi": "1", "MaPhiLePhi": dossier, "TenPhiLePhi": "Lệ phí hộ tịch", "SoTien": 200000}
    ]
    [payment] = (await client.get("/v1/payments", headers=live.headers)).json()["data"]
    assert (payment["reference"], payment["bill_id"], payment["status"]) == (
        dossier,
        bill.json()["id"],
        "requires_action",
    )
    assert payment["provider_reference"] == first["MaThamChieu"]
    assert (await inquire(client, "sandbox-key-is-not-this", dossier, "000.00.00.H26"))["error_code"] == -1

    fields = {**result(key, first["MaThamChieu"], 200000, transaction="GD-LIVE-1"), "MaDoiTac": "000.00.00.H26"}
    fields["MaXacThuc"] = wire.sign(fields, wire.RESULT_SIGNED, key)
    answer = await post_result(client, fields)
    assert answer["MaLoi"] == "00" and answer["MaXacThuc"] == wire.sign(answer, wire.RESULT_ANSWER_SIGNED, key)
    paid = await get_payment(client, live, payment["id"])
    assert (paid["status"], paid["national_platform"]["transaction_id"]) == ("succeeded", "GD-LIVE-1")
    billed = (await client.get(f"/v1/bills/{bill.json()['id']}", headers=live.headers)).json()
    assert billed["status"] == "paid"
    assert (await inquire(client, key, dossier, "000.00.00.H26"))["error_code"] == 0  # paid now
    body = orjson.dumps(fields).decode()
    assert "live-hash-key-26" not in body


async def test_in_test_mode_the_sandbox_platform_finds_a_bill_by_its_dossier_and_pays_it(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    customer = await client.post(
        "/v1/customers", json={"code": "CD-07", "name": "Lê Văn Cường"}, headers=merchant.idem()
    )
    dossier = "000.00.10.H26-261122-0077"
    bill = await client.post(
        "/v1/bills",
        json={"customer": customer.json()["id"], "number": dossier, "amount": 80000, "description": "Lệ phí hộ tịch"},
        headers=merchant.idem(),
    )
    assert bill.status_code == 201, bill.text
    # The citizen looks the dossier up on the portal: the sandbox platform's signed inquiry, by the shared account.
    looked_up = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()
    answer = looked_up["answer"]
    assert looked_up["authentic"] and (answer["error_code"], answer["SoTien"]) == (1, 80000)
    again = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()["answer"]
    assert again["MaThamChieu"] == answer["MaThamChieu"]  # the same payment, found again
    [payment] = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert (payment["bill_id"], payment["provider_reference"]) == (bill.json()["id"], answer["MaThamChieu"])

    form = {"MaThamChieu": answer["MaThamChieu"], "bank": "970436", "action": "pay"}
    assert "Thanh toán thành công" in (await client.post(f"{SANDBOX}/_sandbox/checkout", data=form)).text
    assert (await get_payment(client, merchant, payment["id"]))["status"] == "succeeded"
    assert (await client.get(f"/v1/bills/{bill.json()['id']}", headers=merchant.headers)).json()["status"] == "paid"
    paid_now = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()["answer"]
    assert paid_now["error_code"] == 0

    # Two merchants with a test bill of one number: the shared account cannot tell whose, so nothing is due.
    other = await create_merchant(client, "Sở Tư pháp")
    other_customer = await client.post(
        "/v1/customers", json={"code": "CD-08", "name": "Phạm Thị Dung"}, headers=other.idem()
    )
    for handle, owner in ((merchant, customer), (other, other_customer)):
        made = await client.post(
            "/v1/bills",
            json={"customer": owner.json()["id"], "number": "HS-SHARED-1", "amount": 30000},
            headers=handle.idem(),
        )
        assert made.status_code == 201, made.text
    shared = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": "HS-SHARED-1"})).json()["answer"]
    assert shared["error_code"] == 0


async def test_an_open_payment_of_a_dossier_whose_bill_is_paid_is_not_offered(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    dossier = "000.00.10.H26-261122-0099"
    customer = await client.post("/v1/customers", json={"code": "CD-09", "name": "Đỗ Văn Em"}, headers=merchant.idem())
    bill = await client.post(
        "/v1/bills",
        json={"customer": customer.json()["id"], "number": dossier, "amount": 150000},
        headers=merchant.idem(),
    )
    assert bill.status_code == 201, bill.text
    await fee_payment(client, merchant, dossier)  # the one-stop system's payment, still open on the platform
    open_answer = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()["answer"]
    assert (open_answer["error_code"], open_answer["SoTien"]) == (1, 150000)
    # The citizen pays the bill at the counter instead: the portal must not offer the dossier again.
    counter = {"method": "counter", "bill_id": bill.json()["id"], "counter": {"instrument": "cash"}, "confirm": True}
    paid = await client.post("/v1/payments", json=counter, headers=merchant.idem())
    assert paid.json()["status"] == "succeeded", paid.text
    after = (await client.post(f"{SANDBOX}/_sandbox/inquiry", json={"MaHoSo": dossier})).json()["answer"]
    assert after["error_code"] == 0
