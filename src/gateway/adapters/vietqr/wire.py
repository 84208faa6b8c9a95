"""The bank's wire protocol for VietQR transfers (PROVIDERS.md, "VietQR"): the payment code a transfer's
content carries, the signed credit/debit notification and its shape. Shared by the adapter and the sandbox bank."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

TIMESTAMP_HEADER = "x-bank-timestamp"
SIGNATURE_HEADER = "x-bank-signature"
SIGNATURE_TOLERANCE_SECONDS = 300

# Payment codes: a fixed prefix, 12 Crockford base32 characters (60 bits) and a check character. The
# alphabet has no I, L, O or U, so nothing a bank's OCR-happy formatting does is ambiguous.
CODE_PREFIX = "GW"
CUSTOMER_CODE_PREFIX = "KH"  # khách hàng: a customer's code, printed once on every bill
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_BODY = 12
CODE_LENGTH = len(CODE_PREFIX) + _CODE_BODY + 1
_NOT_ALNUM = re.compile(r"[^0-9A-Z]")


_CODE_VALUE = {c: i for i, c in enumerate(_CODE_ALPHABET)}
# A code's body two characters at a time (10 bits of the digest: the low 5 are the first character), and what
# each pair adds to the check sum at each of the body's 6 pair positions: a bulk import makes 10,000 codes at once.
_PAIRS = [_CODE_ALPHABET[n & 31] + _CODE_ALPHABET[n >> 5] for n in range(1024)]
_PAIR_WEIGHTS = [[(2 * k + 1) * (n & 31) + (2 * k + 2) * (n >> 5) for n in range(1024)] for k in range(_CODE_BODY // 2)]


def _check_char(body: str) -> str:
    total = sum(i * _CODE_VALUE[c] for i, c in enumerate(body, 1))
    return _CODE_ALPHABET[total % 31]


def payment_code(payment_id: str, prefix: str = CODE_PREFIX) -> str:
    """The short code the payer's bank copies into the transfer content.

    Derived from the payment id, so starting the same payment again yields the same QR. A customer's code (the
    static QR on every paper bill) has its own prefix, derived the same way from the customer's id.
    """
    digest = int.from_bytes(hashlib.sha256(payment_id.encode()).digest()[:8], "big")
    pairs = [(digest >> (10 * k)) & 1023 for k in range(_CODE_BODY // 2)]
    check = sum(weights[pair] for weights, pair in zip(_PAIR_WEIGHTS, pairs, strict=True)) % 31
    return prefix + "".join([_PAIRS[pair] for pair in pairs]) + _CODE_ALPHABET[check]


def customer_payment_code(customer_id: str) -> str:
    return payment_code(customer_id, CUSTOMER_CODE_PREFIX)


def find_payment_codes(content: str) -> list[str]:
    """Every well-formed payment or customer code in a transfer's free text, in the order they appear.

    Banks upper- or lower-case the text, insert spaces or dots, and add prefixes such as "IBFT" or the
    payer's name: compare on letters and digits only, and let the check character reject chance matches.
    """
    text = _NOT_ALNUM.sub("", content.upper())
    found: list[tuple[int, str]] = []
    for prefix in (CODE_PREFIX, CUSTOMER_CODE_PREFIX):
        start = text.find(prefix)
        while start != -1:
            candidate = text[start : start + CODE_LENGTH]
            body = candidate[len(prefix) : -1]
            if (
                len(candidate) == CODE_LENGTH
                and all(c in _CODE_ALPHABET for c in body)
                and _check_char(body) == candidate[-1]
                and candidate not in (code for _, code in found)
            ):
                found.append((start, candidate))
            start = text.find(prefix, start + 1)
    return [code for _, code in sorted(found)]


def sign_bank_message(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def account_key_of(bank_bin: str, account_number: str) -> str:
    return f"{bank_bin}:{account_number}"


class BankNotification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transaction_id: str = Field(min_length=1, max_length=64)
    bank_bin: str
    account_number: str
    direction: Literal["credit", "debit"]
    # Any integer: one no payment can carry is answered as an invalid amount by the core, not as a forgery.
    amount: StrictInt
    currency: str = Field(default="VND", pattern=r"^[A-Z]{3}$")
    content: str = ""
    counter_bank_bin: str | None = None
    counter_account_number: str | None = None
    counter_account_name: str | None = None
    transaction_time: datetime | None = None
    # This project's extensions of the model: the refund a debit settles, and a rejected transfer.
    request_id: str | None = None
    status: Literal["completed", "failed"] = "completed"
    failure_reason: str | None = None


# The bank's transfer API (refunds): POST {bank_api}/transfers, idempotent on request_id.
class TransferRequest(BaseModel):
    """A transfer order, as the gateway sends it and the bank checks it."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64)
    to_bank_bin: str = Field(pattern=r"^[0-9]{6}$")
    to_account_number: str = Field(min_length=1, max_length=19)
    amount: StrictInt = Field(gt=0)
    content: str = Field(default="", max_length=210)


class TransferAnswer(BaseModel):
    """The bank's answer about a transfer order (when made, and when asked about it)."""

    model_config = ConfigDict(extra="ignore")

    transfer_id: str | int | None = None
    status: str | None = None  # pending | completed | failed


class BankRefusal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    error: str | None = None
    message: str | None = None
