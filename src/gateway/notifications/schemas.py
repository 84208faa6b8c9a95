from __future__ import annotations

from pydantic import BaseModel

from gateway.domain import PaymentStatus


class ReturnStatus(BaseModel):
    payment_id: str
    status: PaymentStatus
