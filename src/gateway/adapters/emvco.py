"""VietQR (NAPAS 247) payloads in the EMVCo merchant-presented QR format.

See PROVIDERS.md, section "VietQR". Pure functions only: rendering the QR image is the caller's job.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from anyascii import anyascii

NAPAS_GUID = "A000000727"
SERVICE_TO_ACCOUNT = "QRIBFTTA"
SERVICE_TO_CARD = "QRIBFTTC"
SERVICE_CODES = frozenset({SERVICE_TO_ACCOUNT, SERVICE_TO_CARD})
POI_STATIC = "11"
POI_DYNAMIC = "12"
CURRENCY_VND = "704"
COUNTRY_VN = "VN"
MAX_AMOUNT = 9_999_999_999_999  # tag 54 holds at most 13 characters
MAX_TLV_VALUE = 99  # the length prefix is two decimal digits

# [0-9] rather than \d: \d also accepts non-ASCII digits, which banking apps reject.
_BIN_RE = re.compile(r"[0-9]{6}")
_ACCOUNT_RE = re.compile(r"[0-9A-Za-z]{1,19}")
_AMOUNT_RE = re.compile(r"[1-9][0-9]{0,12}")
# Limits apply after to_qr_ascii, since that is what ends up in the QR.
_TEXT_LIMITS = (
    ("merchant_name", 25),
    ("city", 15),
    ("bill_number", 25),
    ("reference_label", 25),
    ("purpose", 25),
)


class InvalidQRField(ValueError):
    """A value cannot be encoded into a VietQR payload."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidQRPayload(ValueError):
    """A string is not a well-formed (or not a VietQR) EMVCo payload."""


def crc16_ccitt_false(data: str) -> str:
    return format(binascii.crc_hqx(data.encode("ascii"), 0xFFFF), "04X")


def to_qr_ascii(text: str) -> str:
    ascii_text = anyascii(text)
    # Control characters become spaces *before* collapsing, so "a\tb" stays two words
    # and dropping a character can never leave a double space behind.
    kept = "".join(c if " " <= c <= "~" else " " if c.isspace() else "" for c in ascii_text)
    return " ".join(kept.split())


@dataclass(frozen=True)
class VietQRPayload:
    bank_bin: str
    account_number: str
    amount: int | None = None
    purpose: str | None = None
    service_code: str = SERVICE_TO_ACCOUNT
    merchant_name: str | None = None
    city: str | None = None
    bill_number: str | None = None
    reference_label: str | None = None

    def __post_init__(self) -> None:
        if not _BIN_RE.fullmatch(self.bank_bin):
            raise InvalidQRField("bank_bin", "must be exactly 6 digits")
        if not _ACCOUNT_RE.fullmatch(self.account_number):
            raise InvalidQRField("account_number", "must be 1-19 ASCII letters or digits")
        if self.amount is not None:
            # bool is an int subclass; True would silently become an amount of 1 VND.
            if isinstance(self.amount, bool) or not isinstance(self.amount, int):
                raise InvalidQRField("amount", "must be an int (whole VND) or None")
            if not 0 < self.amount <= MAX_AMOUNT:
                raise InvalidQRField("amount", f"must be between 1 and {MAX_AMOUNT}")
        if self.service_code not in SERVICE_CODES:
            raise InvalidQRField("service_code", f"must be one of {sorted(SERVICE_CODES)}")
        for name, limit in _TEXT_LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            encoded = to_qr_ascii(value)
            # An empty field would not survive a round trip (it would parse back as a value,
            # not None) and some banking apps reject zero-length fields.
            if not encoded:
                raise InvalidQRField(name, "is empty after ASCII conversion; use None")
            if len(encoded) > limit:
                raise InvalidQRField(name, f"is {len(encoded)} chars after ASCII conversion, max {limit}")


def _tlv(tag: str, value: str, field: str) -> str:
    if len(value) > MAX_TLV_VALUE:
        raise InvalidQRField(field, f"tag {tag} value exceeds {MAX_TLV_VALUE} chars")
    return f"{tag}{len(value):02d}{value}"


def build_vietqr(p: VietQRPayload) -> str:
    beneficiary = _tlv("00", p.bank_bin, "bank_bin") + _tlv("01", p.account_number, "account_number")
    merchant_account = (
        _tlv("00", NAPAS_GUID, "merchant_account")
        + _tlv("01", beneficiary, "account_number")
        + _tlv("02", p.service_code, "service_code")
    )
    out = _tlv("00", "01", "payload_format")
    out += _tlv("01", POI_STATIC if p.amount is None else POI_DYNAMIC, "amount")
    out += _tlv("38", merchant_account, "merchant_account")
    out += _tlv("53", CURRENCY_VND, "currency")
    if p.amount is not None:
        out += _tlv("54", str(p.amount), "amount")
    out += _tlv("58", COUNTRY_VN, "country")
    if p.merchant_name is not None:
        out += _tlv("59", to_qr_ascii(p.merchant_name), "merchant_name")
    if p.city is not None:
        out += _tlv("60", to_qr_ascii(p.city), "city")
    additional = ""
    for tag, name in (("01", "bill_number"), ("05", "reference_label"), ("08", "purpose")):
        value = getattr(p, name)
        if value is not None:
            additional += _tlv(tag, to_qr_ascii(value), name)
    if additional:
        out += _tlv("62", additional, "additional_data")
    out += "6304"
    return out + crc16_ccitt_false(out)


def parse_tlv(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        tag, length = value[pos : pos + 2], value[pos + 2 : pos + 4]
        if len(length) < 2 or not (tag.isascii() and tag.isdigit()):
            raise InvalidQRPayload(f"malformed field header at offset {pos}")
        if not (length.isascii() and length.isdigit()):
            raise InvalidQRPayload(f"tag {tag}: bad length {length!r}")
        end = pos + 4 + int(length)
        if end > len(value):
            raise InvalidQRPayload(f"tag {tag}: truncated value")
        if tag in fields:
            raise InvalidQRPayload(f"tag {tag}: duplicated")
        fields[tag] = value[pos + 4 : end]
        pos = end
    return fields


def parse_emvco(payload: str) -> dict[str, str]:
    if not payload.isascii():
        raise InvalidQRPayload("payload contains non-ASCII characters")
    fields = parse_tlv(payload)
    tags = list(fields)
    if not tags or tags[0] != "00":
        raise InvalidQRPayload("tag 00 must come first")
    if tags[-1] != "63" or len(fields["63"]) != 4:
        raise InvalidQRPayload("tag 63 (CRC, 4 chars) must come last")
    # Strict uppercase match: the spec mandates uppercase, and accepting "70fa" would make
    # a one-character change go unnoticed.
    if fields["63"] != crc16_ccitt_false(payload[:-4]):
        raise InvalidQRPayload("CRC mismatch")
    return fields


def parse_vietqr(payload: str) -> VietQRPayload:
    fields = parse_emvco(payload)
    merchant = parse_tlv(fields.get("38", ""))
    if merchant.get("00") != NAPAS_GUID:
        raise InvalidQRPayload(f"NAPAS GUID {NAPAS_GUID} not found in tag 38")
    if fields.get("53", CURRENCY_VND) != CURRENCY_VND:
        raise InvalidQRPayload(f"currency {fields['53']} is not VND ({CURRENCY_VND})")
    beneficiary = parse_tlv(merchant.get("01", ""))
    amount_text = fields.get("54")
    if amount_text is not None and not _AMOUNT_RE.fullmatch(amount_text):
        raise InvalidQRPayload(f"amount {amount_text!r} is not a whole positive VND value")
    additional = parse_tlv(fields.get("62", ""))
    try:
        return VietQRPayload(
            bank_bin=beneficiary.get("00", ""),
            account_number=beneficiary.get("01", ""),
            amount=None if amount_text is None else int(amount_text),
            purpose=additional.get("08"),
            service_code=merchant.get("02", ""),
            merchant_name=fields.get("59"),
            city=fields.get("60"),
            bill_number=additional.get("01"),
            reference_label=additional.get("05"),
        )
    except InvalidQRField as exc:
        # Callers of a parser expect one error type for "this QR is unusable".
        raise InvalidQRPayload(f"invalid VietQR field {exc}") from exc
