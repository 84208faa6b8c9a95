from __future__ import annotations

import binascii
import io

import pytest
import segno
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.adapters.emvco import (
    InvalidQRField,
    InvalidQRPayload,
    VietQRPayload,
    build_vietqr,
    crc16_ccitt_false,
    parse_emvco,
    parse_tlv,
    parse_vietqr,
    to_qr_ascii,
)

# Test vectors from PROVIDERS.md, section "VietQR".
VECTOR_1 = (
    "00020101021238540010A00000072701240006970436011010175956000208QRIBFTTA"
    "530370454061800005802VN62230819thanh toan don hang630470FA"
)
VECTOR_2 = (
    "00020101021238570010A00000072701270006970415011300110019324180208QRIBFTTA"
    "530370454061200005802VN62170813ung ho lu lut6304C15C"
)
PAYLOAD_1 = VietQRPayload(bank_bin="970436", account_number="1017595600", amount=180000, purpose="thanh toan don hang")
PAYLOAD_2 = VietQRPayload(bank_bin="970415", account_number="0011001932418", amount=120000, purpose="ung ho lu lut")
VECTORS = [(PAYLOAD_1, VECTOR_1), (PAYLOAD_2, VECTOR_2)]


def read_tlv(data: str) -> list[tuple[str, str]]:
    """Independent minimal TLV reader: deliberately shares no code with the module's parser."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(data):
        tag = data[i : i + 2]
        n = int(data[i + 2 : i + 4])
        value = data[i + 4 : i + 4 + n]
        assert len(value) == n, f"truncated tag {tag}"
        out.append((tag, value))
        i += 4 + n
    return out


def with_crc(body: str) -> str:
    return body + crc16_ccitt_false(body)


def independent_crc(data: str) -> str:
    # Bitwise CRC-16/CCITT-FALSE, so the test does not trust binascii's choice of variant.
    crc = 0xFFFF
    for byte in data.encode("ascii"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return f"{crc:04X}"


@pytest.mark.parametrize(("payload", "vector"), VECTORS)
def test_build_reproduces_provider_vectors(payload: VietQRPayload, vector: str) -> None:
    assert build_vietqr(payload) == vector


@pytest.mark.parametrize(("payload", "vector"), VECTORS)
def test_parse_vietqr_of_vectors_gives_fields(payload: VietQRPayload, vector: str) -> None:
    parsed = parse_vietqr(vector)
    assert parsed == payload
    assert parsed.service_code == "QRIBFTTA"
    assert parsed.merchant_name is None and parsed.city is None


def test_crc_known_value() -> None:
    assert crc16_ccitt_false("123456789") == "29B1"
    assert independent_crc("123456789") == "29B1"


def test_static_qr_has_no_amount() -> None:
    payload = build_vietqr(VietQRPayload(bank_bin="970436", account_number="1017595600"))
    fields = dict(read_tlv(payload))
    assert fields["01"] == "11"
    assert "54" not in fields and "62" not in fields
    assert parse_vietqr(payload).amount is None


def test_independent_reader_round_trips_built_payload() -> None:
    p = VietQRPayload(
        bank_bin="970415",
        account_number="0011001932418",
        amount=250000,
        purpose="Thanh toán hoá đơn 42",
        merchant_name="Công ty Điện lực",
        city="Hà Nội",
        bill_number="HD-2026-11",
        reference_label="REF42",
    )
    payload = build_vietqr(p)
    fields = read_tlv(payload)
    tags = [tag for tag, _ in fields]
    assert tags == ["00", "01", "38", "53", "54", "58", "59", "60", "62", "63"]
    top = dict(fields)
    assert top["00"] == "01" and top["01"] == "12"
    assert top["53"] == "704" and top["54"] == "250000" and top["58"] == "VN"
    assert top["59"] == "Cong ty Dien luc" and top["60"] == "Ha Noi"
    merchant = dict(read_tlv(top["38"]))
    assert merchant == {
        "00": "A000000727",
        "01": "000697041501130011001932418",
        "02": "QRIBFTTA",
    }
    assert dict(read_tlv(merchant["01"])) == {"00": "970415", "01": "0011001932418"}
    assert read_tlv(top["62"]) == [
        ("01", "HD-2026-11"),
        ("05", "REF42"),
        ("08", "Thanh toan hoa don 42"),
    ]
    assert payload[-8:-4] == "6304"
    assert top["63"] == independent_crc(payload[:-4])


VIETNAMESE_PURPOSES = [
    "Thanh toán tiền điện tháng 11",  # 29 chars: too long for tag 62/08, must be rejected
    "Tiền điện tháng 11",
    "Tiền nước quý 4",
    "Đóng học phí",
    "Ủng hộ lũ lụt miền Trung",
    "Chuyển khoản  \t đơn hàng",
]
VIET_ALPHABET = "aăâbcdđeêghiklmnoôơpqrstuưvxyÀÁẢÃẠĂẮẰẲẴẶÂẤẦẨẪẬĐÉÈẺẼẸỆíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ 0123456789-"
texts = st.one_of(st.sampled_from(VIETNAMESE_PURPOSES), st.text(VIET_ALPHABET, max_size=30))


@settings(max_examples=300, deadline=None)
@given(
    bank_bin=st.from_regex(r"[0-9]{6}", fullmatch=True),
    account=st.from_regex(r"[0-9A-Za-z]{1,19}", fullmatch=True),
    amount=st.none() | st.integers(1, 9_999_999_999_999),
    service_code=st.sampled_from(["QRIBFTTA", "QRIBFTTC"]),
    purpose=st.none() | texts,
    merchant_name=st.none() | texts,
    city=st.none() | st.text(VIET_ALPHABET, max_size=18),
    bill_number=st.none() | st.from_regex(r"[A-Z0-9-]{1,25}", fullmatch=True),
)
def test_build_parse_round_trip(
    bank_bin: str,
    account: str,
    amount: int | None,
    service_code: str,
    purpose: str | None,
    merchant_name: str | None,
    city: str | None,
    bill_number: str | None,
) -> None:
    kwargs = dict(
        bank_bin=bank_bin,
        account_number=account,
        amount=amount,
        service_code=service_code,
        purpose=purpose,
        merchant_name=merchant_name,
        city=city,
        bill_number=bill_number,
    )
    limits = {"purpose": 25, "merchant_name": 25, "city": 15}
    too_long = [
        name
        for name, limit in limits.items()
        if kwargs[name] is not None and not 0 < len(to_qr_ascii(str(kwargs[name]))) <= limit
    ]
    if too_long:
        with pytest.raises(InvalidQRField) as err:
            VietQRPayload(**kwargs)  # type: ignore[arg-type]
        assert err.value.field in too_long
        return
    p = VietQRPayload(**kwargs)  # type: ignore[arg-type]
    payload = build_vietqr(p)
    assert payload.isascii() and payload.isprintable()
    top = parse_emvco(payload)
    assert top["63"] == independent_crc(payload[:-4])
    parsed = parse_vietqr(payload)
    assert parsed.bank_bin == bank_bin
    assert parsed.account_number == account
    assert parsed.amount == amount
    assert parsed.service_code == service_code
    assert parsed.bill_number == bill_number
    assert parsed.reference_label is None
    for name in limits:
        original = kwargs[name]
        expected = None if original is None else to_qr_ascii(str(original))
        assert getattr(parsed, name) == expected


def test_parse_accepts_any_order_between_00_and_63() -> None:
    fields = parse_tlv(VECTOR_1[:-8])
    reordered = "000201" + "".join(f"{tag}{len(v):02d}{v}" for tag, v in reversed(list(fields.items())) if tag != "00")
    assert parse_vietqr(with_crc(reordered + "6304")) == PAYLOAD_1


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_character_tamper_is_rejected(data: st.DataObject) -> None:
    vector = data.draw(st.sampled_from([VECTOR_1, VECTOR_2]))
    i = data.draw(st.integers(0, len(vector) - 1))
    replacement = data.draw(st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != vector[i]))
    tampered = vector[:i] + replacement + vector[i + 1 :]
    with pytest.raises(InvalidQRPayload):
        parse_emvco(tampered)


@pytest.mark.parametrize(
    "bad",
    [
        VECTOR_1.replace("don hang", "don hanh"),  # value changed, CRC kept
        VECTOR_1[:-1] + "B",  # CRC digit
        VECTOR_1[:-4] + "70fa",  # lowercase CRC is not what the spec allows
        VECTOR_1[:-5],  # truncated
        "",
        with_crc(VECTOR_1[:-8] + "5802VN6304"),  # duplicate tag 58, valid CRC
        with_crc("6304"),  # 00 missing
        VECTOR_1 + "0000",  # 63 not last
        VECTOR_1.replace("5406180000", "54061800ð0"),  # non-ASCII
    ],
)
def test_malformed_payloads_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidQRPayload):
        parse_emvco(bad)


def test_parse_vietqr_requires_napas_guid() -> None:
    body = "000201010212" + "38200010A000000999010200" + "5303704" + "5802VN" + "6304"
    payload = with_crc(body)
    parse_emvco(payload)  # structurally fine...
    with pytest.raises(InvalidQRPayload, match="A000000727"):
        parse_vietqr(payload)  # ...but not a NAPAS VietQR


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bank_bin": "97043"}, "bank_bin"),
        ({"account_number": "1" * 20}, "account_number"),
        ({"account_number": "1017-5956"}, "account_number"),
        ({"amount": 0}, "amount"),
        ({"amount": 10_000_000_000_000}, "amount"),
        ({"amount": True}, "amount"),
        ({"purpose": "Thanh toán tiền nước tháng"}, "purpose"),  # 26 chars once ascii-fied
        ({"purpose": "   "}, "purpose"),
        ({"merchant_name": "Công ty TNHH Thương mại Điện tử"}, "merchant_name"),
        ({"city": "Thành phố Hồ Chí Minh"}, "city"),
        ({"bill_number": "B" * 26}, "bill_number"),
        ({"reference_label": "R" * 26}, "reference_label"),
        ({"service_code": "QRPUSH"}, "service_code"),
    ],
)
def test_invalid_fields_name_the_field(kwargs: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"bank_bin": "970436", "account_number": "1017595600"}
    with pytest.raises(InvalidQRField) as err:
        VietQRPayload(**{**base, **kwargs})  # type: ignore[arg-type]
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_purpose_of_26_chars_is_26_after_ascii() -> None:
    assert len(to_qr_ascii("Thanh toán tiền nước tháng")) == 26
    assert len(to_qr_ascii("Thanh toán tiền nước thán")) == 25
    VietQRPayload(bank_bin="970436", account_number="1", purpose="Thanh toán tiền nước thán")


def test_vietnamese_diacritics() -> None:
    assert to_qr_ascii("Đóng học phí") == "Dong hoc phi"
    assert to_qr_ascii("Thanh toán tiền điện tháng 11") == "Thanh toan tien dien thang 11"
    assert to_qr_ascii("ĐẶNG  đức\tthắng\n") == "DANG duc thang"
    assert to_qr_ascii("a\x00b \x07 c") == "ab c"


@pytest.mark.parametrize(
    "payload",
    [
        VECTOR_1,
        VECTOR_2,
        build_vietqr(
            VietQRPayload(
                bank_bin="970436",
                account_number="1017595600",
                amount=9_999_999_999_999,
                purpose="Tiền điện tháng 11",
                merchant_name="Điện lực Hà Nội",
                city="Hà Nội",
            )
        ),
    ],
)
def test_real_qr_decoder_round_trip(payload: str) -> None:
    buf = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buf, kind="png", scale=8, border=4)
    buf.seek(0)
    with Image.open(buf) as image:
        results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].text == payload
    assert parse_vietqr(results[0].text) == parse_vietqr(payload)


def test_binascii_crc_matches_independent_implementation() -> None:
    for text in (VECTOR_1[:-4], VECTOR_2[:-4], "", "6304"):
        assert format(binascii.crc_hqx(text.encode(), 0xFFFF), "04X") == independent_crc(text)
