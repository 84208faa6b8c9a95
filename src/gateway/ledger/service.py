"""The double-entry ledger: balanced transactions, posted once per (kind, source), never changed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import insert_ignoring_conflict
from gateway.ledger.models import LedgerEntry, LedgerTransaction
from gateway.runtime import Runtime


class Direction(StrEnum):
    debit = "debit"
    credit = "credit"


class LedgerKind(StrEnum):
    payment_received = "payment_received"
    refund_succeeded = "refund_succeeded"


class LedgerImbalance(Exception):
    pass


@dataclass(frozen=True)
class Posting:
    account: str
    direction: Direction
    amount: int


def provider_clearing(provider: str) -> str:
    """Funds held at (or moving through) a provider on the merchants' behalf."""
    return f"provider_clearing:{provider}"


def merchant_payable(merchant_id: str) -> str:
    """What the gateway's collections owe each merchant."""
    return f"merchant_payable:{merchant_id}"


def check_balanced(postings: list[Posting]) -> None:
    if len(postings) < 2:
        raise LedgerImbalance("a ledger transaction needs at least two entries")
    if any(p.amount <= 0 for p in postings):
        raise LedgerImbalance("ledger amounts are positive; the direction carries the sign")
    debits = sum(p.amount for p in postings if p.direction is Direction.debit)
    credits = sum(p.amount for p in postings if p.direction is Direction.credit)
    if debits != credits:
        raise LedgerImbalance(f"debits {debits} != credits {credits}")


async def post_transaction(
    session: AsyncSession,
    rt: Runtime,
    *,
    kind: LedgerKind,
    source: str,
    merchant_id: str,
    livemode: bool,
    currency: str,
    postings: list[Posting],
    payment_id: str | None = None,
    refund_id: str | None = None,
) -> bool:
    """Post once. False when (kind, source) was already posted: the caller is seeing a repeat."""
    check_balanced(postings)
    transaction_id = rt.ids.new("ltx")
    inserted = await insert_ignoring_conflict(
        session,
        LedgerTransaction,
        {
            "id": transaction_id,
            "merchant_id": merchant_id,
            "livemode": livemode,
            "kind": kind.value,
            "source": source,
            "currency": currency,
            "payment_id": payment_id,
            "refund_id": refund_id,
            "created_at": rt.clock.now(),
        },
        ["kind", "source"],
    )
    if not inserted:
        return False
    session.add_all(
        LedgerEntry(
            transaction_id=transaction_id,
            account=p.account,
            direction=p.direction.value,
            amount=p.amount,
            currency=currency,
        )
        for p in postings
    )
    return True


def receipt_postings(provider: str, merchant_id: str, amount: int) -> list[Posting]:
    return [
        Posting(provider_clearing(provider), Direction.debit, amount),
        Posting(merchant_payable(merchant_id), Direction.credit, amount),
    ]


def refund_postings(provider: str, merchant_id: str, amount: int) -> list[Posting]:
    return [
        Posting(merchant_payable(merchant_id), Direction.debit, amount),
        Posting(provider_clearing(provider), Direction.credit, amount),
    ]


@dataclass(frozen=True)
class Imbalance:
    transaction_id: str
    currency: str
    debits: int
    credits: int


async def find_imbalances(session: AsyncSession) -> list[Imbalance]:
    """Every ledger transaction whose debits and credits differ, or that has fewer than two entries."""
    signed = func.sum(LedgerEntry.amount).filter(LedgerEntry.direction == Direction.debit.value)
    credited = func.sum(LedgerEntry.amount).filter(LedgerEntry.direction == Direction.credit.value)
    rows = await session.execute(
        select(LedgerTransaction.id, LedgerEntry.currency, signed, credited, func.count(LedgerEntry.id))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id, isouter=True)
        .group_by(LedgerTransaction.id, LedgerEntry.currency)
    )
    problems = []
    for tx_id, currency, debits, credits, count in rows:
        if (debits or 0) != (credits or 0) or count < 2:
            problems.append(Imbalance(tx_id, currency or "", debits or 0, credits or 0))
    return problems


@dataclass(frozen=True)
class CurrencyBalance:
    currency: str
    collected: int
    refunded: int

    @property
    def net(self) -> int:
        return self.collected - self.refunded


async def merchant_balances(session: AsyncSession, merchant_id: str, livemode: bool) -> list[CurrencyBalance]:
    rows = await session.execute(
        select(LedgerTransaction.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(
            LedgerTransaction.merchant_id == merchant_id,
            LedgerTransaction.livemode == livemode,
            LedgerEntry.account == merchant_payable(merchant_id),
        )
        .group_by(LedgerTransaction.kind, LedgerEntry.currency)
    )
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"collected": 0, "refunded": 0})
    for kind, currency, amount in rows:
        if kind == LedgerKind.payment_received.value:
            totals[currency]["collected"] += int(amount)
        elif kind == LedgerKind.refund_succeeded.value:
            totals[currency]["refunded"] += int(amount)
    return [CurrencyBalance(c, t["collected"], t["refunded"]) for c, t in sorted(totals.items())]
