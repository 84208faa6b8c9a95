"""The bill state machine and bills' documents.

A bill's status follows from its money: `open` (nothing paid) → `partially_paid` → `paid`, and back when a
refund takes money away; `void` (only without money) ends it. `apply_to_bill` is the one place it changes.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.bills.models import Allocation, Bill
from gateway.clock import isoformat
from gateway.domain import BillStatus, EventType
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
