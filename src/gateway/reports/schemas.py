from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.domain import OrgUnitKind


class GroupBy(StrEnum):
    org_unit = "org_unit"
    merchant = "merchant"
    method = "method"
    channel = "channel"
    provider = "provider"
    day = "day"


class ReportTotals(BaseModel):
    payments: int = Field(description="Succeeded payments not refunded or reversed in full")
    amount: int = Field(description="What they collected net of refunds and reversals (amount received - refunded)")
    online_payments: int = Field(description="Those of them made online (channel `online`)")
    online_amount: int
    online_share: float = Field(description="online_payments / payments, 4 decimals; 0 when there are no payments")
    target: float | None = Field(description="The online share to reach; null when there is none")
    meets_target: bool | None = Field(description="online_share >= target; null when there is no target")


class ReportRow(ReportTotals):
    key: str | None = Field(
        description="The unit code, merchant id, method, channel, provider or ISO day; null for payments without "
        "an organisation unit"
    )
    name: str | None = Field(description="A readable label: the unit's or merchant's name, a Vietnamese label")


class ReportObject(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    object: Literal["report"] = "report"
    from_: str = Field(alias="from", description="The first Vietnam calendar day counted (YYYY-MM-DD)")
    to: str = Field(description="The last Vietnam calendar day counted, inclusive")
    group_by: GroupBy
    org_unit: str | None
    level: OrgUnitKind | None
    rows: list[ReportRow]
    totals: ReportTotals
