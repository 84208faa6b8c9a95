"""MoMo's wire protocol, API v2 (PROVIDERS.md, "MoMo e-wallet API v2"): paths, the fields each message signs,
resultCode meanings and the answer shapes. Shared by the adapter and the sandbox simulator, so a change here is
a change of protocol for both sides."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from gateway.adapters.base import (
    ProviderStatus,
)

CREATE_PATH = "/v2/gateway/api/create"
QUERY_PATH = "/v2/gateway/api/query"
REFUND_PATH = "/v2/gateway/api/refund"
REFUND_QUERY_PATH = "/v2/gateway/api/refund/query"

# The fields each message signs, a-z. `accessKey` is signed but never sent.
CREATE_SIGNED = (
    "accessKey",
    "amount",
    "extraData",
    "ipnUrl",
    "orderId",
    "orderInfo",
    "partnerCode",
    "redirectUrl",
    "requestId",
    "requestType",
)
RESULT_SIGNED = (  # the IPN and the browser return
    "accessKey",
    "amount",
    "extraData",
    "message",
    "orderId",
    "orderInfo",
    "orderType",
    "partnerCode",
    "payType",
    "requestId",
    "responseTime",
    "resultCode",
    "transId",
)
QUERY_SIGNED = ("accessKey", "orderId", "partnerCode", "requestId")  # also the refund query
REFUND_SIGNED = ("accessKey", "amount", "description", "orderId", "partnerCode", "requestId", "transId")

REQUEST_TYPE = "captureWallet"
LANG = "vi"

# resultCode meanings (PROVIDERS.md). 9000 is "authorized", which is final for a one-step captureWallet.
PAID_CODES = frozenset({0, 9000})
AWAITING_PAYER_CODE = 1000
PROCESSING_CODES = frozenset({7000, 7002})
PENDING_CODES = frozenset({AWAITING_PAYER_CODE, *PROCESSING_CODES})
DECLINE_CODES: Mapping[int, str] = {
    1001: "insufficient_funds",
    1005: "expired",
    1006: "payer_declined",
    1017: "canceled_by_merchant",
}
ORDER_NOT_FOUND_CODE = 42
MAINTENANCE_CODE = 10
# Answers to create after which the order may or may not exist: 40/41 duplicate requestId/orderId (a retry
# of a payment whose first create got through), 43 a similar transaction in progress, 99 unknown, 7000/7002
# still processing. The janitor asks the query API.
CREATE_UNKNOWN_CODES = frozenset({40, 41, 43, 99, *PROCESSING_CODES})
REFUND_UNKNOWN_CODES = frozenset({40, 41, 43, 99})


def _raw(value: object) -> str:
    return "" if value is None else str(value)


def momo_signature(secret_key: str, fields: Mapping[str, object]) -> str:
    """Hex HMAC-SHA256 of `key=value` pairs, keys a-z, raw (not URL-encoded) values, joined by `&`."""
    message = "&".join(f"{key}={_raw(fields[key])}" for key in sorted(fields))
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_fields(secret_key: str, access_key: str, values: Mapping[str, object], names: Sequence[str]) -> str:
    """The signature of a message: `names` taken from `values`, with the account's access key."""
    return momo_signature(secret_key, {name: access_key if name == "accessKey" else values.get(name) for name in names})


def signature_matches(secret_key: str, access_key: str, values: Mapping[str, object], names: Sequence[str]) -> bool:
    """Whether `values["signature"]` signs `names` (each of which must be present, accessKey aside)."""
    signature = values.get("signature")
    if not isinstance(signature, str) or any(n not in values for n in names if n != "accessKey"):
        return False
    expected = sign_fields(secret_key, access_key, values, names)
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def payment_failure_code(result_code: int) -> str:
    return DECLINE_CODES.get(result_code, f"momo_{result_code}")


def payment_status_of(result_code: int) -> ProviderStatus:
    """What a resultCode about a payment (IPN, return, query) says of it."""
    if result_code in PAID_CODES:
        return ProviderStatus.succeeded
    if result_code == AWAITING_PAYER_CODE:
        return ProviderStatus.requires_action
    if result_code in PROCESSING_CODES:
        return ProviderStatus.processing
    return ProviderStatus.failed


class Answer(BaseModel):
    """The part of every MoMo API answer the adapter reads."""

    model_config = ConfigDict(extra="ignore")

    resultCode: int
    message: str = ""


class CreateAnswer(Answer):
    orderId: str | None = None
    payUrl: str | None = None
    deeplink: str | None = None
    qrCodeUrl: str | None = None


class QueryAnswer(Answer):
    amount: int = 0
    transId: int = 0


class RefundAnswer(Answer):
    transId: int = 0


class RefundEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    orderId: str
    amount: int = 0
    resultCode: int
    transId: int = 0


class RefundQueryAnswer(Answer):
    refundTrans: list[RefundEntry] = Field(default_factory=list)


class PaymentResult(BaseModel):
    """A signed payment result: the IPN body, or the browser return's query."""

    model_config = ConfigDict(extra="ignore")

    partnerCode: str
    orderId: str
    requestId: str
    amount: int
    orderInfo: str
    orderType: str
    # MoMo's numbers are 64-bit; anything longer is no MoMo number (and no column would hold it).
    transId: int = Field(ge=0, lt=2**63)
    resultCode: int = Field(ge=-(2**31), lt=2**31)
    message: str
    payType: str
    responseTime: int
    extraData: str
