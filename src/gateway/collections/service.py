"""The partners' bill API (§12): inquiry, collection, status and same-day reversal, each in the caller's one
transaction, and the raw request kept for audit in a transaction of its own.

A collection is a succeeded payment (`payments.service.record_partner_collection`): the allocation, the ledger
posting, the events and the receipt are written with the collection row. A reversal is a refund of everything
received that succeeds at once (`refunds.service.reverse_payment`). Locks are taken in the order every other
path takes them: a collection's row, then its payment, then the customer, then the bills.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills import repository as bills_repo
from gateway.bills.models import Bill
from gateway.clock import isoformat, vietnam_time
from gateway.collections import repository
from gateway.collections.models import Collection
from gateway.collections.schemas import CollectionCreate, InquiryRequest, ReversalCreate
from gateway.customers import repository as customers
from gateway.customers.models import Customer
from gateway.domain import CollectionStatus, EventType, PartnerKind
from gateway.errors import (
    BillerNotFound,
    BillNotPayable,
    CustomerNotFound,
    DuplicateTransaction,
    InvalidState,
    NotFound,
    ReversalWindowClosed,
    TestModeDisabled,
)
from gateway.events.service import record_event
from gateway.masking import mask_name
from gateway.partners.models import Partner, PartnerRequest
from gateway.payments import repository as payments_repo
from gateway.payments import service as payments
from gateway.receipts import repository as receipts_repo
from gateway.refunds import service as refunds
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.collections")

# Of a request whose signature did not hold, only this much is kept: anyone can post, so the audit must not be a
# free store (as for provider callbacks).
UNVERIFIED_AUDIT_BYTES = 4096
_UNVERIFIED_HEADER_CHARS = 256
_AUDITED_HEADERS = ("content-type", "user-agent", "x-forwarded-for")
_SHOWS_FULL_NAMES = (PartnerKind.telco, PartnerKind.platform)


@dataclass(frozen=True)
class Answer:
    status: int
    document: dict[str, Any]
    collection_id: str | None = None


def collection_object(c: Collection, biller_code: str, customer_code: str) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "collection",
        "livemode": c.livemode,
        "status": c.status,
        "partner_id": c.partner_id,
        "partner_transaction_id": c.partner_transaction_id,
        "biller_code": biller_code,
        "customer_code": customer_code,
        "payment_id": c.payment_id,
        "amount": c.amount,
        "currency": c.currency,
        "channel": c.channel,
        "allocations": [{"bill_number": a["bill_number"], "amount": a["amount"]} for a in c.allocations],
        "balance_added": c.balance_added,
        "receipt_number": c.receipt_number,
        "paid_at": isoformat(c.paid_at),
        "reversed_at": isoformat(c.reversed_at) if c.reversed_at else None,
        "reversal_reason": c.reversal_reason,
        "created_at": isoformat(c.created_at),
    }


@dataclass(frozen=True)
class _Biller:
    scope: MerchantScope  # the merchant's objects in the partner's mode: a test partner sees test objects only
    code: str


async def _biller(session: AsyncSession, rt: Runtime, partner: Partner, biller_code: str) -> _Biller:
    if not partner.livemode and not rt.settings.sandbox:
        raise TestModeDisabled("Test mode is disabled on this gateway (GATEWAY_SANDBOX=false).")
    merchant = await repository.biller_for_partner(session, partner.id, biller_code)
    if merchant is None:
        raise BillerNotFound(f"No biller {biller_code} collects through this partner.")
    return _Biller(MerchantScope(merchant.id, partner.livemode), merchant.biller_code or biller_code.upper())


async def _customer(session: AsyncSession, scope: MerchantScope, code: str) -> Customer:
    customer = await customers.by_code(session, scope, code)
    if customer is None:
        raise CustomerNotFound(f"The biller has no customer {code}.")
    return customer


def _shown_name(partner: Partner, name: str) -> str:
    if partner.kind in _SHOWS_FULL_NAMES and partner.shows_full_names:
        return name
    return mask_name(name)


# --- inquiry -------------------------------------------------------------------------------------------------


async def inquire(session: AsyncSession, rt: Runtime, partner: Partner, params: InquiryRequest) -> Answer:
    """Read only, three indexed queries after the signature's: the biller, the customer, its payable bills."""
    biller = await _biller(session, rt, partner, params.biller_code)
    customer = await _customer(session, biller.scope, params.customer_code)
    payable = await repository.payable_bills(session, customer.id)
    bills = [
        {
            "number": b.number,
            "period": b.period,
            "due_date": b.due_date.isoformat() if b.due_date else None,
            "amount_remaining": b.amount - b.amount_paid,
            "amount_rule": b.amount_rule,
        }
        for b in payable
    ]
    document = {
        "object": "bill_inquiry",
        "customer": {"code": customer.code, "name": _shown_name(partner, customer.name)},
        "bills": bills,
        "total_due": sum(b.amount - b.amount_paid for b in payable),
        "balance": customer.balance,
    }
    return Answer(200, document)


# --- collection ----------------------------------------------------------------------------------------------


async def collect(
    session: AsyncSession, rt: Runtime, partner: Partner, params: CollectionCreate, request_hash: str
) -> Answer:
    """201 with a new collection; 200 with the same one for a replay of the same body; 409 for another body.

    Two requests racing with one transaction id: the second waits for the first's customer lock (the same
    customer) and finds its collection, or (another customer) is refused by the unique key and answers from the
    winner's row — its own work, all in one savepoint, undone."""
    found = await repository.collection_of_partner(session, partner.id, params.partner_transaction_id)
    if found is not None:
        return _replay(*found, request_hash)
    biller = await _biller(session, rt, partner, params.biller_code)
    customer = await _customer(session, biller.scope, params.customer_code)
    try:
        async with session.begin_nested():
            return await _accept(session, rt, partner, biller, customer, params, request_hash)
    except IntegrityError:
        found = await repository.collection_of_partner(session, partner.id, params.partner_transaction_id)
        if found is None:
            raise
        log.info("collection.race_lost", partner_id=partner.id, collection_id=found[0].id)
        return _replay(*found, request_hash)


def _replay(collection: Collection, biller_code: str, customer_code: str, request_hash: str) -> Answer:
    if collection.request_hash != request_hash:
        raise DuplicateTransaction(
            f"Transaction {collection.partner_transaction_id} was accepted with another body as {collection.id}."
        )
    return Answer(200, collection_object(collection, biller_code, customer_code), collection.id)


async def _accept(
    session: AsyncSession,
    rt: Runtime,
    partner: Partner,
    biller: _Biller,
    found: Customer,
    params: CollectionCreate,
    request_hash: str,
) -> Answer:
    # The customer first, then its bills: the order allocation and every payment for a bill take them in.
    customer = await customers.lock_by_id(session, found.id)
    assert customer is not None
    raced = await repository.collection_of_partner(session, partner.id, params.partner_transaction_id)
    if raced is not None:  # the same request, committed while this one waited for the lock
        return _replay(*raced, request_hash)
    scope = biller.scope
    bills = await _named_bills(session, scope, customer, params.bill_numbers or [])
    if bills:
        payments.check_amount_for_bills(bills, params.amount)
    payer = params.payer.model_dump(exclude_none=True) if params.payer else None
    payment = await payments.record_partner_collection(
        session,
        rt,
        partner_id=partner.id,
        partner_code=partner.code,
        customer=customer,
        bills=bills,
        amount=params.amount,
        partner_channel=params.channel,
        partner_transaction_id=params.partner_transaction_id,
        payer=payer or None,
    )
    await session.flush()
    allocations, balance_added = await _allocations_of(session, payment.id)
    receipt = await receipts_repo.issued_for_payment(session, payment.id)
    now = rt.clock.now()
    collection = Collection(
        id=rt.ids.new("col"),
        partner_id=partner.id,
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        partner_transaction_id=params.partner_transaction_id,
        request_hash=request_hash,
        status=CollectionStatus.accepted,
        payment_id=payment.id,
        customer_id=customer.id,
        amount=params.amount,
        currency=payment.currency,
        channel=params.channel,
        allocations=allocations,
        balance_added=balance_added,
        receipt_number=receipt.number if receipt is not None else None,
        payer=payer or None,
        paid_at=params.paid_at,
        created_at=now,
        updated_at=now,
    )
    session.add(collection)
    await session.flush()
    log.info(
        "collection.accepted",
        collection_id=collection.id,
        partner_id=partner.id,
        payment_id=payment.id,
        amount=params.amount,
        channel=params.channel,
    )
    return Answer(201, collection_object(collection, biller.code, customer.code), collection.id)


async def _named_bills(
    session: AsyncSession, scope: MerchantScope, customer: Customer, numbers: Sequence[str]
) -> list[Bill]:
    """The bills a collection names, locked, in the order named: each the customer's and payable."""
    if not numbers:
        return []
    by_number = await repository.bills_by_numbers(session, scope, numbers)
    named: list[Bill] = []
    for number in numbers:
        bill = by_number.get(number)
        if bill is None or bill.customer_id != customer.id:
            raise NotFound(f"Customer {customer.code} has no bill {number}.")
        locked = await bills_repo.lock_by_id(session, bill.id)
        assert locked is not None
        if not locked.status.is_payable:
            raise BillNotPayable(f"Bill {locked.number} is {locked.status} and takes no payment.")
        named.append(locked)
    return named


async def _allocations_of(session: AsyncSession, payment_id: str) -> tuple[list[dict[str, Any]], int]:
    """What the payment's funds did, from the allocation journal: each bill's share (in allocation order), and
    what went to the customer's balance."""
    per_bill: dict[str, int] = defaultdict(int)
    to_balance = 0
    for row in await bills_repo.allocations_of_payment(session, payment_id):
        if row.bill_id is None:
            to_balance += row.amount
        else:
            per_bill[row.bill_id] += row.amount
    numbers = {b.id: b.number for b in await bills_repo.bills_by_ids(session, list(per_bill))}
    shares = [{"bill_number": numbers[bill_id], "amount": amount} for bill_id, amount in per_bill.items() if amount]
    return shares, to_balance


# --- status and reversal -------------------------------------------------------------------------------------


async def collection_status(session: AsyncSession, partner: Partner, partner_transaction_id: str) -> Answer:
    found = await repository.collection_of_partner(session, partner.id, partner_transaction_id)
    if found is None:
        raise NotFound(f"No collection with partner_transaction_id {partner_transaction_id}.")
    collection, biller_code, customer_code = found
    return Answer(200, collection_object(collection, biller_code, customer_code), collection.id)


async def reverse(session: AsyncSession, rt: Runtime, partner: Partner, params: ReversalCreate) -> Answer:
    """The same Vietnam business day only: the money is given back, the allocations undone, the receipt canceled,
    reversing ledger entries posted, and `collection.reversed` emitted — in one transaction."""
    found = await repository.collection_of_partner(session, partner.id, params.partner_transaction_id, lock=True)
    if found is None:
        raise NotFound(f"No collection with partner_transaction_id {params.partner_transaction_id}.")
    collection, biller_code, customer_code = found
    if collection.status is CollectionStatus.reversed:
        raise InvalidState(f"Collection {collection.id} is already reversed.")
    now = rt.clock.now()
    if vietnam_time(collection.created_at).date() != vietnam_time(now).date():
        raise ReversalWindowClosed(
            f"Collection {collection.id} was accepted on {vietnam_time(collection.created_at).date()} (Vietnam "
            "time): only the same business day may reverse it."
        )
    payment = await payments_repo.lock_by_id(session, collection.payment_id)
    assert payment is not None
    refund = await refunds.reverse_payment(session, rt, payment, params.reason)
    collection.status = CollectionStatus.reversed
    collection.reversed_at = collection.updated_at = now
    collection.reversal_reason = params.reason
    collection.refund_id = refund.id
    document = collection_object(collection, biller_code, customer_code)
    await record_event(
        session,
        rt,
        merchant_id=collection.merchant_id,
        livemode=collection.livemode,
        type=EventType.collection_reversed,
        obj=document,
        payment_id=payment.id,
        refund_id=refund.id,
    )
    log.info("collection.reversed", collection_id=collection.id, partner_id=partner.id, refund_id=refund.id)
    return Answer(200, document, collection.id)


# --- audit ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    """A request to /v1/collect as it arrived: what the audit keeps (the signature, never the secret)."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    claimed_partner_id: str | None
    received_at: datetime


def add_answered_request(session: AsyncSession, rt: Runtime, request: ReceivedRequest, answer: Answer) -> None:
    """Keep a signed request that was answered with success in the transaction that did its work: the collection
    and the request that made it are committed together (one commit instead of two on the hot path)."""
    repository.add_request(
        session, _audit_row(rt, request, True, answer.status, answer.collection_id, answer.collection_id)
    )


async def record_request(
    rt: Runtime,
    request: ReceivedRequest,
    *,
    verified: bool,
    status_code: int,
    outcome: str | None,
    collection_id: str | None,
) -> None:
    """Keep a refused request with its answer, in a transaction of its own (the request's rolled back). Best effort: a
    failure here is logged, and never changes the partner's answer."""
    try:
        async with rt.db.transaction() as session:
            repository.add_request(session, _audit_row(rt, request, verified, status_code, outcome, collection_id))
    except Exception:
        log.exception("partner_request.audit_failed", partner_id=request.claimed_partner_id, path=request.path)


def _audit_row(
    rt: Runtime,
    request: ReceivedRequest,
    verified: bool,
    status_code: int,
    outcome: str | None,
    collection_id: str | None,
) -> PartnerRequest:
    """The whole request when its signature held, else a bounded prefix."""
    body = request.body
    headers = {k: v for k, v in request.headers.items() if k in _AUDITED_HEADERS or k.startswith("x-")}
    if not verified:
        body = body[:UNVERIFIED_AUDIT_BYTES]
        headers = {k[:64]: v[:_UNVERIFIED_HEADER_CHARS] for k, v in list(headers.items())[:32]}
    return PartnerRequest(
        id=rt.ids.new("preq"),
        partner_id=request.claimed_partner_id,
        verified=verified,
        http_method=request.method[:8],
        path=request.path[:300].replace("\x00", ""),
        headers={k.replace("\x00", ""): v.replace("\x00", "") for k, v in headers.items()},
        body=body.decode("utf-8", errors="replace").replace("\x00", "\\u0000"),  # PostgreSQL text takes no NUL
        status_code=status_code,
        outcome=(outcome or None) and outcome[:64],
        collection_id=collection_id,
        received_at=request.received_at,
    )
