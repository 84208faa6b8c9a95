from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.domain import AmountRule, BillStatus


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
