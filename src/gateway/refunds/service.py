"""Refunds: reserve under the payment's row lock, ask the provider outside any transaction, settle once."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import (
    PaymentAdapter,
    ProviderDeclinedError,
    ProviderTechnicalError,
    RefundOutcome,
    RefundResult,
    Refunds,
    StartRefund,
)
from gateway.auth_types import MerchantScope
from gateway.bills.allocation import take_back
from gateway.clock import isoformat
from gateway.db import UnitOfWork
from gateway.domain import EventType, PaymentMethod, PaymentStatus, RefundStatus
from gateway.errors import AmountExceedsRefundable, InvalidState, NotFound, RefundNotSupported
from gateway.events.service import record_event
from gateway.ledger import service as ledger
from gateway.merchants.credentials import context_for
from gateway.payments import repository as payments
from gateway.payments.models import Payment
from gateway.payments.service import COUNTER, funds_account
from gateway.receipts import service as receipts
from gateway.refunds import repository
from gateway.refunds.models import Refund
from gateway.refunds.schemas import RefundCreate
from gateway.runtime import Runtime
from gateway.status_checks import first_check

log = structlog.get_logger("gateway.refunds")

_EVENT_OF = {RefundStatus.succeeded: EventType.refund_succeeded, RefundStatus.failed: EventType.refund_failed}


def refund_object(r: Refund) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "refund",
        "livemode": r.livemode,
        "payment_id": r.payment_id,
        "amount": r.amount,
        "currency": r.currency,
        "status": r.status,
        "reason": r.reason,
        "failure_code": r.failure_code,
        "failure_message": r.failure_message,
        "metadata": r.metadata_,
        "created_at": isoformat(r.created_at),
        "updated_at": isoformat(r.updated_at),
    }


async def _emit(session: AsyncSession, rt: Runtime, refund: Refund, type: EventType) -> None:
    await record_event(
        session,
        rt,
        merchant_id=refund.merchant_id,
        livemode=refund.livemode,
        type=type,
        obj=refund_object(refund),
        payment_id=refund.payment_id,
        refund_id=refund.id,
    )


def _refunds_of(adapter: PaymentAdapter) -> Refunds:
    if not isinstance(adapter, Refunds):
        raise RefundNotSupported(f"Provider {adapter.name} cannot refund.")
    return adapter


async def _reserve(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, params: RefundCreate
) -> tuple[Refund, Payment, PaymentAdapter | None]:
    # The payment's row lock serialises every refund of it: concurrent requests cannot together exceed
    # what was received (on SQLite the IMMEDIATE transaction's write lock does the same).
    payment = await payments.get_for_update(session, scope, params.payment_id)
    if payment is None:
        raise NotFound(f"No payment {params.payment_id}.")
    if payment.status != PaymentStatus.succeeded:
        raise InvalidState(f"Payment {payment.id} is {payment.status}; only succeeded payments can be refunded.")
    if payment.method is PaymentMethod.partner:
        raise RefundNotSupported(
            f"Payment {payment.id} is a partner's collection: the partner reverses it (POST /v1/collect/reversals)."
        )
    # A counter payment is refunded in cash at the counter: no provider to ask.
    adapter = None if payment.provider == COUNTER else rt.registry.get(payment.provider)
    if adapter is not None:
        _refunds_of(adapter)
    refundable = payment.amount_received - await repository.reserved_amount(session, payment.id)
    amount = params.amount if params.amount is not None else refundable
    if amount <= 0 or amount > refundable:
        raise AmountExceedsRefundable(
            f"Refund of {amount} exceeds the {max(refundable, 0)} {payment.currency} still refundable."
        )
    if adapter is not None and amount != payment.amount_received and not adapter.capabilities.partial_refunds:
        raise RefundNotSupported(f"Provider {adapter.name} only refunds the whole amount received.")
    refund = await _add_pending(session, rt, payment, amount, params.reason, dict(params.metadata))
    return refund, payment, adapter


async def _add_pending(
    session: AsyncSession, rt: Runtime, payment: Payment, amount: int, reason: str | None, metadata: dict[str, str]
) -> Refund:
    now = rt.clock.now()
    refund = Refund(
        id=rt.ids.new("re"),
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        payment_id=payment.id,
        provider=payment.provider,
        amount=amount,
        currency=payment.currency,
        status=RefundStatus.pending,
        reason=reason,
        metadata_=metadata,
        provider_attempted_at=now,
        # Checked from the start: a refund orphaned by a crash after this commit is still settled.
        next_status_check_at=first_check(now),
        created_at=now,
        updated_at=now,
    )
    session.add(refund)
    await session.flush()
    await _emit(session, rt, refund, EventType.refund_created)
    rt.metrics.refund_transitions.labels("pending").inc()
    return refund


async def reverse_payment(session: AsyncSession, rt: Runtime, payment: Payment, reason: str) -> Refund:
    """A partner's same-day reversal of its collection (§12): everything received is given back at once (the
    partner returns it to its payer), so the ledger gets its reversing entries, the allocations are taken back and
    the receipt is canceled — in the caller's transaction, which holds the payment's row lock."""
    if payment.status != PaymentStatus.succeeded:
        raise InvalidState(f"Payment {payment.id} is {payment.status}; only succeeded payments can be reversed.")
    amount = payment.amount_received - await repository.reserved_amount(session, payment.id)
    if amount <= 0:
        raise InvalidState(f"Payment {payment.id} has nothing left to reverse.")
    refund = await _add_pending(session, rt, payment, amount, reason, {})
    await settle_refund(session, rt, payment, refund, succeeded=True)
    return refund


async def create_refund(
    uow: UnitOfWork, rt: Runtime, scope: MerchantScope, params: RefundCreate, resume_id: str | None = None
) -> Refund:
    """Create (or, after a crash, resume) a refund; `resume_id` is the refund the same request created."""
    session = uow.session
    if resume_id is None:
        refund, payment, reserved_with = await _reserve(session, rt, scope, params)
        if reserved_with is None:  # paid out at the counter, now
            await settle_refund(session, rt, payment, refund, succeeded=True)
            return refund
        adapter = reserved_with
    else:
        found = await repository.get(session, scope, resume_id)
        if found is None:
            raise NotFound(f"No refund {resume_id}.")
        if found.status != RefundStatus.pending or found.provider_reference is not None:
            return found
        refund, adapter = found, rt.registry.get(found.provider)
        found_payment = await payments.get(session, scope, refund.payment_id)
        assert found_payment is not None
        payment = found_payment
    provider_transaction_id, payer = await payments.first_receipt(session, payment.id)
    request = StartRefund(
        refund_id=refund.id,
        payment_id=payment.id,
        amount=refund.amount,
        currency=refund.currency,
        payment_amount_received=payment.amount_received,
        payment_provider_reference=payment.provider_reference,
        payment_provider_data=payment.provider_data,
        payer=payer,
        reason=refund.reason,
        provider_transaction_id=provider_transaction_id,
        payment_created_at=payment.created_at,
    )
    ctx = await context_for(session, rt, adapter, scope.merchant_id, scope.livemode)
    refund_id = refund.id
    await uow.checkpoint(refund_id)
    outcome: RefundResult | ProviderDeclinedError | ProviderTechnicalError
    try:
        outcome = await _refunds_of(adapter).refund(ctx, request)
    except (ProviderDeclinedError, ProviderTechnicalError) as exc:
        log.warning("provider.refund_failed", refund_id=refund_id, provider=adapter.name, error=str(exc))
        outcome = exc
    session = await uow.resume()
    payment_locked = await payments.lock_by_id(session, request.payment_id)
    refund_locked = await repository.lock(session, refund_id)
    assert payment_locked is not None and refund_locked is not None
    await apply_refund_outcome(session, rt, payment_locked, refund_locked, outcome)
    return refund_locked


async def apply_refund_outcome(
    session: AsyncSession,
    rt: Runtime,
    payment: Payment,
    refund: Refund,
    outcome: RefundResult | ProviderDeclinedError | ProviderTechnicalError,
) -> None:
    if isinstance(outcome, ProviderDeclinedError):
        await settle_refund(
            session,
            rt,
            payment,
            refund,
            succeeded=False,
            failure_code=outcome.code,
            failure_message=outcome.message,
        )
    elif isinstance(outcome, ProviderTechnicalError):
        if outcome.certainly_not_created:
            await settle_refund(
                session,
                rt,
                payment,
                refund,
                succeeded=False,
                failure_code="provider_unavailable",
                failure_message=str(outcome),
            )
        else:  # the provider may have the transfer: pending until it says (or the janitor asks)
            _schedule_check(rt, refund)
    else:
        if outcome.provider_reference and refund.provider_reference is None:
            refund.provider_reference = outcome.provider_reference
            refund.updated_at = rt.clock.now()
        if outcome.status is RefundOutcome.pending:
            _schedule_check(rt, refund)
        else:
            await settle_refund(
                session,
                rt,
                payment,
                refund,
                succeeded=outcome.status is RefundOutcome.succeeded,
                failure_code=outcome.failure_code,
                failure_message=outcome.failure_message,
            )


def _schedule_check(rt: Runtime, refund: Refund) -> None:
    if refund.status == RefundStatus.pending and refund.next_status_check_at is None:
        refund.next_status_check_at = first_check(rt.clock.now())


async def settle_refund(
    session: AsyncSession,
    rt: Runtime,
    payment: Payment,
    refund: Refund,
    *,
    succeeded: bool,
    provider_reference: str | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> bool:
    """pending → succeeded | failed, once; the caller holds the payment's and the refund's row locks.

    One exception protects money: a provider confirming a refund already marked failed (a transfer that went
    out after all) makes it succeed late, posted to the ledger, rather than being dropped.
    """
    late = refund.status == RefundStatus.failed and succeeded
    if refund.status != RefundStatus.pending and not late:
        return False
    refund.updated_at = rt.clock.now()
    refund.next_status_check_at = None
    if provider_reference and refund.provider_reference is None:
        refund.provider_reference = provider_reference
    if succeeded:
        await ledger.post_transaction(
            session,
            rt,
            kind=ledger.LedgerKind.refund_succeeded,
            source=f"refund:{refund.id}",
            merchant_id=refund.merchant_id,
            livemode=refund.livemode,
            currency=refund.currency,
            postings=ledger.refund_postings(funds_account(payment), refund.merchant_id, refund.amount),
            payment_id=payment.id,
            refund_id=refund.id,
        )
        refund.status = RefundStatus.succeeded
        refund.failure_code = refund.failure_message = None
        payment.amount_refunded += refund.amount
        payment.updated_at = refund.updated_at
        if payment.customer_id is not None:
            await take_back(
                session,
                rt,
                customer_id=payment.customer_id,
                payment_id=payment.id,
                refund_id=refund.id,
                amount=refund.amount,
            )
        await receipts.after_refund(session, rt, payment)
        if late:
            log.warning("refund.late_success", refund_id=refund.id, payment_id=payment.id)
    else:
        refund.status = RefundStatus.failed
        refund.failure_code = failure_code or "refund_failed"
        refund.failure_message = (failure_message or "The provider could not refund")[:255]
    status = refund.status
    await _emit(session, rt, refund, _EVENT_OF[status])
    rt.metrics.refund_transitions.labels(status).inc()
    log.info(f"refund.{status}", refund_id=refund.id, payment_id=payment.id)
    return True


async def get_refund(session: AsyncSession, scope: MerchantScope, refund_id: str) -> Refund:
    refund = await repository.get(session, scope, refund_id)
    if refund is None:
        raise NotFound(f"No refund {refund_id}.")
    return refund
