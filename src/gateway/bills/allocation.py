"""Where a customer's money goes (§11) — the one allocation path every source of funds calls: a payment made
for a bill, a static-QR transfer, a counter payment, a partner's or a telco's collection.

1. funds of a payment made for a bill go to that bill, up to what remains (a collection naming several bills: to
   each in the order named, each up to what remains);
2. funds for the customer without a bill named go to its payable bills, oldest due date first;
3. what is left becomes the customer's balance, which a new bill takes at once.
A refund takes money back from the balance first, then from the payment's bills, newest allocation first.

Every movement is a row of the allocation journal, written with the bill's or balance's change and its ledger
posting in the caller's transaction, under the customer's row lock (taken before any bill's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.bills import repository
from gateway.bills.models import Allocation, Bill
from gateway.bills.service import apply_to_bill
from gateway.customers import repository as customers
from gateway.customers.models import Customer
from gateway.customers.service import customer_document
from gateway.domain import AllocationKind, BillStatus, EventType
from gateway.events.service import record_event
from gateway.ledger import service as ledger
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.allocation")


@dataclass(frozen=True)
class FundsForCustomer:
    """Money just recorded for a customer: whose payment, how much, and the bill it was made for (if any) — or the
    bills, in order, a partner's collection named (`bill_ids`)."""

    payment_id: str
    customer_id: str
    amount: int
    currency: str
    bill_id: str | None = None
    bill_ids: tuple[str, ...] = ()

    @property
    def named_bills(self) -> tuple[str, ...]:
        return self.bill_ids or ((self.bill_id,) if self.bill_id is not None else ())


@dataclass(frozen=True)
class Allocated:
    """What one allocation did: each bill's share, and what went to the balance."""

    bills: list[tuple[Bill, int]]
    balance_added: int


class _Journal:
    """The rows of one allocation, and the bills' rows for their events."""

    def __init__(self, session: AsyncSession, rt: Runtime, customer: Customer) -> None:
        self.session, self.rt, self.customer = session, rt, customer
        self.rows: list[Allocation] = []

    def row(
        self,
        kind: AllocationKind,
        amount: int,
        payment_id: str | None,
        bill: Bill | None = None,
        refund_id: str | None = None,
    ) -> Allocation:
        c = self.customer
        row = Allocation(
            id=self.rt.ids.new("alc"),
            merchant_id=c.merchant_id,
            livemode=c.livemode,
            customer_id=c.id,
            payment_id=payment_id,
            bill_id=bill.id if bill else None,
            refund_id=refund_id,
            kind=kind,
            amount=amount,
            currency=c.currency,
            created_at=self.rt.clock.now(),
        )
        self.rows.append(row)
        self.session.add(row)
        return row

    async def to_bill(self, bill: Bill, row: Allocation) -> None:
        stored = await repository.allocations_of_bills(self.session, [bill.id])
        known = {r.id for r in stored}
        # This journal's rows may not be flushed yet: the bill's event lists them all the same.
        mine = [r for r in self.rows if r.bill_id == bill.id and r.id not in known]
        await apply_to_bill(self.session, self.rt, bill, row.amount, [*stored, *mine])

    async def balance_changed(self, delta: int, kind: ledger.LedgerKind, source: str, payment_id: str | None) -> None:
        """The customer's balance moved by `delta`; the ledger moves it between the merchant's payable and its
        customers' credit account."""
        c = self.customer
        c.balance += delta
        c.updated_at = self.rt.clock.now()
        payable, credit = ledger.merchant_payable(c.merchant_id), ledger.customer_credit(c.merchant_id)
        to, frm = (credit, payable) if delta > 0 else (payable, credit)
        await ledger.post_transaction(
            self.session,
            self.rt,
            kind=kind,
            source=source,
            merchant_id=c.merchant_id,
            livemode=c.livemode,
            currency=c.currency,
            postings=[
                ledger.Posting(frm, ledger.Direction.debit, abs(delta)),
                ledger.Posting(to, ledger.Direction.credit, abs(delta)),
            ],
            payment_id=payment_id,
        )
        await record_event(
            self.session,
            self.rt,
            merchant_id=c.merchant_id,
            livemode=c.livemode,
            type=EventType.customer_balance_changed,
            obj=await customer_document(self.session, self.rt, c),
            payment_id=payment_id,
        )
        log.info("customer.balance_changed", customer_id=c.id, delta=delta, balance=c.balance)


async def _locked_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await customers.lock_by_id(session, customer_id)
    if customer is None:
        raise LookupError(f"customer {customer_id} does not exist")
    return customer


async def allocate_funds(session: AsyncSession, rt: Runtime, funds: FundsForCustomer) -> Allocated:
    """Rules 1 to 3 for money just received (the caller posted the receipt itself to the ledger)."""
    customer = await _locked_customer(session, funds.customer_id)
    journal = _Journal(session, rt, customer)
    left = funds.amount
    shares: list[tuple[Bill, int]] = []
    if funds.named_bills:
        targets = []
        for bill_id in funds.named_bills:
            bill = await repository.lock_by_id(session, bill_id)
            if bill is not None and bill.status.is_payable:
                targets.append(bill)
    else:
        targets = await repository.payable_bills_for_update(session, customer.id)
    for bill in targets:
        take = min(left, bill.amount - bill.amount_paid)
        if take <= 0:
            continue
        await journal.to_bill(bill, journal.row(AllocationKind.bill, take, funds.payment_id, bill))
        shares.append((bill, take))
        left -= take
        if left == 0:
            break
    if left > 0:
        row = journal.row(AllocationKind.credit, left, funds.payment_id)
        await journal.balance_changed(
            left, ledger.LedgerKind.customer_credit_added, f"alloc:{row.id}", funds.payment_id
        )
    log.info(
        "funds.allocated",
        payment_id=funds.payment_id,
        customer_id=customer.id,
        bills=len(shares),
        balance_added=left,
    )
    return Allocated(shares, left)


async def apply_balance(session: AsyncSession, rt: Runtime, customer_id: str, bills: Sequence[Bill]) -> None:
    """Rule 3: new bills of a customer with a balance take it at once, in allocation order (the caller just
    created them). Each share is attributed to the payments the credit came from, oldest first."""
    customer = await _locked_customer(session, customer_id)
    if customer.balance <= 0:
        return
    journal = _Journal(session, rt, customer)
    credits = await repository.credit_by_payment(session, customer.id)
    ordered = sorted(
        (b for b in bills if b.status.is_payable),
        key=lambda b: (b.due_date is None, b.due_date or b.created_at.date(), b.created_at, b.id),
    )
    available = customer.balance
    used_total = 0
    for bill in ordered:
        need = min(bill.amount - bill.amount_paid, available)
        while need > 0 and credits:
            payment_id, held = credits[0]
            take = min(need, held)
            journal.row(AllocationKind.credit_applied, -take, payment_id)
            await journal.to_bill(bill, journal.row(AllocationKind.credit_applied, take, payment_id, bill))
            need -= take
            available -= take
            used_total += take
            credits[0] = (payment_id, held - take)
            if credits[0][1] == 0:
                credits.pop(0)
        if available == 0 or not credits:
            break
    if used_total:
        await journal.balance_changed(
            -used_total, ledger.LedgerKind.customer_credit_applied, f"apply:{journal.rows[0].id}", None
        )


async def take_back(
    session: AsyncSession, rt: Runtime, *, customer_id: str, payment_id: str, refund_id: str, amount: int
) -> None:
    """A refund of `amount` succeeded: take it from the customer's balance first, then from the payment's bills
    (newest allocation first), then — only when the balance it had once funded was spent elsewhere — from the
    customer's other bills, newest first. A paid bill becomes partially_paid or open again."""
    customer = await _locked_customer(session, customer_id)
    journal = _Journal(session, rt, customer)
    from_balance = min(customer.balance, amount)
    if from_balance > 0:
        row = journal.row(AllocationKind.refund, -from_balance, payment_id, refund_id=refund_id)
        await journal.balance_changed(
            -from_balance, ledger.LedgerKind.customer_credit_refunded, f"refund:{row.id}", payment_id
        )
    left = amount - from_balance
    if left <= 0:
        return
    rows = await repository.bill_allocations_of_customer(session, customer.id)
    net: dict[str, int] = defaultdict(int)
    newest: dict[str, str] = {}
    own: set[str] = set()
    for r in rows:
        assert r.bill_id is not None
        net[r.bill_id] += r.amount
        newest[r.bill_id] = r.id
        if r.payment_id == payment_id and r.amount > 0:
            own.add(r.bill_id)
    # The payment's own bills first, then the rest; newest allocation first in each.
    order = sorted(net, key=lambda b: (b not in own, _desc(newest[b])))
    bills = {b.id: b for b in await repository.bills_by_ids(session, order)}
    for bill_id in order:
        bill = bills[bill_id]
        if bill.status == BillStatus.void:
            continue
        locked = await repository.lock_by_id(session, bill_id)
        assert locked is not None
        take = min(left, net[bill_id], locked.amount_paid)
        if take <= 0:
            continue
        await journal.to_bill(locked, journal.row(AllocationKind.refund, -take, payment_id, locked, refund_id))
        left -= take
        if left == 0:
            return
    log.error("refund.take_back_short", payment_id=payment_id, refund_id=refund_id, missing=left)


def _desc(allocation_id: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in allocation_id)
