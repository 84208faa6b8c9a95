"""The national public-service payment platform's protocol (PROVIDERS.md, "National public-service payment
platform"), shared by the adapter and the sandbox platform.

Every message is JSON and carries `MaXacThuc` = hex SHA-256 of the values its row below names, in that order,
joined by `|`, then `|` + hash_key: a plain hash with the key appended (the platform's own scheme), not an HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

from gateway.clock import vietnam_time

VERSION = "1.0.0"
CURRENCY_VND = "704"  # MaTienTe: ISO 4217 numeric
# LoaiBanTin: the message type.
INIT_MESSAGE = "1"
RESULT_MESSAGE = "2"
# Modelled: PROVIDERS.md gives no status message; this project's is type 3 (STATUS_SIGNED below).
STATUS_MESSAGE = "3"
# MaDichVu of ThongTinBienLai: a fine, or a fee or charge of an administrative procedure.
SERVICE_FINE = "1"
SERVICE_FEE = "2"
# LoaiPhiLePhi of each PhiLePhi line.
FEE_KINDS = {"fee": "1", "charge": "2"}

INIT_SIGNED = (
    "LoaiBanTin",
    "PhienBan",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "LoaiHinhThanhToan",
    "MaKenhThanhToan",
    "MaThietBi",
    "NgonNgu",
    "MaTienTe",
    "MaNganHang",
    "ThongTinGiaoDich",
    "ThoiGianGD",
    "Ip",
)
RESULT_SIGNED = (
    "LoaiBanTin",
    "MaLoi",
    "MaDoiTac",
    "MaThamChieu",
    "SoTien",
    "MaTienTe",
    "MaGiaoDich",
    "MaNganHang",
    "ThoiGianGD",
    "ThongTinGiaoDich",
)
RESULT_ANSWER_SIGNED = ("MaLoi", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
INQUIRY_SIGNED = ("MaHoSo", "MaDoiTac", "ThoiGianGD")
# Modelled (PROVIDERS.md gives the inquiry answer's fields, not its signature): the gateway signs its answer so the
# platform can trust the amount it shows the citizen.
INQUIRY_ANSWER_SIGNED = ("error_code", "MaHoSo", "MaDoiTac", "MaThamChieu", "SoTien")
# Modelled: the status query (gateway → platform) and its answer, which carries the result's ten values signed as
# a result is (RESULT_SIGNED), with LoaiBanTin 3 and the answer's own MaLoi.
STATUS_SIGNED = ("LoaiBanTin", "MaDoiTac", "MaThamChieu", "ThoiGianGD")
# The Init answer (modelled beyond MaLoi and UrlThanhToan): signed over these.
INIT_ANSWER_SIGNED = ("MaLoi", "MaDoiTac", "MaThamChieu", "UrlThanhToan")

# Where the platform's API answers, on its base URL (the merchant's api_base_url, or the sandbox's).
INIT_PATH = "/api/thanh-toan/khoi-tao"
STATUS_PATH = "/api/thanh-toan/truy-van"

# MaLoi. PROVIDERS.md gives 00 (success) and, for the result answer, 99 (not stored); the rest are modelled.
SUCCESS = "00"
BAD_SIGNATURE = "01"
INVALID_REQUEST = "02"
PAYER_CANCELED = "03"
BANK_DECLINED = "04"
EXPIRED = "05"
PENDING = "09"  # status only: the citizen has not paid yet
UNKNOWN_REFERENCE = "10"  # status only: no transaction of that MaThamChieu
# The codes that end a payment: canceled, declined by the bank, expired. Any other code is not taken as a failure.
TERMINAL_FAILURES = frozenset({PAYER_CANCELED, BANK_DECLINED, EXPIRED})
NOT_STORED = "99"
FAILURE_CODES = {
    PAYER_CANCELED: "payer_canceled",
    BANK_DECLINED: "declined",
    EXPIRED: "expired",
}
# Inquiry answers' error_code.
INQUIRY_PAYABLE = 1
INQUIRY_NOTHING_DUE = 0
INQUIRY_ERROR = -1

REFERENCE_MAX = 20  # MaThamChieu


def failure_code(code: str) -> str:
    return FAILURE_CODES.get(code, f"national_platform_{code}")


def signature(values: Sequence[str], hash_key: str) -> str:
    """Hex SHA-256 of the values then the key, joined by `|`."""
    return hashlib.sha256("|".join([*values, hash_key]).encode()).hexdigest()


def signed_values(fields: Mapping[str, object], names: Sequence[str]) -> list[str]:
    """Every named value in order, an absent one as empty (the platform signs empty fields as empty)."""
    return ["" if fields.get(name) is None else str(fields[name]) for name in names]


def sign(fields: Mapping[str, object], names: Sequence[str], hash_key: str) -> str:
    return signature(signed_values(fields, names), hash_key)


def signature_matches(fields: Mapping[str, object], names: Sequence[str], hash_key: str) -> bool:
    given = fields.get("MaXacThuc")
    if not isinstance(given, str) or not given or not hash_key:
        return False
    return hmac.compare_digest(sign(fields, names, hash_key).encode(), given.lower().encode())


def timestamp(moment: datetime) -> str:
    """ThoiGianGD: yyyyMMddHHmmss in Vietnam time."""
    return vietnam_time(moment).strftime("%Y%m%d%H%M%S")


def reference_for(payment_id: str) -> str:
    """MaThamChieu of a payment: derived from its id alone, so a retried start names the same one; 20 characters
    (72 bits of the id's hash), never a cut of the dossier code, so two dossiers can never share one."""
    return "GW" + hashlib.sha256(payment_id.encode()).hexdigest()[:18].upper()
