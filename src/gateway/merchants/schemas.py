from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, field_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.domain import MAX_AMOUNT, KeyMode, MerchantCategory
from gateway.org_units.schemas import OrgUnitCode
from gateway.schemas import StrictModel

BillerCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="How collection partners name the merchant (§12): unique, compared case-insensitively "
        "(`evn_hn` and `EVN_HN` are one code); stored as given",
        examples=["EVN_HN"],
    ),
]
MerchantName = Annotated[str, Field(min_length=1, max_length=200)]


class MerchantCreate(StrictModel):
    name: MerchantName
    category: MerchantCategory
    biller_code: BillerCode | None = None
    org_unit: OrgUnitCode | None = Field(
        default=None, description="The organisation unit (§17) the merchant's payments belong to, by code"
    )


class MerchantUpdate(StrictModel):
    """Only the fields sent change; `null` clears `biller_code` or `org_unit` (`name` and `category` take none)."""

    # Absent means unchanged; the document does not offer null where it is refused.
    name: MerchantName | SkipJsonSchema[None] = None
    category: MerchantCategory | SkipJsonSchema[None] = None
    biller_code: BillerCode | None = None
    org_unit: OrgUnitCode | None = None

    @field_validator("name", "category", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:  # validators run only on values sent, so this is an explicit null
            raise ValueError("may not be null")
        return value


class ApiKeyCreate(StrictModel):
    mode: KeyMode = KeyMode.test


class NewApiKey(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    secret: str = Field(description="Shown only once")
    mode: KeyMode
    created_at: str


class RevokedApiKey(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    mode: KeyMode
    revoked: Literal[True] = True
    revoked_at: str | None


class MerchantObject(BaseModel):
    id: str
    object: Literal["merchant"] = "merchant"
    name: str
    category: MerchantCategory
    biller_code: str | None = Field(description="How collection partners name the merchant; null when unset")
    org_unit: str | None = Field(
        description="The code of its organisation unit (§17): its payments count there unless their bill's "
        "customer has a unit of its own; null when unset"
    )
    created_at: str


class MerchantWithKey(MerchantObject):
    api_key: NewApiKey


class ProviderAccountObject(BaseModel):
    object: Literal["provider_account"] = "provider_account"
    merchant_id: str
    provider: str
    livemode: bool
    settings: dict[str, str]
    secrets_set: list[str] = Field(description="Names of the stored secrets; their values are never returned")
    enabled: bool
    priority: int
    min_amount: int | None
    max_amount: int | None
    updated_at: str


class RoutingSettings(StrictModel):
    """How payments without `provider` are routed to this provider (any subset; the rest is kept)."""

    enabled: StrictBool | None = None
    priority: StrictInt | None = Field(default=None, ge=0, le=1000, description="Lower goes first")
    min_amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    max_amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT)


ROUTING_FIELDS = frozenset(RoutingSettings.model_fields)
