"""PROVIDERS.md's published Viettel Money check_sum vectors, and the per-telco encodings."""

from __future__ import annotations

import pytest

from gateway.adapters.telco import wire

ACCESS, KEY = "ACCESSCODE123", "HASHKEY456"
COMMON = {"billcode": "HD0001", "order_id": "HD0001", "merchant_code": "MERCHANT01"}


@pytest.mark.parametrize(
    ("fields", "names", "expected"),
    [
        ({**COMMON, "trans_amount": "150000"}, wire.VERIFY_SIGNED, "Vuq/EFTdFePps5eoTvVh7kgZb80="),
        (COMMON, wire.VERIFY_SIGNED, "53uE0nJF57eIOokN0+iZvxUgql0="),
        (
            {**COMMON, "trans_amount": "150000", "error_code": "00"},
            wire.VERIFY_ANSWER_SIGNED,
            "PR9fxDOPK13I1TgoK9fvmxAcx4k=",
        ),
        (
            {
                **COMMON,
                "trans_amount": "150000",
                "cust_msisdn": "84987654321",
                "vt_transaction_id": "VT123456789",
                "error_code": "00",
                "payment_status": "1",
            },
            wire.RESULT_SIGNED,
            "8PwowPio5i2RWabb79XpVVR+L4I=",
        ),
    ],
    ids=["verify_with_amount", "verify_without_amount", "verify_answer", "result"],
)
def test_viettel_vectors(fields: dict[str, str], names: tuple[str, ...], expected: str) -> None:
    assert wire.sign(KEY, ACCESS, fields, names, "base64") == expected
    assert wire.check_sum_matches(KEY, ACCESS, {**fields, "check_sum": expected}, names, "base64")
    assert not wire.check_sum_matches(
        KEY, ACCESS, {**fields, "check_sum": expected, "order_id": "HD0002"}, names, "base64"
    )


def test_hex_profile_signs_the_same_digest() -> None:
    fields = {**COMMON, "trans_amount": "150000"}
    b64 = wire.sign(KEY, ACCESS, fields, wire.VERIFY_SIGNED, "base64")
    hexed = wire.sign(KEY, ACCESS, fields, wire.VERIFY_SIGNED, "hex")
    import base64

    assert base64.b64decode(b64).hex() == hexed
    assert wire.check_sum_matches(KEY, ACCESS, {**fields, "check_sum": hexed.upper()}, wire.VERIFY_SIGNED, "hex")


def test_profiles_map_codes() -> None:
    assert wire.VIETTEL_MONEY.failure_code("16") == "insufficient_funds"
    assert wire.VIETTEL_MONEY.failure_code("V06") == "payer_canceled"
    assert wire.VIETTEL_MONEY.failure_code(wire.VIETTEL_MONEY.limit_code) == "limit_exceeded"
    assert wire.VIETTEL_MONEY.failure_code("X1") == "viettel_money_X1"
    assert {p.provider for p in wire.PROFILES} == {"viettel_money", "vnpt_money", "mobifone_money"}
    assert {p.encoding for p in wire.PROFILES} == {"base64", "hex"}
