"""The national platform's MaXacThuc: PROVIDERS.md's two published vectors, and the gateway's own reference."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from gateway.adapters.base import FundsReceived, InboundRequest, ProviderCredentials
from gateway.adapters.national_platform import wire
from gateway.adapters.national_platform.adapter import NationalPlatformAdapter

KEY = "HASHKEY789"
INIT = {
    "LoaiBanTin": "1",
    "PhienBan": "1.0.0",
    "MaDoiTac": "000.00.00.H01",
    "MaThamChieu": "123_abcd-ef01-2345",
    "SoTien": "150000",
    "LoaiHinhThanhToan": "1",
    "MaKenhThanhToan": "1",
    "MaThietBi": "1",
    "NgonNgu": "vi",
    "MaTienTe": "704",
    "MaNganHang": "",
    "ThongTinGiaoDich": "Thanh toan le phi",
    "ThoiGianGD": "20240101120000",
    "Ip": "127.0.0.1",
}
RESULT = {
    "LoaiBanTin": "2",
    "MaLoi": "00",
    "MaDoiTac": "000.00.00.H01",
    "MaThamChieu": "123_abcd-ef01-2345",
    "SoTien": "150000",
    "MaTienTe": "704",
    "MaGiaoDich": "GD0001",
    "MaNganHang": "970436",
    "ThoiGianGD": "20240101120500",
    "ThongTinGiaoDich": "Thanh toan le phi",
}
INIT_VECTOR = "ca1312609eed947f750c9bae30e5340af3ad855dcf3e62551a621009d3f54670"
RESULT_VECTOR = "c28edae3f78a0dd1fb53b3791b07d8e5e70f472e037fa71cdad3eb7836ea4c7a"


def test_the_published_vectors() -> None:
    assert "|".join([*wire.signed_values(INIT, wire.INIT_SIGNED), KEY]) == (
        "1|1.0.0|000.00.00.H01|123_abcd-ef01-2345|150000|1|1|1|vi|704||Thanh toan le phi|20240101120000|127.0.0.1"
        "|HASHKEY789"
    )
    assert wire.sign(INIT, wire.INIT_SIGNED, KEY) == INIT_VECTOR
    assert wire.sign(RESULT, wire.RESULT_SIGNED, KEY) == RESULT_VECTOR
    assert wire.signature_matches({**RESULT, "MaXacThuc": RESULT_VECTOR}, wire.RESULT_SIGNED, KEY)
    assert wire.signature_matches({**RESULT, "MaXacThuc": RESULT_VECTOR.upper()}, wire.RESULT_SIGNED, KEY)


def test_a_changed_value_key_or_missing_signature_does_not_verify() -> None:
    signed = {**RESULT, "MaXacThuc": RESULT_VECTOR}
    assert not wire.signature_matches({**signed, "SoTien": "1500000"}, wire.RESULT_SIGNED, KEY)
    assert not wire.signature_matches(signed, wire.RESULT_SIGNED, "OTHERKEY")
    assert not wire.signature_matches(RESULT, wire.RESULT_SIGNED, KEY)
    assert not wire.signature_matches({**signed, "MaXacThuc": ""}, wire.RESULT_SIGNED, KEY)
    assert not wire.signature_matches(signed, wire.RESULT_SIGNED, "")


def test_the_reference_is_the_payment_ids_own() -> None:
    first, second = (
        wire.reference_for("pay_01JZ0000000000000000000001"),
        wire.reference_for("pay_01JZ0000000000000000000002"),
    )
    assert first == wire.reference_for("pay_01JZ0000000000000000000001")  # a retried start names the same one
    assert first != second
    assert len(first) == wire.REFERENCE_MAX and first.isalnum()


def test_a_results_receipt_link_is_kept_only_when_it_is_a_web_address_of_sane_length() -> None:
    """UrlBienLai is not among the signed fields and is shown on the public receipt: nothing but an http(s) URL."""
    adapter = NationalPlatformAdapter()
    credentials = ProviderCredentials(
        livemode=True,
        merchant_id="mch_1",
        settings={"partner_code": RESULT["MaDoiTac"]},
        secrets={"hash_key": KEY},
        base_url="https://dvc.test",
    )
    signed = {**RESULT, "MaXacThuc": RESULT_VECTOR}
    kept: list[str | None] = []
    for link in [
        "https://dvc.test/bien-lai/1",
        "javascript:alert(1)",
        "https://dvc.test/" + "x" * 600,
        "",
    ]:
        body = orjson.dumps({**signed, "UrlBienLai": link})
        [funds] = adapter.verify_notification(InboundRequest("POST", {}, {}, body), credentials, datetime.now(UTC))
        assert isinstance(funds, FundsReceived) and funds.amount == 150000
        kept.append(funds.provider_data["platform"]["receipt_url"])
    assert kept == ["https://dvc.test/bien-lai/1", None, None, None]
