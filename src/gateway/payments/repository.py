"""Every SQL statement about payments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.db import insert_ignoring_conflict
from gateway.domain import PaymentMethod, PaymentStatus
from gateway.pagination import keyset_page
from gateway.payments.models import Payment, ReceivedFunds

EXPIRABLE = (PaymentStatus.requires_confirmation, PaymentStatus.requires_action)
# Statuses the janitor asks the provider about (a payer may pay after expiry or cancellation).
_STATUS_CHECKED = (
    PaymentStatus.requires_action,
    PaymentStatus.processing,
    PaymentStatus.expired,
    PaymentStatus.canceled,
)
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


async def open_by_reference(
    session: AsyncSession, provider: str, reference: str, livemode: bool, merchant_id: str | None, now: datetime
) -> Payment | None:
    """The newest payment of `provider` under the merchant's own `reference` that its payer may still pay (the
    national platform asks by dossier code). Read, not locked: the inquiry only reads it, and a result settling it
    locks the payment before the customer and bill (the allocation's order), which the inquiry holds already."""
    stmt = select(Payment).where(
        Payment.provider == provider,
        Payment.reference == reference,
        Payment.livemode == livemode,
        Payment.status == PaymentStatus.requires_action,
        Payment.expires_at > now,
    )
    if merchant_id is not None:
        stmt = stmt.where(Payment.merchant_id == merchant_id)
    stmt = stmt.order_by(Payment.id.desc()).limit(1)
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
    return await keyset_page(session, stmt, Payment.id, limit, starting_after)


async def ids_due_for_expiry(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    stmt = (
        select(Payment.id)
        .where(Payment.status.in_(EXPIRABLE), Payment.expires_at <= now)
        .order_by(Payment.expires_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def record_received_funds(session: AsyncSession, values: dict[str, object]) -> bool:
    """False when the provider already reported this transaction: the repeat changes nothing."""
    return await insert_ignoring_conflict(
        session,
        ReceivedFunds,
        values,
        ["provider", "livemode", "provider_transaction_id"],
    )


async def by_funds(
    session: AsyncSession, provider: str, livemode: bool, provider_transaction_id: str
) -> Payment | None:
    """The payment a provider transaction's funds went to."""
    stmt = (
        select(Payment)
        .join(ReceivedFunds, ReceivedFunds.payment_id == Payment.id)
        .where(
            ReceivedFunds.provider == provider,
            ReceivedFunds.livemode == livemode,
            ReceivedFunds.provider_transaction_id == provider_transaction_id,
        )
    )
    return (await session.execute(stmt)).scalars().first()


async def funds_recorded(session: AsyncSession, provider: str, livemode: bool, provider_transaction_id: str) -> bool:
    stmt = select(ReceivedFunds.id).where(
        ReceivedFunds.provider == provider,
        ReceivedFunds.livemode == livemode,
        ReceivedFunds.provider_transaction_id == provider_transaction_id,
    )
    return (await session.execute(stmt)).first() is not None


async def first_receipt(session: AsyncSession, payment_id: str) -> tuple[str | None, dict[str, str]]:
    """The first matched funds of a payment: the provider's transaction id and who paid (where a refund goes)."""
    stmt = (
        select(ReceivedFunds.provider_transaction_id, ReceivedFunds.payer)
        .where(ReceivedFunds.payment_id == payment_id, ReceivedFunds.status == "matched")
        .order_by(ReceivedFunds.received_at, ReceivedFunds.id)
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None, {}
    return row[0], {str(k): str(v) for k, v in (row[1] or {}).items()}


async def due_for_status_check(session: AsyncSession, now: datetime, batch: int, *, skip_locked: bool) -> list[Payment]:
    """Those whose status check is due, soonest first; locked (skipping those another janitor holds)."""
    stmt = (
        select(Payment)
        .where(Payment.next_status_check_at <= now, Payment.status.in_(_STATUS_CHECKED))
        .order_by(Payment.next_status_check_at)
        .limit(batch)
    )
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())
