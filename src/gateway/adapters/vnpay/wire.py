"""VNPAY's wire protocol, version 2.1.0 (PROVIDERS.md, "VNPAY payment gateway"): field names, the signing of
payment URLs, IPNs and returns (HMAC-SHA512 over the sorted query) and of the merchant API (|-joined values).
Shared by the adapter and the sandbox simulator, so a change here is a change of protocol for both sides.

Amounts: VNPAY carries VND x 100 on the wire. Times: every VNPAY date is yyyyMMddHHmmss in GMT+7.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

from pydantic import BaseModel, ConfigDict

from gateway.clock import VIETNAM_TIME

VERSION = "2.1.0"
CURRENCY = "VND"
DATE_FORMAT = "%Y%m%d%H%M%S"
PAY_PATH = "/paymentv2/vpcpay.html"
API_PATH = "/merchant_webapi/api/transaction"
IP_ADDR = "127.0.0.1"
CREATED_BY = "gateway"
TXN_REF_MAX = 100
ORDER_INFO_MAX = 255
REQUEST_ID_MAX = 32
# Bounds of fields VNPAY sends that the gateway stores (its numbers are ~8-14 digits, its codes 2).
TRANSACTION_NO_MAX = 64
CODE_MAX = 8

HASH_FIELD = "vnp_SecureHash"
HASH_TYPE_FIELD = "vnp_SecureHashType"

# The |-joined checksum orders of the merchant API (PROVIDERS.md for the requests; the responses follow
# VNPAY's published merchant API documentation).
QUERYDR_REQUEST_FIELDS: tuple[str, ...] = (
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_TransactionDate",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
)
REFUND_REQUEST_FIELDS: tuple[str, ...] = (
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TransactionType",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_TransactionNo",
    "vnp_TransactionDate",
    "vnp_CreateBy",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
)
REFUND_RESPONSE_FIELDS: tuple[str, ...] = (
    "vnp_ResponseId",
    "vnp_Command",
    "vnp_ResponseCode",
    "vnp_Message",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_PayDate",
    "vnp_TransactionNo",
    "vnp_TransactionType",
    "vnp_TransactionStatus",
    "vnp_OrderInfo",
)
QUERYDR_RESPONSE_FIELDS: tuple[str, ...] = (*REFUND_RESPONSE_FIELDS, "vnp_PromotionCode", "vnp_PromotionAmount")

TRANSACTION_TYPE_FULL = "02"
TRANSACTION_TYPE_PARTIAL = "03"


def hash_data(params: Mapping[str, str]) -> str:
    """The string VNPAY signs: vnp_* fields but the hash itself, empty values dropped, sorted by name,
    `name=quote_plus(value)` joined with `&`. The same string is the payment URL's query."""
    fields = sorted(
        (name, value)
        for name, value in params.items()
        if name.startswith("vnp_") and name not in (HASH_FIELD, HASH_TYPE_FIELD) and value != ""
    )
    return "&".join(f"{name}={quote_plus(value)}" for name, value in fields)


def hmac_sha512(secret: str, data: str) -> str:
    return hmac.new(secret.encode("utf-8"), data.encode("utf-8"), hashlib.sha512).hexdigest()


def secure_hash(secret: str, params: Mapping[str, str]) -> str:
    """vnp_SecureHash of a payment URL, IPN or browser return: hex HMAC-SHA512 of `hash_data`."""
    return hmac_sha512(secret, hash_data(params))


def pipe_data(fields: Sequence[str], values: Mapping[str, Any]) -> str:
    """The merchant API's checksum input: the values of `fields`, in that order, joined with `|`."""
    return "|".join("" if values.get(name) is None else str(values.get(name)) for name in fields)


def pipe_hash(secret: str, fields: Sequence[str], values: Mapping[str, Any]) -> str:
    return hmac_sha512(secret, pipe_data(fields, values))


def hashes_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.strip().lower().encode("utf-8"))


def vnpay_date(moment: datetime) -> str:
    """yyyyMMddHHmmss in GMT+7 (a naive datetime is taken as UTC, as the database stores them)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM_TIME).strftime(DATE_FORMAT)


def parse_vnpay_date(value: str) -> datetime:
    return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=VIETNAM_TIME)


def txn_ref_of(payment_id: str) -> str:
    return payment_id.removeprefix("pay_")


def request_id_of(refund_id: str) -> str:
    return refund_id.removeprefix("re_")


def vnd_from_wire(raw: object) -> int | None:
    """vnp_Amount (VND x 100) -> VND; None unless a non-negative whole multiple of 100."""
    text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value // 100 if value % 100 == 0 else None


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


class MerchantApiAnswer(BaseModel):
    """An answer of the merchant API (querydr, refund), its values as strings, once its checksum is verified."""

    model_config = ConfigDict(extra="ignore")

    vnp_ResponseCode: str = ""
    vnp_Message: str = ""
    vnp_TxnRef: str | None = None
    vnp_Amount: str | None = None
    vnp_TransactionNo: str = ""
    vnp_TransactionStatus: str = ""
