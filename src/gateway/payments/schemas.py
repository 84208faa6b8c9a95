from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, field_validator

from gateway.domain import (
    CURRENCY_EXPONENTS,
    MAX_AMOUNT,
    CounterInstrument,
    PartnerChannel,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    RequestedMethod,
)
from gateway.schemas import AbsoluteURL, Metadata, StrictModel


class Customer(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, max_length=100)


def check_currency(value: str) -> str:
    if value not in CURRENCY_EXPONENTS:
        raise ValueError("unknown ISO 4217 currency code")
    return value


class CounterDetails(StrictModel):
    """How a cashier took the money (§13)."""

    instrument: CounterInstrument
    location: str | None = Field(default=None, min_length=1, max_length=120)
    cashier: str | None = Field(default=None, min_length=1, max_length=120)


class MobileMoneyOptions(StrictModel):
    """Method `mobile_money` (§15): how the telco reaches the payer."""

    push: StrictBool = Field(
        default=False,
        description="Prompt the payer's feature phone for its PIN by USSD (needs `customer.phone`) instead of "
        "redirecting to the telco's page",
    )


class NationalPlatformFee(StrictModel):
    kind: Literal["fee", "charge"] = Field(description="`fee` (phí) or `charge` (lệ phí)")
    code: str = Field(min_length=1, max_length=40, description="The fee's code in the agency's fee table")
    name: str = Field(min_length=1, max_length=255)
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT)


class NationalPlatformOptions(StrictModel):
    """Method `national_platform` (§16): the administrative procedure the dossier's fees are for."""

    procedure_code: str = Field(min_length=1, max_length=40, description="MaTTHC: the procedure's code")
    service_code: str = Field(min_length=1, max_length=40, description="MaDVC: the public service's code")
    fees: list[NationalPlatformFee] = Field(
        min_length=1, max_length=50, description="The fees and charges; their amounts sum to `amount`"
    )


class NationalPlatformObject(BaseModel):
    procedure_code: str | None
    service_code: str | None
    fees: list[dict[str, Any]]
    reference: str | None = Field(description="MaThamChieu: the gateway's reference at the platform")
    transaction_id: str | None = Field(description="MaGiaoDich: the platform's transaction, once paid")
    receipt_url: str | None = Field(description="UrlBienLai: the platform's receipt, once paid")


class PaymentCreate(StrictModel):
    amount: StrictInt | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        description="In the currency's minor unit (VND: whole đồng). Required, except with `bill_id`: then it "
        "defaults to what remains of the bill",
    )
    currency: str = Field(default="VND", description="ISO 4217")
    method: RequestedMethod = Field(description="`partner` is recorded by collection partners (§12) only")
    provider: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="When absent the gateway routes to an enabled provider of the method",
    )
    bill_id: str | None = Field(
        default=None, min_length=1, max_length=40, description="The bill this payment pays (§11)"
    )
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The merchant's bill, invoice or visit code. Required, except with `bill_id`: then it "
        "defaults to the bill's number",
    )
    description: str | None = Field(default=None, max_length=255)
    customer: Customer | None = None
    metadata: Metadata = Field(default_factory=dict)
    return_url: AbsoluteURL | None = None
    expires_in: StrictInt = Field(default=900, ge=10, le=604800, description="Seconds until the payment expires")
    confirm: StrictBool = False
    counter: CounterDetails | None = Field(
        default=None, description="Required with method `counter` (and only then): how the cashier took the money"
    )
    mobile_money: MobileMoneyOptions | None = Field(default=None, description="Only with method `mobile_money`")
    national_platform: NationalPlatformOptions | None = Field(
        default=None,
        description="Required with method `national_platform` (and only then); `reference` is the dossier code",
    )

    _currency = field_validator("currency")(check_currency)


class PaymentConfirm(StrictModel):
    customer: Customer | None = None
    return_url: AbsoluteURL | None = None


class PaymentObject(BaseModel):
    id: str
    object: Literal["payment"] = "payment"
    livemode: bool
    status: PaymentStatus
    amount: int
    currency: str
    amount_received: int
    amount_refunded: int
    method: PaymentMethod
    provider: str
    provider_reference: str | None
    channel: PaymentChannel = Field(description="`online` (the payer's own device) or `counter` (§13)")
    bill_id: str | None = Field(description="The bill this payment was made for")
    customer_id: str | None = Field(description="The biller's customer whose bills and balance the funds went to")
    counter: dict[str, Any] | None = Field(description="Method `counter`: instrument, location, cashier")
    partner_channel: PartnerChannel | None = Field(
        default=None, description="Method `partner` (§12): where the partner took the money"
    )
    reference: str
    description: str | None
    customer: dict[str, Any] | None
    metadata: dict[str, str]
    return_url: str | None
    next_action: dict[str, Any] | None = Field(
        description="While requires_action: display_qr {qr_payload, qr_image_url, expires_at}, "
        "redirect {url}, or await_customer {channel, message}"
    )
    failure_code: str | None
    failure_message: str | None
    national_platform: NationalPlatformObject | None = Field(
        default=None, description="Method `national_platform`: the request's block with what the platform gave"
    )
    expires_at: str
    created_at: str
    updated_at: str


class TestPayOutcome(StrictModel):
    outcome: Literal["success", "failure"]
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT, description="Default: what is still owed")


class TestTransfer(StrictModel):
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="What the payer sends, whole VND")
