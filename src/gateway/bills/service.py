"""The bill state machine and bills' documents.

A bill's status follows from its money: `open` (nothing paid) → `partially_paid` → `paid`, and back when a
refund takes money away; `void` (only without money) ends it. `apply_to_bill` is the one place it changes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills import repository
from gateway.bills.models import Allocation, Bill
from gateway.bills.schemas import BillCreate
from gateway.clock import isoformat
from gateway.customers import repository as customers
from gateway.customers.models import Customer
from gateway.domain import BillStatus, EventType
from gateway.errors import BillNumberTaken, InvalidState, NotFound, ValidationFailed
from gateway.events.service import record_event
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.bills")

_EVENT_OF = {BillStatus.partially_paid: EventType.bill_partially_paid, BillStatus.paid: EventType.bill_paid}


def bill_object(bill: Bill, allocations: list[Allocation], receipt_ids: list[str]) -> dict[str, Any]:
    return {
        "id": bill.id,
        "object": "bill",
        "livemode": bill.livemode,
        "customer": bill.customer_id,
        "number": bill.number,
        "amount": bill.amount,
        "currency": bill.currency,
        "description": bill.description,
        "period": bill.period,
        "due_date": bill.due_date.isoformat() if bill.due_date else None,
        "lines": bill.lines,
        "amount_rule": bill.amount_rule,
        "metadata": bill.metadata_,
        "status": bill.status,
        "amount_paid": bill.amount_paid,
        "amount_remaining": max(bill.amount - bill.amount_paid, 0) if bill.status != BillStatus.void else 0,
        "paid_at": isoformat(bill.paid_at) if bill.paid_at else None,
        "allocations": [
            {"payment_id": a.payment_id, "amount": a.amount, "created_at": isoformat(a.created_at)} for a in allocations
        ],
        "receipts": receipt_ids,
        "created_at": isoformat(bill.created_at),
        "updated_at": isoformat(bill.updated_at),
    }


def status_for(bill: Bill) -> BillStatus:
    if bill.status == BillStatus.void:
        return BillStatus.void
    if bill.amount_paid <= 0:
        return BillStatus.open
    return BillStatus.paid if bill.amount_paid >= bill.amount else BillStatus.partially_paid


async def apply_to_bill(
    session: AsyncSession, rt: Runtime, bill: Bill, delta: int, allocations: list[Allocation]
) -> None:
    """Money on (delta > 0) or taken off (delta < 0) the bill, the caller holding its customer's lock; emits the
    bill's event when its status changes. `allocations` are the bill's rows, for the event's document."""
    if bill.status == BillStatus.void:
        raise ValueError(f"bill {bill.id} is void and takes no money")
    now = rt.clock.now()
    bill.amount_paid += delta
    bill.updated_at = now
    before, after = bill.status, status_for(bill)
    if after == before:
        return
    bill.status = after
    bill.paid_at = now if after == BillStatus.paid else None
    log.info(f"bill.{after}", bill_id=bill.id, amount_paid=bill.amount_paid)
    event = _EVENT_OF.get(after)
    if event is not None:
        await record_event(
            session,
            rt,
            merchant_id=bill.merchant_id,
            livemode=bill.livemode,
            type=event,
            obj=bill_object(bill, allocations, []),
        )


async def bill_documents(session: AsyncSession, bills: list[Bill]) -> list[dict[str, Any]]:
    """The bills' documents with their allocation rows and the receipts of the payments that paid them."""
    rows = await repository.allocations_of_bills(session, [b.id for b in bills])
    by_bill: dict[str, list[Allocation]] = defaultdict(list)
    for row in rows:
        by_bill[str(row.bill_id)].append(row)
    payment_ids = sorted({r.payment_id for r in rows if r.payment_id is not None})
    receipts_by_payment: dict[str, list[str]] = defaultdict(list)
    for receipt_id, payment_id in await repository.receipts_of_payments(session, payment_ids):
        receipts_by_payment[payment_id].append(receipt_id)
    documents = []
    for bill in bills:
        allocations = by_bill[bill.id]
        paid_by = {a.payment_id for a in allocations if a.payment_id is not None}
        receipts = sorted(r for payment_id in paid_by for r in receipts_by_payment[payment_id])
        documents.append(bill_object(bill, allocations, receipts))
    return documents


async def bill_document(session: AsyncSession, bill: Bill) -> dict[str, Any]:
    (document,) = await bill_documents(session, [bill])
    return document


async def _customer_named(session: AsyncSession, scope: MerchantScope, params: BillCreate) -> Customer:
    """The bill's customer, locked: its lock orders the new bill with allocations of the customer's money, so a
    transfer arriving meanwhile either sees this bill or left its money in the balance this bill then takes."""
    if isinstance(params.customer, str):
        found = await customers.get(session, scope, params.customer, lock=True)
        missing = f"No customer {params.customer}."
    else:
        found = await customers.by_code(session, scope, params.customer.code, lock=True)
        missing = f"No customer with code {params.customer.code!r}."
    if found is None:
        raise ValidationFailed(missing, errors=[{"loc": ["body", "customer"], "msg": "no such customer"}])
    return found


async def create_bill(session: AsyncSession, rt: Runtime, scope: MerchantScope, params: BillCreate) -> Bill:
    """A new open bill, `bill.created`; a customer with a balance pays it from that at once (rule 3)."""
    customer = await _customer_named(session, scope, params)
    if params.currency != customer.currency:
        raise ValidationFailed.field(["body", "currency"], f"the customer's bills are in {customer.currency}")
    taken = BillNumberTaken(
        f"A bill numbered {params.number!r} already exists.",
        errors=[{"loc": ["body", "number"], "msg": "already taken"}],
    )
    if await repository.number_taken(session, scope, params.number):
        raise taken
    now = rt.clock.now()
    bill = Bill(
        id=rt.ids.new("bill"),
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        customer_id=customer.id,
        number=params.number,
        amount=params.amount,
        currency=params.currency,
        description=params.description,
        period=params.period,
        due_date=params.due_date,
        lines=[line.model_dump() for line in params.lines] if params.lines is not None else None,
        amount_rule=params.amount_rule,
        metadata_=params.metadata,
        status=BillStatus.open,
        amount_paid=0,
        created_at=now,
        updated_at=now,
    )
    if not await repository.flush_unless_number_taken(session, scope, bill):
        raise taken
    log.info("bill.created", bill_id=bill.id, customer_id=customer.id, amount=bill.amount)
    await record_event(
        session,
        rt,
        merchant_id=bill.merchant_id,
        livemode=bill.livemode,
        type=EventType.bill_created,
        obj=bill_object(bill, [], []),
    )
    if customer.balance > 0:
        # Imported here: allocation builds on this module's state machine (apply_to_bill).
        from gateway.bills.allocation import apply_balance

        await apply_balance(session, rt, customer.id, [bill])
        await session.flush()
    return bill


async def get_bill(session: AsyncSession, scope: MerchantScope, bill_id: str) -> Bill:
    bill = await repository.get(session, scope, bill_id)
    if bill is None:
        raise NotFound(f"No bill {bill_id}.")
    return bill


async def list_bills(
    session: AsyncSession,
    scope: MerchantScope,
    filters: repository.BillFilters,
    limit: int,
    starting_after: str | None,
) -> tuple[list[Bill], bool]:
    return await repository.list_page(session, scope, filters, limit, starting_after)


async def void_bill(session: AsyncSession, rt: Runtime, scope: MerchantScope, bill_id: str) -> Bill:
    """Only a bill with no money on it; a void bill is never payable again. Emits `bill.voided`."""
    found = await get_bill(session, scope, bill_id)
    await customers.lock_by_id(session, found.customer_id)  # the customer's lock first, then the bill's
    bill = await repository.lock_by_id(session, bill_id)
    assert bill is not None  # bills are never deleted
    if bill.status == BillStatus.void:
        raise InvalidState(f"Bill {bill_id} is already void.")
    if bill.amount_paid > 0 or bill.status != BillStatus.open:
        raise InvalidState(f"Bill {bill_id} is {bill.status} with {bill.amount_paid} paid: it cannot be voided.")
    now = rt.clock.now()
    bill.status = BillStatus.void
    bill.voided_at = bill.updated_at = now
    log.info("bill.voided", bill_id=bill.id)
    document = await bill_document(session, bill)
    await record_event(
        session, rt, merchant_id=bill.merchant_id, livemode=bill.livemode, type=EventType.bill_voided, obj=document
    )
    return bill
