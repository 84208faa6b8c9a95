"""Every SQL statement about refunds."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.domain import RefundStatus
from gateway.refunds.models import Refund


def _scoped(scope: MerchantScope) -> Select[Refund]:
    return select(Refund).where(Refund.merchant_id == scope.merchant_id, Refund.livemode == scope.livemode)


async def get(session: AsyncSession, scope: MerchantScope, refund_id: str) -> Refund | None:
    return (await session.execute(_scoped(scope).where(Refund.id == refund_id))).scalar_one_or_none()


async def find(session: AsyncSession, refund_id: str, provider: str, livemode: bool) -> Refund | None:
    stmt = select(Refund).where(Refund.id == refund_id, Refund.provider == provider, Refund.livemode == livemode)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock(session: AsyncSession, refund_id: str) -> Refund | None:
    stmt = select(Refund).where(Refund.id == refund_id).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def reserved_amount(session: AsyncSession, payment_id: str) -> int:
    """What pending and succeeded refunds already take out of a payment (call with the payment locked)."""
    stmt = select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.payment_id == payment_id,
        Refund.status.in_([RefundStatus.pending, RefundStatus.succeeded]),
    )
    return int((await session.execute(stmt)).scalar_one())


async def list_page(
    session: AsyncSession,
    scope: MerchantScope,
    payment_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Refund], bool]:
    stmt = _scoped(scope)
    if payment_id is not None:
        stmt = stmt.where(Refund.payment_id == payment_id)
    if starting_after is not None:
        stmt = stmt.where(Refund.id < starting_after)
    rows = list((await session.execute(stmt.order_by(Refund.id.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit
