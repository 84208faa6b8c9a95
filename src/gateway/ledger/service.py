"""The double-entry ledger: balanced transactions, posted once per (kind, source), never changed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.clock import isoformat
from gateway.ledger import repository
from gateway.ledger.models import Direction, LedgerKind, LedgerTransaction
from gateway.refunds.repository import ensure_visible
from gateway.runtime import Runtime

__all__ = ["Direction", "LedgerKind"]


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


def partner_clearing(partner_code: str) -> str:
    """Funds a collection partner (a bank, an intermediary, a telco) took for the merchants and settles to them."""
    return f"partner_clearing:{partner_code}"


def merchant_payable(merchant_id: str) -> str:
    """What the gateway's collections owe each merchant."""
    return f"merchant_payable:{merchant_id}"


def customer_credit(merchant_id: str) -> str:
    """Credit the merchant holds for its customers' next bills (§11): the sum of their balances."""
    return f"customer_credit:{merchant_id}"


def counter_cash(merchant_id: str) -> str:
    """Money taken at the merchant's counters (§13): cash and card-POS slips a cashier recorded."""
    return f"counter:{merchant_id}"


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
    inserted = await repository.insert_transaction(
        session,
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
    )
    if not inserted:
        return False
    repository.add_entries(
        session, transaction_id, currency, [(p.account, p.direction.value, p.amount) for p in postings]
    )
    return True


def receipt_postings(held_at: str, merchant_id: str, amount: int) -> list[Posting]:
    """Funds received into `held_at` (a provider's clearing account or the merchant's counter)."""
    return [
        Posting(held_at, Direction.debit, amount),
        Posting(merchant_payable(merchant_id), Direction.credit, amount),
    ]


def refund_postings(held_at: str, merchant_id: str, amount: int) -> list[Posting]:
    return [
        Posting(merchant_payable(merchant_id), Direction.debit, amount),
        Posting(held_at, Direction.credit, amount),
    ]


@dataclass(frozen=True)
class Imbalance:
    transaction_id: str
    currency: str
    debits: int
    credits: int


async def find_imbalances(session: AsyncSession) -> list[Imbalance]:
    """Every ledger transaction whose debits and credits differ, or that has fewer than two entries."""
    problems = []
    for tx_id, currency, debits, credits, count in await repository.sums_per_transaction(session):
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
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"collected": 0, "refunded": 0})
    rows = await repository.account_totals(session, merchant_id, livemode, merchant_payable(merchant_id))
    for kind, currency, amount in rows:
        if kind == LedgerKind.payment_received.value:
            totals[currency]["collected"] += int(amount)
        elif kind == LedgerKind.refund_succeeded.value:
            totals[currency]["refunded"] += int(amount)
    return [CurrencyBalance(c, t["collected"], t["refunded"]) for c, t in sorted(totals.items())]


def transaction_object(t: LedgerTransaction, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": t.id,
        "object": "ledger_transaction",
        "kind": t.kind,
        "payment_id": t.payment_id,
        "refund_id": t.refund_id,
        "created_at": isoformat(t.created_at),
        "entries": entries,
    }


async def list_transactions(
    session: AsyncSession,
    scope: MerchantScope,
    *,
    payment_id: str | None,
    refund_id: str | None,
    limit: int,
    starting_after: str | None,
) -> tuple[list[dict[str, Any]], bool]:
    """A page of the merchant's ledger transactions as documents, newest first, and whether more follow."""
    await ensure_visible(session, scope, payment_id=payment_id, refund_id=refund_id)
    page, has_more = await repository.transactions_page(session, scope, payment_id, refund_id, limit, starting_after)
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in await repository.entries_of(session, [t.id for t in page]):
        entries[entry.transaction_id].append(
            {"account": entry.account, "direction": entry.direction, "amount": entry.amount, "currency": entry.currency}
        )
    return [transaction_object(t, entries[t.id]) for t in page], has_more


async def count_transactions(session: AsyncSession) -> int:
    return await repository.count_transactions(session)
