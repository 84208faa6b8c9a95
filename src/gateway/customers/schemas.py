from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.schemas import Metadata, StrictModel


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


def _nfc(value: Any) -> Any:
    # Vietnamese arrives composed (NFC) or decomposed (NFD, e.g. from macOS): store one form, so one name
    # compares, searches and prints the same whatever keyboard typed it.
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


CustomerCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The biller's own code for the customer; unique per merchant and mode, case-insensitively",
        examples=["PA01000123456"],
    ),
]
CustomerName = Annotated[str, BeforeValidator(_nfc), Field(min_length=1, max_length=120)]
Phone = Annotated[str, Field(max_length=32)]
Email = Annotated[str, Field(max_length=254)]
Address = Annotated[str, BeforeValidator(_nfc), Field(max_length=255)]
OrgUnitCode = Annotated[str, Field(max_length=32, description="Code of the organisation unit (§17)")]


class CustomerCreate(StrictModel):
    code: CustomerCode
    name: CustomerName
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    org_unit: OrgUnitCode | None = None
    metadata: Metadata = Field(default_factory=dict)


class CustomerUpdate(StrictModel):
    """Only the fields sent change; `null` clears an optional field (`code`, `name` and `metadata` take none)."""

    # Absent means unchanged; the document does not offer null where it is refused.
    code: CustomerCode | SkipJsonSchema[None] = None
    name: CustomerName | SkipJsonSchema[None] = None
    phone: Phone | None = None
    email: Email | None = None
    address: Address | None = None
    org_unit: OrgUnitCode | None = None
    metadata: Metadata | SkipJsonSchema[None] = None

    @field_validator("code", "name", "metadata", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:  # validators run only on values sent, so this is an explicit null
            raise ValueError("may not be null")
        return value
