"""Every SQL statement about bills and the allocation journal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Select, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills.models import Allocation, Bill
from gateway.db import flush_in_savepoint, insert_new_many, is_in, value_chunks
from gateway.domain import BillStatus
from gateway.pagination import keyset_page
from gateway.receipts.models import Receipt

PAYABLE = (BillStatus.open, BillStatus.partially_paid)


def _scoped(scope: MerchantScope) -> Select[Bill]:
    return select(Bill).where(Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode)


async def get(session: AsyncSession, scope: MerchantScope, bill_id: str) -> Bill | None:
    return (await session.execute(_scoped(scope).where(Bill.id == bill_id))).scalar_one_or_none()


async def by_number(session: AsyncSession, scope: MerchantScope, number: str) -> Bill | None:
    return (await session.execute(_scoped(scope).where(Bill.number == number))).scalar_one_or_none()


async def test_merchants_with_number(session: AsyncSession, number: str) -> list[str]:
    """Test mode: the merchants with a bill of that number (at most two: enough to tell one from several)."""
    stmt = select(Bill.merchant_id).where(Bill.livemode.is_(False), Bill.number == number).distinct().limit(2)
    return list((await session.execute(stmt)).scalars())


async def number_taken(session: AsyncSession, scope: MerchantScope, number: str) -> bool:
    stmt = select(Bill.id).where(
        Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode, Bill.number == number
    )
    return (await session.execute(stmt)).first() is not None


async def flush_unless_number_taken(session: AsyncSession, scope: MerchantScope, bill: Bill) -> bool:
    """Write the new bill; False when a concurrent request took its number first (the unique index decides)."""
    number = bill.number
    refused = await flush_in_savepoint(session, lambda: session.add(bill))
    if refused is None:
        return True
    if await number_taken(session, scope, number):
        return False
    raise refused


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


# --- verification (gateway ledger verify): each query returns only the rows that disagree ---------------------

_BILLS_OFF = text(
    """
    SELECT b.id, b.amount_paid, COALESCE(SUM(a.amount), 0) AS allocated
    FROM bills b LEFT JOIN allocations a ON a.bill_id = b.id
    GROUP BY b.id, b.amount_paid
    HAVING b.amount_paid <> COALESCE(SUM(a.amount), 0)
    """
)
_BALANCES_OFF = text(
    """
    SELECT c.id, c.balance, COALESCE(SUM(a.amount), 0) AS allocated
    FROM customers c LEFT JOIN allocations a ON a.customer_id = c.id AND a.bill_id IS NULL
    GROUP BY c.id, c.balance
    HAVING c.balance <> COALESCE(SUM(a.amount), 0) OR c.balance < 0
    """
)
# What customers' payments brought in, net of refunds, against what their allocation rows hold (bills + balance).
_FUNDS_OFF = text(
    """
    SELECT f.customer_id, f.funds, COALESCE(j.allocated, 0) AS allocated
    FROM (SELECT customer_id, SUM(amount_received - amount_refunded) AS funds
          FROM payments WHERE customer_id IS NOT NULL GROUP BY customer_id) f
    LEFT JOIN (SELECT customer_id, SUM(amount) AS allocated FROM allocations GROUP BY customer_id) j
      ON j.customer_id = f.customer_id
    WHERE f.funds <> COALESCE(j.allocated, 0)
    UNION ALL
    SELECT j.customer_id, 0, j.allocated
    FROM (SELECT customer_id, SUM(amount) AS allocated FROM allocations GROUP BY customer_id) j
    WHERE j.allocated <> 0
      AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = j.customer_id)
    """
)
# Per merchant and mode: the ledger's customer-credit account against the sum of its customers' balances.
_CREDIT_OFF = text(
    """
    SELECT m.merchant_id, m.livemode, COALESCE(c.balances, 0) AS balances, COALESCE(l.credit, 0) AS ledger
    FROM (SELECT DISTINCT merchant_id, livemode FROM customers
          UNION SELECT DISTINCT merchant_id, livemode FROM ledger_transactions) m
    LEFT JOIN (SELECT merchant_id, livemode, SUM(balance) AS balances FROM customers GROUP BY merchant_id, livemode) c
      ON c.merchant_id = m.merchant_id AND c.livemode = m.livemode
    LEFT JOIN (SELECT t.merchant_id, t.livemode,
                      SUM(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END) AS credit
               FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
               WHERE e.account = 'customer_credit:' || t.merchant_id
               GROUP BY t.merchant_id, t.livemode) l
      ON l.merchant_id = m.merchant_id AND l.livemode = m.livemode
    WHERE COALESCE(c.balances, 0) <> COALESCE(l.credit, 0)
    """
)


async def allocation_mismatches(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """(what, id, recorded, expected) for every bill, balance, customer's funds or credit account that disagrees."""
    found: list[tuple[str, str, int, int]] = []
    for what, stmt in (
        ("bill amount_paid vs its allocations", _BILLS_OFF),
        ("customer balance vs its credit allocations", _BALANCES_OFF),
        ("customer's funds received vs allocations plus balance", _FUNDS_OFF),
    ):
        found.extend((what, str(r[0]), int(r[1]), int(r[2])) for r in (await session.execute(stmt)).all())
    for merchant_id, livemode, balances, credit in (await session.execute(_CREDIT_OFF)).all():
        mode = "live" if livemode else "test"
        found.append(("customer_credit account vs balances", f"{merchant_id}/{mode}", int(credit), int(balances)))
    return found


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
    return set(await insert_new_many(session, Bill, rows, conflict_columns=conflict, returning="number"))
