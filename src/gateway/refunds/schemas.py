from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictInt

from gateway.domain import MAX_AMOUNT, RefundStatus
from gateway.schemas import Metadata, StrictModel


class RefundCreate(StrictModel):
    payment_id: str = Field(min_length=1, max_length=40)
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT, description="Default: what is still refundable")
    reason: str | None = Field(default=None, max_length=255)
    metadata: Metadata = Field(default_factory=dict)


class RefundObject(BaseModel):
    id: str
    object: Literal["refund"] = "refund"
    livemode: bool
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    failure_code: str | None
    failure_message: str | None
    metadata: dict[str, str]
    created_at: str
    updated_at: str
