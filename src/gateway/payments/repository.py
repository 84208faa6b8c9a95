"""Every SQL statement about payments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.domain import PaymentMethod, PaymentStatus
from gateway.payments.models import Payment

EXPIRABLE = (PaymentStatus.requires_confirmation, PaymentStatus.requires_action)
# Which of several payments one transfer names its money goes to: one still payable, else one that ended
# unpaid (late funds), else a paid one (a surplus), a failed one last.
_FUNDS_PREFERENCE = case(
    (Payment.status.in_((*EXPIRABLE, PaymentStatus.processing)), 0),
    (Payment.status.in_((PaymentStatus.canceled, PaymentStatus.expired)), 1),
    (Payment.status == PaymentStatus.succeeded, 2),
    else_=3,
)


def _scoped(scope: MerchantScope) -> Select[Payment]:
    return select(Payment).where(Payment.merchant_id == scope.merchant_id, Payment.livemode == scope.livemode)


# The reads of every GET and confirm: built once (reused: see gateway.db).
_BY_ID = select(Payment).where(
    Payment.id == bindparam("id"),
    Payment.merchant_id == bindparam("merchant_id"),
    Payment.livemode == bindparam("livemode"),
)
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update().execution_options(populate_existing=True)


def _by_id(scope: MerchantScope, payment_id: str) -> dict[str, object]:
    return {"id": payment_id, "merchant_id": scope.merchant_id, "livemode": scope.livemode}


async def get(session: AsyncSession, scope: MerchantScope, payment_id: str) -> Payment | None:
    return (await session.execute(_BY_ID, _by_id(scope, payment_id))).scalar_one_or_none()


async def get_for_update(session: AsyncSession, scope: MerchantScope, payment_id: str) -> Payment | None:
    return (await session.execute(_BY_ID_FOR_UPDATE, _by_id(scope, payment_id))).scalar_one_or_none()


async def lock_by_id(session: AsyncSession, payment_id: str) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_provider_reference(
    session: AsyncSession,
    provider: str,
    references: Sequence[str],
    livemode: bool,
    merchant_id: str | None,
    *,
    lock: bool,
) -> Payment | None:
    """The payment a provider names, by the reference it gave or by the payment id the gateway sent as its order
    id (so a payment whose start timed out before its reference was stored is still found). Of several named,
    the one most able to take the money."""
    if not references:
        return None
    stmt = select(Payment).where(
        Payment.provider == provider,
        or_(Payment.provider_reference.in_(list(references)), Payment.id.in_(list(references))),
        Payment.livemode == livemode,
    )
    if merchant_id is not None:
        stmt = stmt.where(Payment.merchant_id == merchant_id)
    stmt = stmt.order_by(_FUNDS_PREFERENCE, Payment.id).limit(1)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class PaymentFilters:
    status: PaymentStatus | None = None
    method: PaymentMethod | None = None
    provider: str | None = None
    reference: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


async def list_page(
    session: AsyncSession,
    scope: MerchantScope,
    filters: PaymentFilters,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Payment], bool]:
    stmt = _scoped(scope)
    if filters.status is not None:
        stmt = stmt.where(Payment.status == filters.status)
    if filters.method is not None:
        stmt = stmt.where(Payment.method == filters.method)
    if filters.provider is not None:
        stmt = stmt.where(Payment.provider == filters.provider)
    if filters.reference is not None:
        stmt = stmt.where(Payment.reference == filters.reference)
    if filters.created_gte is not None:
        stmt = stmt.where(Payment.created_at >= filters.created_gte)
    if filters.created_lt is not None:
        stmt = stmt.where(Payment.created_at < filters.created_lt)
    if starting_after is not None:
        # Ids are time-ordered, so "older than the cursor" is one index range: page 1,000 costs what page 1 does.
        stmt = stmt.where(Payment.id < starting_after)
    rows = list((await session.execute(stmt.order_by(Payment.id.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit


async def ids_due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    stmt = (
        select(Payment.id)
        .where(Payment.status.in_(EXPIRABLE), Payment.expires_at <= now)
        .order_by(Payment.expires_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
