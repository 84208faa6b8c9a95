"""The province's collection report (§17): succeeded payments of a range of Vietnam days, net of refunds and
reversals, grouped, with the share made online against the target.

One set-based aggregate does the counting (reports.repository); what follows runs over its grouped rows — a few
hundred at most: the units' roll-up to a level, names, shares, targets, totals."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.domain import OrgUnitKind
from gateway.errors import Forbidden, ValidationFailed
from gateway.labels import CHANNEL_NAMES, METHOD_NAMES
from gateway.org_units.service import Tree, tree
from gateway.reports import repository
from gateway.reports.repository import Scope, Sums
from gateway.reports.schemas import GroupBy

MAX_DAYS = 366
NO_UNIT = "Chưa xác định"  # payments recorded without an organisation unit
TOTAL_KEY, TOTAL_NAME = "total", "Tổng cộng"  # the CSV's last line
FIELDS = [
    "key",
    "name",
    "payments",
    "amount",
    "online_payments",
    "online_amount",
    "online_share",
    "target",
    "meets_target",
]


@dataclass(frozen=True)
class ReportQuery:
    first: date
    last: date
    group_by: GroupBy
    org_unit: str | None = None
    level: OrgUnitKind | None = None
    livemode: bool | None = None  # the operator's filter; a merchant key sees its own mode only


def _query_error(name: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field(["query", name], msg)


def check_query(query: ReportQuery) -> None:
    if query.first > query.last:
        raise _query_error("to", "must not be before `from`")
    if (query.last - query.first).days + 1 > MAX_DAYS:
        raise _query_error("to", f"a report covers at most {MAX_DAYS} days")
    if query.level is not None and query.group_by is not GroupBy.org_unit:
        raise _query_error("level", "only with group_by=org_unit")


async def collections_report(session: AsyncSession, query: ReportQuery, viewer: MerchantScope | None) -> dict[str, Any]:
    """The report as the viewer may see it: `viewer` None is the operator (every merchant, both modes unless
    `livemode` is given); a merchant sees its own payments in its key's mode, and only units within its own."""
    check_query(query)
    units = await tree(session)
    target: float | None = None
    scope = Scope(livemode=query.livemode)
    if viewer is not None:
        scope = Scope(merchant_id=viewer.merchant_id, livemode=viewer.livemode)
    if query.org_unit is not None:
        unit = units.units.get(query.org_unit)
        if unit is None:
            raise _query_error("org_unit", f"no organisation unit {query.org_unit!r}")
        if viewer is not None:
            await _check_merchant_may_see(session, units, viewer, query.org_unit)
        target = unit.online_target
        scope = Scope(scope.merchant_id, scope.livemode, units.subtree(query.org_unit))
    grouped = await repository.grouped_sums(session, query.group_by.value, query.first, query.last, scope)
    keyed = _keys_rolled_up(grouped, units, query.level)
    names = await _names(session, query.group_by, list(keyed), units)
    rows = []
    for key in sorted(keyed, key=lambda k: (k is None, k or "")):
        sums = keyed[key]
        if sums.payments == 0:
            continue  # only payments refunded or reversed in full: nothing collected
        row_target = _unit_target(units, key) if query.group_by is GroupBy.org_unit else target
        rows.append({"key": key, "name": names.get(key, key), **_figures(sums, row_target)})
    totals = Sums()
    for sums in keyed.values():
        totals.add(sums)
    return {
        "object": "report",
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        "group_by": query.group_by.value,
        "org_unit": query.org_unit,
        "level": query.level.value if query.level is not None else None,
        "rows": rows,
        "totals": _figures(totals, target),
    }


async def _check_merchant_may_see(session: AsyncSession, units: Tree, viewer: MerchantScope, code: str) -> None:
    own = await repository.merchant_unit(session, viewer.merchant_id)
    if own is not None and code not in units.subtree(own):
        raise Forbidden(f"Unit {code!r} is outside the merchant's own unit {own!r}.")


def _key_text(key: Any) -> str | None:
    if key is None:
        return None
    if isinstance(key, Enum):
        return str(key.value)
    if isinstance(key, date):
        return key.isoformat()
    return str(key)


def _keys_rolled_up(grouped: list[tuple[Any, Sums]], units: Tree, level: OrgUnitKind | None) -> dict[str | None, Sums]:
    keyed: dict[str | None, Sums] = {}
    for raw, sums in grouped:
        key = _key_text(raw)
        if level is not None and key is not None:
            key = units.ancestor_of_kind(key, level)
        keyed.setdefault(key, Sums()).add(sums)
    return keyed


async def _names(session: AsyncSession, group_by: GroupBy, keys: list[str | None], units: Tree) -> dict[Any, Any]:
    if group_by is GroupBy.org_unit:
        return {None: NO_UNIT, **{code: unit.name for code, unit in units.units.items()}}
    if group_by is GroupBy.merchant:
        return await repository.merchant_names(session, [k for k in keys if k is not None])
    if group_by is GroupBy.method:
        return METHOD_NAMES
    if group_by is GroupBy.channel:
        return CHANNEL_NAMES
    return {}  # a provider is named as it is; a day by its ISO date


def _unit_target(units: Tree, code: str | None) -> float | None:
    unit = units.units.get(code) if code is not None else None
    return unit.online_target if unit is not None else None


def _figures(sums: Sums, target: float | None) -> dict[str, Any]:
    share = round(sums.online_payments / sums.payments, 4) if sums.payments else 0.0
    return {
        "payments": sums.payments,
        "amount": sums.amount,
        "online_payments": sums.online_payments,
        "online_amount": sums.online_amount,
        "online_share": share,
        "target": target,
        "meets_target": None if target is None else share >= target,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def report_csv(report: dict[str, Any]) -> str:
    """The rows as CSV: a header of the JSON field names, one line per row, then the totals as a row keyed
    `total` (named "Tổng cộng"). Empty cells are nulls; booleans are `true` / `false`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    for row in [*report["rows"], {"key": TOTAL_KEY, "name": TOTAL_NAME, **report["totals"]}]:
        writer.writerow([_cell(row[name]) for name in FIELDS])
    return buffer.getvalue()
