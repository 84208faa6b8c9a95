"""The report's one statement: an aggregate over the succeeded payments of a range of Vietnam days, read from the
`ix_payments_report` index (on PostgreSQL it INCLUDEs every column counted here, so it is an index-only scan)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import plan_bulk_statements_each_time
from gateway.domain import PaymentChannel
from gateway.merchants.models import Merchant
from gateway.payments.models import Payment

_KEYS: dict[str, Any] = {
    "org_unit": Payment.org_unit,
    "merchant": Payment.merchant_id,
    "method": Payment.method,
    "channel": Payment.channel,
    "provider": Payment.provider,
    "day": Payment.succeeded_on,
}


@dataclass
class Sums:
    """What one group counted (payments refunded or reversed in full are not payments any more)."""

    payments: int = 0
    amount: int = 0
    online_payments: int = 0
    online_amount: int = 0

    def add(self, other: Sums) -> None:
        self.payments += other.payments
        self.amount += other.amount
        self.online_payments += other.online_payments
        self.online_amount += other.online_amount


@dataclass(frozen=True)
class Scope:
    """Whose payments count: every merchant's (the operator), or one merchant's in one mode; `org_units` limits
    them to those units when set."""

    merchant_id: str | None = None
    livemode: bool | None = None
    org_units: Sequence[str] | None = None


async def grouped_sums(
    session: AsyncSession, group_by: str, first: date, last: date, scope: Scope
) -> list[tuple[Any, Sums]]:
    """SELECT key, the counts and sums, split by channel in the same pass, GROUP BY key — one scan of the range."""
    key = _KEYS[group_by]
    net = Payment.amount_received - Payment.amount_refunded
    online = Payment.channel == PaymentChannel.online
    counted = net > 0
    stmt = select(
        key,
        func.sum(case((counted, 1), else_=0)),
        func.sum(net),
        func.sum(case((and_(online, counted), 1), else_=0)),
        func.sum(case((online, net), else_=0)),
    ).where(Payment.succeeded_on.between(first, last))
    if scope.merchant_id is not None:
        stmt = stmt.where(Payment.merchant_id == scope.merchant_id)
    if scope.livemode is not None:
        stmt = stmt.where(Payment.livemode.is_(scope.livemode))
    if scope.org_units is not None:
        stmt = stmt.where(Payment.org_unit.in_(scope.org_units))
    # A prepared statement run often gets PostgreSQL's generic plan, which guesses the range small and scans it on one
    # core; planned with the real dates, a month of a million payments is read by parallel workers (bench S8: p99
    # 584 → 324 ms).
    await plan_bulk_statements_each_time(session)
    rows = (await session.execute(stmt.group_by(key))).all()
    return [(row[0], Sums(int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))) for row in rows]


async def merchant_names(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Merchant.id, Merchant.name).where(Merchant.id.in_(ids)))
    return {merchant_id: name for merchant_id, name in rows.all()}


async def merchant_unit(session: AsyncSession, merchant_id: str) -> str | None:
    return (await session.execute(select(Merchant.org_unit).where(Merchant.id == merchant_id))).scalar_one_or_none()
