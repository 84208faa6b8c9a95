from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, ValidationInfo, field_validator

from gateway.customers.schemas import CustomerCode
from gateway.domain import MAX_AMOUNT, AmountRule, BillStatus
from gateway.payments.schemas import check_currency
from gateway.schemas import IsoDate, Metadata, StrictModel

Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="In the currency's minor unit (VND: whole đồng)")]
BillNumber = Annotated[
    str, Field(min_length=1, max_length=64, description="The biller's own bill, invoice or dossier number")
]


CustomerId = Annotated[str, Field(min_length=1, max_length=40)]


class CustomerByCode(StrictModel):
    code: CustomerCode


class BillLine(StrictModel):
    description: str = Field(min_length=1, max_length=255)
    amount: Amount


class BillCreate(StrictModel):
    customer: CustomerId | CustomerByCode = Field(
        description='A customer id (`cus_…`), or `{"code": "..."}` of an existing customer (any case)'
    )
    number: BillNumber
    amount: Amount
    currency: str = Field(default="VND", description="ISO 4217; the customer's currency (VND)")
    description: str | None = Field(default=None, max_length=255)
    period: str | None = Field(default=None, min_length=1, max_length=32, examples=["2026-11"])
    due_date: IsoDate | None = None
    lines: list[BillLine] | None = Field(default=None, min_length=1, max_length=100, description="Summing to amount")
    amount_rule: AmountRule = AmountRule.partial
    metadata: Metadata = Field(default_factory=dict)

    _currency = field_validator("currency")(check_currency)

    @field_validator("lines", mode="after")
    @classmethod
    def _lines_sum_to_amount(cls, lines: list[BillLine] | None, info: ValidationInfo) -> list[BillLine] | None:
        amount = info.data.get("amount")
        if lines is not None and amount is not None and sum(line.amount for line in lines) != amount:
            raise ValueError(f"the lines' amounts sum to {sum(line.amount for line in lines)}, not amount {amount}")
        return lines


class BillLineObject(BaseModel):
    description: str
    amount: int


class AllocationObject(BaseModel):
    payment_id: str | None = Field(description="The payment whose funds moved (a refund's take-back is negative)")
    amount: int
    created_at: str


class BillObject(BaseModel):
    id: str
    object: Literal["bill"] = "bill"
    livemode: bool
    customer: str = Field(description="The customer's id")
    number: str
    amount: int
    currency: str
    description: str | None
    period: str | None
    due_date: str | None
    lines: list[BillLineObject] | None
    amount_rule: AmountRule
    metadata: dict[str, str]
    status: BillStatus
    amount_paid: int
    amount_remaining: int
    paid_at: str | None
    allocations: list[AllocationObject]
    receipts: list[str] = Field(description="Ids of the receipts of the payments that paid this bill")
    created_at: str
    updated_at: str
