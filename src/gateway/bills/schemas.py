from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

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


# --- POST /v1/bills/import ----------------------------------------------------------------------------------------


class BillImportLine(StrictModel):
    description: str = Field(min_length=1, max_length=255)
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT)


class BillImportRow(StrictModel):
    """One bill of an import: the fields of `POST /v1/bills`, its customer named by id, by `{"code"}`, or by
    `customer_code` (created with `customer_name` when no customer has that code)."""

    number: str = Field(min_length=1, max_length=64, description="Unique per merchant and mode")
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="In the currency's minor unit (VND: whole đồng)")
    currency: str = Field(default="VND", description="ISO 4217")
    customer: str | CustomerByCode | None = Field(
        default=None, description='A customer id, or {"code"} of an existing customer'
    )
    customer_code: CustomerCode | None = None
    customer_name: str | None = Field(
        default=None, min_length=1, max_length=120, description="Creates the customer when no customer has the code"
    )
    description: str | None = Field(default=None, max_length=255)
    period: str | None = Field(default=None, min_length=1, max_length=32, description="e.g. 2026-11")
    due_date: IsoDate | None = None
    lines: list[BillImportLine] | None = Field(default=None, max_length=100)
    amount_rule: AmountRule = AmountRule.partial
    metadata: Metadata = Field(default_factory=dict)

    _currency = field_validator("currency")(check_currency)

    @field_validator("customer")
    @classmethod
    def _customer_id(cls, value: str | CustomerByCode | None) -> str | CustomerByCode | None:
        if isinstance(value, str) and not 1 <= len(value) <= 40:
            raise ValueError('must be a customer id (cus_...) or {"code": ...}')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BillImportRow:
        if self.customer is None and self.customer_code is None:
            raise PydanticCustomError("missing_customer", "customer or customer_code is required")
        if self.customer is not None and self.customer_code is not None:
            raise PydanticCustomError("two_customers", "give customer or customer_code, not both")
        if self.customer_name is not None and isinstance(self.customer, str):
            raise PydanticCustomError("name_without_code", "customer_name goes with a customer code, not an id")
        if self.lines is not None and sum(line.amount for line in self.lines) != self.amount:
            raise PydanticCustomError("lines_sum", "the amounts of lines must add up to amount")
        return self


class BillImport(StrictModel):
    """The JSON form of an import (the other is `text/csv`). Only documented: the route reads the envelope itself,
    so that each row is judged on its own (an invalid row is reported, not a 422 for the whole request)."""

    bills: list[BillImportRow] = Field(description="Up to 10,000 rows")


class BillImportError(BaseModel):
    row: int = Field(ge=1, description="The row's position: 1 is the first bill (a CSV header is not a row)")
    code: str = Field(description="validation_error, customer_not_found or bill_number_conflict")
    detail: str


class BillImportResult(BaseModel):
    object: Literal["bill_import"] = "bill_import"
    created: int = Field(ge=0, description="Bills stored by this request")
    unchanged: int = Field(ge=0, description="Rows whose bill number exists with the same content")
    errors: list[BillImportError] = Field(description="Rows not stored, in row order")
