"""The telco mobile-money protocol (PROVIDERS.md, "Telco mobile money"), shared by the adapter and the sandbox telco.

Viettel's merchant gateway v2.0 is the model; VNPT Money and MobiFone Money publish nothing, so they are the same
protocol with their own profile: URLs, the check_sum's encoding, the USSD service code and the result-code table.
A difference between telcos belongs in `TelcoProfile`, never in a copy of code.

Every message carries `check_sum = encode(HMAC-SHA1(hash_key, access_code + v1 + v2 + ...))` over the values of
the fields its row in `SIGNED` names, in that order (a field absent from the message is left out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

VERSION = "2.0"
PAYMENT_COMMAND = "PAYMENT"
INQUIRY_COMMAND = "TRANS_INQUIRY"
REFUND_COMMAND = "REFUND_PAYMENT"

# The fields each message's check_sum covers, after access_code (PROVIDERS.md's table).
PAYMENT_REDIRECT_SIGNED = ("billcode", "command", "merchant_code", "order_id", "trans_amount", "version")
VERIFY_SIGNED = ("billcode", "merchant_code", "order_id", "trans_amount")  # trans_amount only when sent
VERIFY_ANSWER_SIGNED = ("billcode", "error_code", "merchant_code", "order_id", "trans_amount")
RESULT_SIGNED = (
    "billcode",
    "cust_msisdn",
    "error_code",
    "merchant_code",
    "order_id",
    "payment_status",
    "trans_amount",
    "vt_transaction_id",
)
RESULT_ANSWER_SIGNED = ("error_code", "merchant_code", "order_id")
INQUIRY_SIGNED = ("cmd", "merchant_code", "order_id", "version")
REFUND_SIGNED = ("cmd", "merchant_code", "order_id", "originalRequestId", "refundType", "trans_amount", "version")

# Modelled (PROVIDERS.md gives the requests above, not their answers): the telco API's answers are JSON, signed over
# these fields after access_code.
INQUIRY_ANSWER_SIGNED = (
    "error_code",
    "merchant_code",
    "order_id",
    "payment_status",
    "trans_amount",
    "vt_transaction_id",
)
REFUND_ANSWER_SIGNED = ("error_code", "merchant_code", "order_id", "refund_transaction_id")
# Modelled: the USSD push to a feature phone (the telco prompts the phone for its PIN), form-encoded to `api_path`
# like the other commands; answered {"error_code", "merchant_code", "order_id", "check_sum"} (PUSH_ANSWER_SIGNED).
PUSH_COMMAND = "USSD_PUSH"
PUSH_SIGNED = ("billcode", "cmd", "merchant_code", "msisdn", "order_id", "trans_amount", "version")
PUSH_ANSWER_SIGNED = ("error_code", "merchant_code", "order_id")
# Modelled, sandbox only: the sandbox telco's USSD menu lists the gateway's billers. GET
# {gateway}/v1/providers/{provider}/billers?cmd=BILLER_LIST&version=2.0&check_sum=... (signed with the sandbox's
# keys over cmd, version) answers {"billers": [{"biller_code", "name"}]}: the merchants that have a biller_code.
BILLERS_COMMAND = "BILLER_LIST"
BILLERS_SIGNED = ("cmd", "version")
# In test mode a biller's merchant_code at the sandbox telco is its biller_code: the telco's calls for a payment its
# subscriber started name the biller that way (signed with the sandbox's shared keys). Gateway-started test payments
# use the sandbox account's own merchant_code.

# Refund answers' refundType (modelled): the whole amount received, or a part of it.
REFUND_FULL = "0"
REFUND_PARTIAL = "1"

# Verify answers.
VERIFY_OPEN = "00"  # the order is open: its amount is in trans_amount
VERIFY_NOT_PAYABLE = "01"  # unknown or not payable
VERIFY_BAD_CHECKSUM = "02"
VERIFY_OTHER = "03"
# Result answers: stored, or not (the telco sends it again).
RESULT_STORED = "00"
RESULT_NOT_STORED = "01"
# payment_status of a result.
PAID = "1"
NOT_PAID = "0"
SUCCESS = "00"

Encoding = Literal["base64", "hex"]


def check_sum(hash_key: str, access_code: str, values: Sequence[str], encoding: Encoding = "base64") -> str:
    digest = hmac.new(hash_key.encode(), (access_code + "".join(values)).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def signed_values(fields: Mapping[str, object], names: Sequence[str]) -> list[str]:
    """The values `names` lists, in order, of the fields present (a verify without trans_amount signs without it)."""
    return [str(fields[name]) for name in names if name in fields and fields[name] is not None]


def sign(
    hash_key: str, access_code: str, fields: Mapping[str, object], names: Sequence[str], encoding: Encoding
) -> str:
    return check_sum(hash_key, access_code, signed_values(fields, names), encoding)


def check_sum_matches(
    hash_key: str,
    access_code: str,
    fields: Mapping[str, object],
    names: Sequence[str],
    encoding: Encoding,
) -> bool:
    given = fields.get("check_sum")
    if not isinstance(given, str) or not given:
        return False
    expected = sign(hash_key, access_code, fields, names, encoding)
    if encoding == "hex":
        given = given.lower()
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class TelcoProfile:
    """Everything that differs between telcos. The adapter and the sandbox read it; neither branches on a name."""

    provider: str  # the gateway's provider name
    display_name: str
    encoding: Encoding
    # On the telco's API base URL (the merchant's `api_base_url`, or the sandbox's).
    payment_page_path: str
    api_path: str  # TRANS_INQUIRY and REFUND_PAYMENT, form-encoded
    ussd_service_code: str
    # The telco's result codes → the gateway's failure codes; a code not listed maps to `<provider>_<code>`.
    failure_codes: Mapping[str, str] = field(default_factory=dict)
    # The code the telco gives when the monthly limit (10,000,000 VND, Decision 316/QĐ-TTg) stops a payment.
    limit_code: str = "17"
    # Codes meaning the payer has not finished (a status query keeps waiting).
    pending_codes: frozenset[str] = frozenset()
    # Codes of a status query meaning the telco has no such order.
    unknown_order_codes: frozenset[str] = frozenset()
    # How the telco's transaction ids begin (`vt_transaction_id`, `refund_transaction_id`): VT123456789.
    transaction_prefix: str = "VT"
    # The sandbox account's merchant_code is "GW" + this (gateway-started test payments).
    sandbox_code: str = "SANDBOX"
    # Answers meaning the telco refused the request itself (its signature, format), not the payment: technical.
    request_error_codes: frozenset[str] = frozenset()

    @property
    def sandbox_merchant_code(self) -> str:
        return f"GW{self.sandbox_code}"

    def failure_code(self, code: str) -> str:
        if code == self.limit_code:
            return "limit_exceeded"
        return self.failure_codes.get(code, f"{self.provider}_{code}")


_VIETTEL_CODES = {
    "16": "insufficient_funds",
    "21": "wrong_pin",
    "685": "wrong_pin",
    "22": "wrong_otp",
    "V01": "invalid_signature",
    "V03": "otp_expired",
    "V06": "payer_canceled",
    "W04": "timeout",
    "99": "declined",
}

VIETTEL_MONEY = TelcoProfile(
    provider="viettel_money",
    display_name="Viettel Money",
    encoding="base64",
    payment_page_path="/PaymentGateway/payment",
    api_path="/PaymentAPI/webresources/postData",
    ussd_service_code="*998#",
    failure_codes=_VIETTEL_CODES,
    limit_code="17",
    pending_codes=frozenset({"W03"}),
    unknown_order_codes=frozenset({"V04"}),
    sandbox_code="VTMSANDBOX",
    request_error_codes=frozenset({"V01"}),
)
# Modelled: VNPT Money and MobiFone Money publish no merchant protocol. Same messages, own encoding and codes.
VNPT_MONEY = TelcoProfile(
    provider="vnpt_money",
    display_name="VNPT Money",
    encoding="hex",
    payment_page_path="/vnptpay/payment",
    api_path="/vnptpay/api/transaction",
    ussd_service_code="*388#",
    failure_codes={
        "05": "insufficient_funds",
        "06": "wrong_pin",
        "07": "payer_canceled",
        "08": "timeout",
        "09": "invalid_signature",
        "99": "declined",
    },
    limit_code="10",
    pending_codes=frozenset({"02"}),
    unknown_order_codes=frozenset({"04"}),
    transaction_prefix="VNPT",
    sandbox_code="VNPTSANDBOX",
    request_error_codes=frozenset({"09"}),
)
MOBIFONE_MONEY = TelcoProfile(
    provider="mobifone_money",
    display_name="MobiFone Money",
    encoding="base64",
    payment_page_path="/mobimoney/checkout",
    api_path="/mobimoney/api",
    ussd_service_code="*566#",
    failure_codes={
        "M16": "insufficient_funds",
        "M21": "wrong_pin",
        "M06": "payer_canceled",
        "M04": "timeout",
        "M01": "invalid_signature",
        "M99": "declined",
    },
    limit_code="M17",
    pending_codes=frozenset({"M03"}),
    unknown_order_codes=frozenset({"M05"}),
    transaction_prefix="MF",
    sandbox_code="MFMSANDBOX",
    request_error_codes=frozenset({"M01"}),
)

PROFILES: tuple[TelcoProfile, ...] = (VIETTEL_MONEY, VNPT_MONEY, MOBIFONE_MONEY)

# Decision 316/QĐ-TTg: at most this much per account per month.
MONTHLY_LIMIT = 10_000_000


def normalise_msisdn(phone: str) -> str | None:
    """A Vietnamese mobile number as the telcos write it, 84xxxxxxxxx; None when it is none."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0") and len(digits) == 10:
        digits = "84" + digits[1:]
    return digits if digits.startswith("84") and len(digits) == 11 else None
