"""The collection report (§17) as JSON, CSV (`Accept: text/csv`) and an SVG chart. The admin token sees every
merchant; a merchant key its own payments in its own mode."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gateway.api_support import ADMIN_TOKEN, MERCHANT_KEY, PARAMETERS, json_response, problems
from gateway.auth import Admin, Principal, PrincipalDep, RuntimeDep
from gateway.domain import OrgUnitKind
from gateway.reports import service
from gateway.reports.schemas import GroupBy, ReportObject
from gateway.runtime import Runtime
from gateway.schemas import IsoDate

router = APIRouter()
REPORT = "/v1/reports/collections"
_TAGS: list[str | Enum] = ["reports"]
_READERS = tuple(dict.fromkeys((*ADMIN_TOKEN, *MERCHANT_KEY)))
CSV = "text/csv"

From = Annotated[IsoDate, Query(alias="from", description="The first Vietnam calendar day counted (YYYY-MM-DD)")]
To = Annotated[IsoDate, Query(description="The last Vietnam calendar day counted, inclusive; at most 366 days")]
GroupByQuery = Annotated[GroupBy, Query(description="What each row is")]
OrgUnitQuery = Annotated[
    str | None,
    Query(max_length=32, description="Count only the payments of this unit and the units below it (its code)"),
]
LevelQuery = Annotated[
    OrgUnitKind | None,
    Query(
        description="With group_by=org_unit: roll each unit up to its ancestor of this kind (units without one stay)"
    ),
]
LivemodeQuery = Annotated[
    bool | None,
    Query(
        description="Admin token only: live (true) or test (false) payments; both when absent. A merchant key "
        "sees its key's mode and ignores it"
    ),
]
_DESCRIPTION = (
    "Succeeded payments whose Vietnam calendar day of success is between `from` and `to` (inclusive), net of "
    "refunds and reversals (`amount` = received - refunded; a payment refunded or reversed in full is not counted), "
    "grouped by `group_by`, with the share made online (`channel: online`; counter payments and a partner's "
    "counter or agent collections are `counter`). `online_share` = online_payments / payments (4 decimals). "
    "`target`: the row's unit's `online_target` for group_by=org_unit, else (and in `totals`) the `org_unit` "
    "filter's, else null; `meets_target` = online_share >= target. Payments without a unit are one row keyed null. "
    "Rows are ordered by key (null last). The admin token sees every merchant, in both modes unless `livemode` is "
    "given; a merchant key sees its own payments in its key's mode, and an `org_unit` outside its own unit's "
    "subtree answers 403 `forbidden`."
)


async def report_query(
    first: From,
    to: To,
    group_by: GroupByQuery,
    org_unit: OrgUnitQuery = None,
    level: LevelQuery = None,
    livemode: LivemodeQuery = None,
) -> service.ReportQuery:
    """The query parameters both routes take (the JSON / CSV report and its chart)."""
    return service.ReportQuery(first, to, group_by, org_unit, level, livemode)


QueryDep = Annotated[service.ReportQuery, Depends(report_query)]


async def _report(rt: Runtime, principal: Principal, query: service.ReportQuery) -> dict[str, Any]:
    viewer = None if isinstance(principal, Admin) else principal
    async with rt.db.transaction() as session:
        return await service.collections_report(session, query, viewer)


@router.get(
    REPORT,
    response_model=ReportObject,
    summary="Collections by unit, merchant, method, channel, provider or day, with the online share",
    tags=_TAGS,
    responses={
        200: {"content": {CSV: {"schema": {"type": "string"}}}},
        **problems(*_READERS, *PARAMETERS),
    },
    description=_DESCRIPTION + " With `Accept: text/csv` the same report is CSV (UTF-8): a header row of the row "
    "fields' names, one line per row, then the totals as a last line keyed `total`; nulls are empty cells.",
)
async def collections_report(
    rt: RuntimeDep,
    principal: PrincipalDep,
    query: QueryDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    report = await _report(rt, principal, query)
    if _prefers_csv(accept):
        filename = f"collections-{report['from']}-{report['to']}-{report['group_by']}.csv"
        return Response(
            service.report_csv(report).encode(),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
    return json_response(report)


def _quality(media_range: str) -> tuple[str, float]:
    kind, *params = (part.strip().lower() for part in media_range.split(";"))
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return kind, float(value)
            except ValueError:
                return kind, 0.0
    return kind, 1.0


def _prefers_csv(accept: str | None) -> bool:
    """Content negotiation (RFC 9110 §12.5.1): CSV when the client accepts it with a weight above zero and at least as
    high as JSON's (`application/json`, else `*/*`); JSON otherwise, and when nothing is said."""
    if not accept:
        return False
    weights = dict(_quality(media_range) for media_range in accept.split(",") if media_range.strip())
    csv = weights.get(CSV, 0.0)
    json = weights.get("application/json", weights.get("application/*", weights.get("*/*", 0.0)))
    return csv > 0 and csv >= json


@router.get(
    REPORT + ".svg",
    response_class=Response,
    summary="The collection report as a chart: online share per row against the target",
    tags=_TAGS,
    responses={
        200: {"content": {"image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*_READERS, *PARAMETERS),
    },
    description="The same parameters and rows as GET /v1/reports/collections, drawn: a horizontal bar of "
    "online share per row with its percentage, the target as a vertical line (the `org_unit` filter's) or as a "
    "mark on each unit's bar (group_by=org_unit), the date range in the title. Text stays text (searchable).",
)
async def collections_chart(rt: RuntimeDep, principal: PrincipalDep, query: QueryDep) -> Response:
    from gateway.reports.chart import report_svg

    report = await _report(rt, principal, query)
    content = await run_in_threadpool(report_svg, report)  # drawing is CPU work: off the event loop
    return Response(content, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
