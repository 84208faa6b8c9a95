"""Every SQL statement about bills and the allocation journal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills.models import Allocation, Bill
from gateway.domain import BillStatus
from gateway.pagination import keyset_page
from gateway.receipts.models import Receipt

PAYABLE = (BillStatus.open, BillStatus.partially_paid)


def _scoped(scope: MerchantScope) -> Select[Bill]:
    return select(Bill).where(Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode)


async def get(session: AsyncSession, scope: MerchantScope, bill_id: str) -> Bill | None:
    return (await session.execute(_scoped(scope).where(Bill.id == bill_id))).scalar_one_or_none()


async def number_taken(session: AsyncSession, scope: MerchantScope, number: str) -> bool:
    stmt = select(Bill.id).where(
        Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode, Bill.number == number
    )
    return (await session.execute(stmt)).first() is not None


async def flush_unless_number_taken(session: AsyncSession, scope: MerchantScope, bill: Bill) -> bool:
    """Write the new bill; False when a concurrent request took its number first (the unique index decides; a
    savepoint keeps the transaction usable after the refused INSERT)."""
    number = bill.number
    try:
        # Entering the savepoint flushes what is pending, so the row is added inside it.
        async with session.begin_nested():
            session.add(bill)
            await session.flush()
    except IntegrityError:
        if await number_taken(session, scope, number):
            return False
        raise
    return True


@dataclass(frozen=True)
class BillFilters:
    customer_id: str | None = None
    status: BillStatus | None = None
    number: str | None = None
    period: str | None = None
    due_before: date | None = None


async def list_page(
    session: AsyncSession, scope: MerchantScope, filters: BillFilters, limit: int, starting_after: str | None
) -> tuple[list[Bill], bool]:
    stmt = _scoped(scope)
    if filters.customer_id is not None:
        stmt = stmt.where(Bill.customer_id == filters.customer_id)
    if filters.status is not None:
        stmt = stmt.where(Bill.status == filters.status)
    if filters.number is not None:
        stmt = stmt.where(Bill.number == filters.number)
    if filters.period is not None:
        stmt = stmt.where(Bill.period == filters.period)
    if filters.due_before is not None:
        stmt = stmt.where(Bill.due_date < filters.due_before)
    return await keyset_page(session, stmt, Bill.id, limit, starting_after)


async def receipts_of_payments(session: AsyncSession, payment_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(receipt id, payment id) of the payments' receipts, oldest first."""
    if not payment_ids:
        return []
    stmt = select(Receipt.id, Receipt.payment_id).where(Receipt.payment_id.in_(list(payment_ids))).order_by(Receipt.id)
    return [(receipt_id, payment_id) for receipt_id, payment_id in (await session.execute(stmt)).all()]


async def lock_by_id(session: AsyncSession, bill_id: str) -> Bill | None:
    """Take the bill's customer's lock first (customers.repository.lock_by_id)."""
    return (
        await session.execute(
            select(Bill).where(Bill.id == bill_id).with_for_update().execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def payable_bills_for_update(session: AsyncSession, customer_id: str) -> list[Bill]:
    """A customer's payable bills in allocation order: oldest due date first (bills without one last), then
    oldest created."""
    stmt = (
        select(Bill)
        .where(Bill.customer_id == customer_id, Bill.status.in_(PAYABLE))
        .order_by(Bill.due_date.is_(None), Bill.due_date, Bill.created_at, Bill.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


def add_allocations(session: AsyncSession, rows: Sequence[Allocation]) -> None:
    session.add_all(rows)


async def allocations_of_bills(session: AsyncSession, bill_ids: Sequence[str]) -> list[Allocation]:
    if not bill_ids:
        return []
    stmt = select(Allocation).where(Allocation.bill_id.in_(list(bill_ids))).order_by(Allocation.id)
    return list((await session.execute(stmt)).scalars())


async def allocations_of_payment(session: AsyncSession, payment_id: str) -> list[Allocation]:
    stmt = select(Allocation).where(Allocation.payment_id == payment_id).order_by(Allocation.id)
    return list((await session.execute(stmt)).scalars())


async def bill_allocations_of_customer(session: AsyncSession, customer_id: str) -> list[Allocation]:
    stmt = (
        select(Allocation)
        .where(Allocation.customer_id == customer_id, Allocation.bill_id.is_not(None))
        .order_by(Allocation.id)
    )
    return list((await session.execute(stmt)).scalars())


async def credit_by_payment(session: AsyncSession, customer_id: str) -> list[tuple[str | None, int]]:
    """Which payments the customer's balance came from, oldest first: (payment id, credit still held)."""
    stmt = (
        select(Allocation.payment_id, func.sum(Allocation.amount))
        .where(Allocation.customer_id == customer_id, Allocation.bill_id.is_(None))
        .group_by(Allocation.payment_id)
        .having(func.sum(Allocation.amount) > 0)
        .order_by(func.min(Allocation.id))
    )
    return [(payment_id, int(total)) for payment_id, total in (await session.execute(stmt)).all()]


async def bills_by_ids(session: AsyncSession, bill_ids: Sequence[str]) -> list[Bill]:
    if not bill_ids:
        return []
    return list((await session.execute(select(Bill).where(Bill.id.in_(list(bill_ids))))).scalars())
