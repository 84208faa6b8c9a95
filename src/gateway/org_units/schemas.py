from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from gateway.domain import OrgUnitKind
from gateway.schemas import StrictModel

OrgUnitCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="The unit's code (exact case): how merchants, customers, payments and reports name it",
        examples=["HT"],
    ),
]
OrgUnitName = Annotated[str, Field(min_length=1, max_length=200, examples=["Hà Tĩnh"])]


def _four_decimals(value: float) -> float:
    if abs(value * 10_000 - round(value * 10_000)) > 1e-6:
        raise ValueError("at most 4 decimals")
    return round(value, 4)


OnlineTarget = Annotated[
    float,
    Field(
        strict=True,
        ge=0,
        le=1,
        description="The share of payments the unit should collect online, 0 to 1 (at most 4 decimals)",
        examples=[0.4],
    ),
    AfterValidator(_four_decimals),
]


class OrgUnitCreate(StrictModel):
    code: OrgUnitCode
    name: OrgUnitName
    kind: OrgUnitKind
    parent: OrgUnitCode | None = Field(
        default=None,
        description="The code of the unit above: none for a province, a province for a district, a district for a "
        "commune, a province, district or commune for an agency",
    )
    online_target: OnlineTarget | None = None


class OrgUnitUpdate(StrictModel):
    """Only the fields sent change; `online_target: null` clears the target (`name` takes no null)."""

    name: OrgUnitName | SkipJsonSchema[None] = None
    online_target: OnlineTarget | None = None

    @field_validator("name", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:  # validators run only on values sent, so this is an explicit null
            raise ValueError("may not be null")
        return value


class OrgUnitObject(BaseModel):
    object: Literal["org_unit"] = "org_unit"
    code: str
    name: str
    kind: OrgUnitKind
    parent: str | None = Field(description="The code of the unit above; null for a province")
    online_target: float | None = Field(description="The online share the unit should reach; null when none")
    created_at: str
    updated_at: str
