"""Every SQL statement about bills and the allocation journal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills.models import Allocation, Bill
from gateway.db import insert_many, is_in, value_chunks
from gateway.domain import BillStatus

PAYABLE = (BillStatus.open, BillStatus.partially_paid)


async def get(session: AsyncSession, scope: MerchantScope, bill_id: str) -> Bill | None:
    return (
        await session.execute(
            select(Bill).where(
                Bill.id == bill_id, Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode
            )
        )
    ).scalar_one_or_none()


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


# --- bulk (POST /v1/bills/import): plain rows in chunks, never one statement or one ORM object per bill --------

_BILLS = cast(Table, Bill.__table__)
# What makes two bills with one number "the same bill" to an import (status and money are not content).
CONTENT_COLUMNS = (
    "customer_id",
    "amount",
    "currency",
    "description",
    "period",
    "due_date",
    "lines",
    "amount_rule",
    "metadata",
)


async def contents_by_number(
    session: AsyncSession, scope: MerchantScope, numbers: Iterable[str]
) -> dict[str, tuple[Any, ...]]:
    """number → the bill's content (CONTENT_COLUMNS, in order) for the merchant's bills with those numbers."""
    columns = [_BILLS.c[name] for name in CONTENT_COLUMNS]
    found: dict[str, tuple[Any, ...]] = {}
    for chunk in value_chunks(session, numbers):
        stmt = select(_BILLS.c.number, *columns).where(
            _BILLS.c.merchant_id == scope.merchant_id,
            _BILLS.c.livemode == scope.livemode,
            is_in(session, _BILLS.c.number, chunk),
        )
        found.update({row[0]: tuple(row[1:]) for row in (await session.execute(stmt)).all()})
    return found


async def insert_many_ignoring_taken(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """INSERT … ON CONFLICT (merchant, mode, number) DO NOTHING for many bills (rows keyed by column name) in one
    statement; the numbers actually inserted — one a concurrent import took meanwhile is left out."""
    conflict = ["merchant_id", "livemode", "number"]
    return set(await insert_many(session, Bill, rows, conflict_columns=conflict, returning="number"))
