"""Every SQL statement about receipts, their settings and their number counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.db import dialect_insert, dialect_name
from gateway.domain import ReceiptStatus
from gateway.pagination import keyset_page
from gateway.receipts.models import Receipt, ReceiptCounter, ReceiptSettings

_COUNTER_KEY = ["merchant_id", "livemode", "template", "series", "year"]
_NEXT_NUMBER: dict[str, Any] = {}


def _next_number_statement(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO UPDATE SET last_number = last_number + 1 RETURNING last_number, built once per
    dialect: one statement that creates or increments the counter row and keeps it locked until the transaction
    ends (PostgreSQL's row lock; SQLite's write lock), so concurrent issuers queue on it and a rollback gives the
    number back."""
    name = dialect_name(session)
    statement = _NEXT_NUMBER.get(name)
    if statement is None:
        table = ReceiptCounter.__table__
        assert isinstance(table, Table)
        insert = dialect_insert(name)(table)
        statement = _NEXT_NUMBER[name] = insert.on_conflict_do_update(
            index_elements=_COUNTER_KEY, set_={"last_number": table.c.last_number + 1}
        ).returning(table.c.last_number)
    return statement


async def take_next_number(
    session: AsyncSession, *, merchant_id: str, livemode: bool, template: str, series: str, year: int
) -> int:
    values = {
        "merchant_id": merchant_id,
        "livemode": livemode,
        "template": template,
        "series": series,
        "year": year,
        "last_number": 1,
    }
    return int((await session.execute(_next_number_statement(session), values)).scalar_one())


async def settings_of(session: AsyncSession, merchant_id: str) -> ReceiptSettings | None:
    return await session.get(ReceiptSettings, merchant_id)


async def settings_for_update(session: AsyncSession, merchant_id: str) -> ReceiptSettings | None:
    stmt = (
        select(ReceiptSettings)
        .where(ReceiptSettings.merchant_id == merchant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def add(session: AsyncSession, row: ReceiptSettings | Receipt) -> None:
    session.add(row)


async def any_for_payment(session: AsyncSession, payment_id: str) -> bool:
    stmt = select(Receipt.id).where(Receipt.payment_id == payment_id).limit(1)
    return (await session.execute(stmt)).first() is not None


async def issued_for_payment(session: AsyncSession, payment_id: str) -> Receipt | None:
    """The payment's receipt in force (the caller holds the payment's row lock, which orders its changes)."""
    stmt = (
        select(Receipt)
        .where(Receipt.payment_id == payment_id, Receipt.status == ReceiptStatus.issued)
        .order_by(Receipt.issued_at.desc(), Receipt.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get(session: AsyncSession, scope: MerchantScope, receipt_id: str) -> Receipt | None:
    stmt = select(Receipt).where(
        Receipt.id == receipt_id, Receipt.merchant_id == scope.merchant_id, Receipt.livemode == scope.livemode
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_id(session: AsyncSession, receipt_id: str) -> Receipt | None:
    return await session.get(Receipt, receipt_id)


async def by_lookup_code(session: AsyncSession, lookup_code: str) -> Receipt | None:
    return (await session.execute(select(Receipt).where(Receipt.lookup_code == lookup_code))).scalar_one_or_none()


@dataclass(frozen=True)
class ReceiptFilters:
    payment_id: str | None = None
    status: ReceiptStatus | None = None


async def list_page(
    session: AsyncSession, scope: MerchantScope, filters: ReceiptFilters, limit: int, starting_after: str | None
) -> tuple[list[Receipt], bool]:
    stmt = select(Receipt).where(Receipt.merchant_id == scope.merchant_id, Receipt.livemode == scope.livemode)
    if filters.payment_id is not None:
        stmt = stmt.where(Receipt.payment_id == filters.payment_id)
    if filters.status is not None:
        stmt = stmt.where(Receipt.status == filters.status)
    return await keyset_page(session, stmt, Receipt.id, limit, starting_after)


async def ids_for_payments(session: AsyncSession, payment_ids: list[str]) -> list[str]:
    """The receipts of these payments, oldest first (a bill's `receipts`: the receipts of the payments that paid
    it)."""
    if not payment_ids:
        return []
    stmt = select(Receipt.id).where(Receipt.payment_id.in_(payment_ids)).order_by(Receipt.id)
    return list((await session.execute(stmt)).scalars())
