from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt, ValidationInfo, field_validator

from gateway.domain import KeyMode, PartnerKind
from gateway.schemas import StrictModel

# Partners that may be allowed to show customers' full names in inquiries; every other kind sees them masked.
FULL_NAME_KINDS = frozenset({PartnerKind.telco, PartnerKind.platform})

PartnerCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The partner's short code (a bank's `VCB`): unique, compared case-insensitively; a collection's "
        "payment names it as its `provider`",
        examples=["VCB"],
    ),
]


class PartnerCreate(StrictModel):
    name: str = Field(min_length=1, max_length=120)
    code: PartnerCode
    kind: PartnerKind
    mode: KeyMode = Field(
        default=KeyMode.live, description="`test`: the partner collects against merchants' test objects"
    )
    shows_full_names: StrictBool = Field(
        default=False, description="Inquiries show customers' full names (telco and platform partners only)"
    )

    @field_validator("shows_full_names", mode="after")
    @classmethod
    def _full_names_for_telcos_and_platforms(cls, value: bool, info: ValidationInfo) -> bool:
        kind = info.data.get("kind")  # absent when `kind` itself was refused
        if value and kind is not None and kind not in FULL_NAME_KINDS:
            raise ValueError("only a telco or platform partner may show full names")
        return value


class RotateSecret(StrictModel):
    expire_old_after: StrictInt = Field(
        default=86400, ge=0, le=7 * 86400, description="Seconds the old secret keeps signing; 0 = at once"
    )


class PartnerObject(BaseModel):
    id: str
    object: Literal["partner"] = "partner"
    name: str
    code: str
    kind: PartnerKind
    livemode: bool
    shows_full_names: bool
    previous_secret_expires_at: str | None = Field(
        description="Until then the secret before the last rotation still signs too; null when the last rotation "
        "(or none) kept no old secret"
    )
    created_at: str
    updated_at: str


class PartnerWithSecret(PartnerObject):
    secret: str = Field(description="Signs the partner's requests (`psk_...`); shown only when created and rotated")


class MerchantPartnerPut(StrictModel):
    enabled: StrictBool


class MerchantPartnerObject(BaseModel):
    object: Literal["merchant_partner"] = "merchant_partner"
    merchant_id: str
    partner_id: str
    enabled: bool
    updated_at: str
