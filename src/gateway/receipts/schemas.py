from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.domain import ReceiptStatus


class ReceiptItemObject(BaseModel):
    description: str
    amount: int


class ReceiptObject(BaseModel):
    id: str
    object: Literal["receipt"] = "receipt"
    livemode: bool
    status: ReceiptStatus
    template: str
    series: str
    number: str = Field(pattern=r"^[0-9]{8}$")
    issued_at: str
    canceled_at: str | None
    seller: dict[str, str | None]
    payer: dict[str, str | None]
    items: list[ReceiptItemObject]
    amount: int
    currency: str
    amount_in_words: str
    payment_id: str
    bill_ids: list[str]
    method: str
    channel: str
    lookup_code: str
    replaces: str | None
    created_at: str
