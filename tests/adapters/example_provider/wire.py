"""ExamplePay's wire protocol: a signed JSON notification, HMAC-SHA256 over its fields."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictInt

ORDER_PATH = "/pay"


class PaymentNotification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_code: str
    order_id: str
    transaction_id: str
    amount: StrictInt
    status: Literal["paid", "declined"]
    signature: str = ""

    def signed_text(self) -> str:
        return f"{self.merchant_code}|{self.order_id}|{self.transaction_id}|{self.amount}|{self.status}"


def sign(key: str, notification: PaymentNotification) -> str:
    return hmac.new(key.encode(), notification.signed_text().encode(), hashlib.sha256).hexdigest()
