"""Every SQL statement about refunds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.domain import RefundStatus
from gateway.errors import NotFound
from gateway.pagination import keyset_page
from gateway.payments.models import Payment
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
    return await keyset_page(session, stmt, Refund.id, limit, starting_after)


async def ensure_visible(
    session: AsyncSession,
    scope: MerchantScope,
    *,
    payment_id: str | None = None,
    refund_id: str | None = None,
) -> None:
    """A list filtered by a parent the caller cannot see answers 404, as the parent itself would."""
    if payment_id is not None and await _visible(session, scope, Payment, payment_id) is None:
        raise NotFound(f"No payment {payment_id}.")
    if refund_id is not None and await _visible(session, scope, Refund, refund_id) is None:
        raise NotFound(f"No refund {refund_id}.")


async def _visible(
    session: AsyncSession, scope: MerchantScope, model: type[Payment] | type[Refund], id: str
) -> str | None:
    stmt = select(model.id).where(
        model.id == id, model.merchant_id == scope.merchant_id, model.livemode == scope.livemode
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def due_for_status_check(session: AsyncSession, now: datetime, batch: int, *, skip_locked: bool) -> list[Refund]:
    """Those whose status check is due, soonest first; locked (skipping those another janitor holds)."""
    stmt = (
        select(Refund)
        .where(Refund.next_status_check_at <= now, Refund.status == RefundStatus.pending.value)
        .order_by(Refund.next_status_check_at)
        .limit(batch)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())
