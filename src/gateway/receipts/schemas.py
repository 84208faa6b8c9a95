from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from gateway.domain import PaymentChannel, PaymentMethod, ReceiptStatus
from gateway.schemas import StrictModel

# Printable ASCII, no space at either end: a template or series is printed on every receipt and typed by
# people checking one.
_REGISTER_CODE = r"^[!-~](?:[ -~]{0,30}[!-~])?$"


class SellerIn(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="Required when enabled")
    tax_code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{10}(-[0-9]{3})?$",
        description="The seller's tax code (mã số thuế): 10 digits, or 10-3 for a dependent unit",
    )
    address: str | None = Field(default=None, min_length=1, max_length=255)


class ReceiptSettingsPut(StrictModel):
    """The whole receipt settings of a merchant (both modes); what is not sent is cleared."""

    enabled: StrictBool
    template: str = Field(
        pattern=_REGISTER_CODE, max_length=32, description="The receipt template (mẫu số), e.g. `01BLP0-001`"
    )
    series: str = Field(
        pattern=_REGISTER_CODE, max_length=32, description="The receipt series (ký hiệu), e.g. `AA-26E`"
    )
    seller: SellerIn = Field(default_factory=SellerIn, description="`name` is required when `enabled`")


class SellerObject(BaseModel):
    name: str | None
    tax_code: str | None
    address: str | None


class ReceiptSettingsObject(BaseModel):
    object: Literal["receipt_settings"] = "receipt_settings"
    merchant_id: str
    enabled: bool
    template: str
    series: str
    seller: SellerObject
    updated_at: str


class PayerObject(BaseModel):
    name: str | None = Field(description="As the gateway knows the payer; the public lookup page masks it")
    code: str | None = Field(description="The biller's customer code")


class ReceiptItemObject(BaseModel):
    description: str
    amount: int


class ReceiptPlatformObject(BaseModel):
    reference: str | None = Field(description="MaThamChieu")
    transaction_id: str | None = Field(description="MaGiaoDich: the platform's transaction")
    receipt_url: str | None = Field(description="UrlBienLai: the platform's own receipt")


class ReceiptObject(BaseModel):
    id: str
    object: Literal["receipt"] = "receipt"
    livemode: bool
    status: ReceiptStatus
    template: str
    series: str
    number: str = Field(pattern=r"^[0-9]{8}$", description="Sequential per merchant, template, series and year")
    issued_at: str
    canceled_at: str | None
    seller: SellerObject
    payer: PayerObject
    items: list[ReceiptItemObject] = Field(description="What the money paid for; the amounts sum to `amount`")
    amount: int
    currency: str
    amount_in_words: str
    payment_id: str
    bill_ids: list[str]
    method: PaymentMethod
    channel: PaymentChannel
    lookup_code: str = Field(description="The key of the public page `GET /receipts/{lookup_code}`")
    lookup_url: str
    replaces: str | None = Field(description="The canceled receipt this one replaces (after a partial refund)")
    national_platform: ReceiptPlatformObject | None = Field(
        default=None, description="Paid through the national platform (§16): its transaction and its own receipt"
    )
    created_at: str
