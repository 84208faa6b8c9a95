from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictInt

from gateway.domain import MAX_AMOUNT, AmountRule, CollectionStatus, PartnerChannel
from gateway.schemas import StrictModel

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: Any) -> Any:
    # pydantic also takes unix timestamps and date-times without an offset: a partner's paid_at is RFC 3339.
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-22T10:00:00Z")


def _distinct(numbers: list[str]) -> list[str]:
    if len(set(numbers)) != len(numbers):
        raise ValueError("each bill number may be named once")
    return numbers


BillerCode = Annotated[str, Field(min_length=1, max_length=32, description="The biller (merchant) as partners name it")]
CustomerCode = Annotated[str, Field(min_length=1, max_length=32, description="The biller's customer code, any case")]
PartnerTransactionId = Annotated[
    str, Field(min_length=1, max_length=64, description="The partner's own id of the payment, unique per partner")
]
BillNumber = Annotated[str, Field(min_length=1, max_length=64)]


class InquiryRequest(StrictModel):
    biller_code: BillerCode
    customer_code: CustomerCode


class Payer(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    phone: str | None = Field(default=None, min_length=1, max_length=32)


class CollectionCreate(StrictModel):
    biller_code: BillerCode
    customer_code: CustomerCode
    bill_numbers: Annotated[list[BillNumber], AfterValidator(_distinct)] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The bills paid, in the order the funds go to them (each up to what remains; the rest becomes "
        "the customer's balance). Absent: the customer's payable bills, oldest due date first",
    )
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="In the currency's minor unit (VND: whole đồng)")
    partner_transaction_id: PartnerTransactionId
    paid_at: Annotated[datetime, BeforeValidator(_rfc3339_only)] = Field(
        description="When the payer paid the partner (RFC 3339)"
    )
    channel: PartnerChannel = Field(description="`counter` and `agent` are counter payments (§13), the rest online")
    payer: Payer | None = None


class ReversalCreate(StrictModel):
    partner_transaction_id: PartnerTransactionId
    reason: str = Field(min_length=1, max_length=255)


class InquiryCustomer(BaseModel):
    code: str
    name: str = Field(
        description="Masked (`NGUYEN V** A`) unless the partner is a telco or platform allowed to show it"
    )


class InquiryBill(BaseModel):
    number: str
    period: str | None
    due_date: str | None
    amount_remaining: int
    amount_rule: AmountRule


class BillInquiry(BaseModel):
    """What a customer owes, as a partner shows it before taking the money (§12)."""

    object: Literal["bill_inquiry"] = "bill_inquiry"
    customer: InquiryCustomer
    bills: list[InquiryBill] = Field(description="Payable bills, oldest due date first (the order rule 2 pays them)")
    total_due: int
    balance: int = Field(description="The customer's credit, which its next bills take")


class CollectionAllocation(BaseModel):
    bill_number: str
    amount: int


class CollectionObject(BaseModel):
    """A partner's payment as the gateway accepted it (§12)."""

    id: str
    object: Literal["collection"] = "collection"
    livemode: bool
    status: CollectionStatus
    partner_id: str
    partner_transaction_id: str
    biller_code: str
    customer_code: str
    payment_id: str
    amount: int
    currency: str
    channel: PartnerChannel
    allocations: list[CollectionAllocation] = Field(description="What each bill received, as accepted")
    balance_added: int = Field(description="What became the customer's credit (rules 2-3 of §11)")
    receipt_number: str | None = Field(description="The collection's one receipt, when the merchant issues them")
    paid_at: str
    reversed_at: str | None
    reversal_reason: str | None
    created_at: str
