from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.domain import CollectionStatus, PartnerChannel


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
