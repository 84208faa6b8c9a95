"""Every SQL statement about the ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.db import insert_ignoring_conflict
from gateway.ledger.models import Direction, LedgerEntry, LedgerTransaction
from gateway.pagination import keyset_page


async def insert_transaction(session: AsyncSession, values: dict[str, object]) -> bool:
    """False when (kind, source) was already posted."""
    return await insert_ignoring_conflict(session, LedgerTransaction, values, ["kind", "source"])


def add_entries(session: AsyncSession, transaction_id: str, currency: str, entries: list[tuple[str, str, int]]) -> None:
    session.add_all(
        LedgerEntry(
            transaction_id=transaction_id, account=account, direction=direction, amount=amount, currency=currency
        )
        for account, direction, amount in entries
    )


async def sums_per_transaction(
    session: AsyncSession,
) -> Sequence[Row[str, str, int, int, int]]:
    """Per transaction and currency: the debits, the credits and how many entries."""
    debited = func.sum(LedgerEntry.amount).filter(LedgerEntry.direction == Direction.debit.value)
    credited = func.sum(LedgerEntry.amount).filter(LedgerEntry.direction == Direction.credit.value)
    rows = await session.execute(
        select(LedgerTransaction.id, LedgerEntry.currency, debited, credited, func.count(LedgerEntry.id))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id, isouter=True)
        .group_by(LedgerTransaction.id, LedgerEntry.currency)
    )
    return rows.all()


async def account_totals(
    session: AsyncSession, merchant_id: str, livemode: bool, account: str
) -> Sequence[Row[str, str, int]]:
    """Per kind and currency, the sum posted to one account of a merchant."""
    rows = await session.execute(
        select(LedgerTransaction.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(
            LedgerTransaction.merchant_id == merchant_id,
            LedgerTransaction.livemode == livemode,
            LedgerEntry.account == account,
        )
        .group_by(LedgerTransaction.kind, LedgerEntry.currency)
    )
    return rows.all()


async def transactions_page(
    session: AsyncSession,
    scope: MerchantScope,
    payment_id: str | None,
    refund_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[LedgerTransaction], bool]:
    stmt = select(LedgerTransaction).where(
        LedgerTransaction.merchant_id == scope.merchant_id, LedgerTransaction.livemode == scope.livemode
    )
    if payment_id is not None:
        stmt = stmt.where(LedgerTransaction.payment_id == payment_id)
    if refund_id is not None:
        stmt = stmt.where(LedgerTransaction.refund_id == refund_id)
    return await keyset_page(session, stmt, LedgerTransaction.id, limit, starting_after)


async def entries_of(session: AsyncSession, transaction_ids: list[str]) -> list[LedgerEntry]:
    if not transaction_ids:
        return []
    found = await session.execute(
        select(LedgerEntry).where(LedgerEntry.transaction_id.in_(transaction_ids)).order_by(LedgerEntry.id)
    )
    return list(found.scalars())


async def count_transactions(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(LedgerTransaction.id)))).scalar_one())
