from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CustomerObject(BaseModel):
    id: str
    object: Literal["customer"] = "customer"
    livemode: bool
    code: str
    name: str
    phone: str | None
    email: str | None
    address: str | None
    org_unit: str | None
    metadata: dict[str, str]
    balance: int = Field(ge=0, description="Credit held for the customer's next bills")
    currency: str
    payment_code: str = Field(max_length=20, description="What payers put in a transfer's content")
    qr_payload: str | None = Field(
        description="The static VietQR (no amount) printed on every bill; null without a VietQR account"
    )
    created_at: str
    updated_at: str
