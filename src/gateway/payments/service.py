"""The payment state machine and everything that changes a payment.

Every source of truth — an API call, a provider notification, the janitor, the sweeper, a test helper —
changes a payment's status through `change_status` and records money through `record_funds_received`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import (
    PaymentAdapter,
    ProviderContext,
    ProviderDeclinedError,
    ProviderStatus,
    ProviderTechnicalError,
    StartPayment,
    StartResult,
)
from gateway.adapters.registry import UnknownProvider
from gateway.auth_types import MerchantScope
from gateway.clock import isoformat
from gateway.db import UnitOfWork
from gateway.domain import EventType, PaymentMethod, PaymentStatus
from gateway.errors import (
    AmountOutOfRange,
    CurrencyNotSupported,
    InvalidState,
    MethodNotAvailable,
    NotFound,
    ProviderUnavailable,
    ValidationFailed,
)
from gateway.events.service import record_event
from gateway.ledger import service as ledger
from gateway.merchants.credentials import context_for
from gateway.payments import repository
from gateway.payments.models import Payment
from gateway.payments.schemas import PaymentConfirm, PaymentCreate
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.payments")

S = PaymentStatus
_ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.requires_confirmation: frozenset(
        {S.requires_action, S.processing, S.succeeded, S.failed, S.canceled, S.expired}
    ),
    S.requires_action: frozenset({S.processing, S.succeeded, S.failed, S.canceled, S.expired}),
    S.processing: frozenset({S.requires_action, S.succeeded, S.failed}),
    # Terminal. The one way out: funds a provider confirms after the payment ended are never dropped.
    S.canceled: frozenset({S.succeeded}),
    S.expired: frozenset({S.succeeded}),
    S.succeeded: frozenset(),
    S.failed: frozenset(),
}
_EVENT_OF = {
    S.requires_action: EventType.payment_requires_action,
    S.processing: EventType.payment_processing,
    S.succeeded: EventType.payment_succeeded,
    S.failed: EventType.payment_failed,
    S.canceled: EventType.payment_canceled,
    S.expired: EventType.payment_expired,
}
_CANCELABLE = frozenset({S.requires_confirmation, S.requires_action})
_EXPIRABLE = frozenset({S.requires_confirmation, S.requires_action})


def payment_object(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payment",
        "livemode": p.livemode,
        "status": p.status,
        "amount": p.amount,
        "currency": p.currency,
        "amount_received": p.amount_received,
        "amount_refunded": p.amount_refunded,
        "method": p.method,
        "provider": p.provider,
        "provider_reference": p.provider_reference,
        "reference": p.reference,
        "description": p.description,
        "customer": p.customer,
        "metadata": p.metadata_,
        "return_url": p.return_url,
        "next_action": p.next_action if p.status == S.requires_action.value else None,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "expires_at": isoformat(p.expires_at),
        "created_at": isoformat(p.created_at),
        "updated_at": isoformat(p.updated_at),
    }


async def change_status(
    session: AsyncSession,
    rt: Runtime,
    payment: Payment,
    to: PaymentStatus,
    *,
    late: bool = False,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> None:
    current = PaymentStatus(payment.status)
    if to not in _ALLOWED[current] or (current in (S.canceled, S.expired) and not late):
        raise InvalidState(f"Payment {payment.id} is {current.value} and cannot become {to.value}.")
    payment.status = to.value
    payment.updated_at = rt.clock.now()
    if to is S.failed:
        payment.failure_code, payment.failure_message = failure_code, failure_message
    await record_event(
        session,
        rt,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        type=_EVENT_OF[to],
        obj=payment_object(payment),
        payment_id=payment.id,
        late=late,
    )
    rt.metrics.payment_transitions.labels(to.value, payment.method).inc()
    log.info(f"payment.{to.value}", payment_id=payment.id, provider=payment.provider, late=late or None)


def choose_adapter(rt: Runtime, params: PaymentCreate) -> PaymentAdapter:
    if params.provider is not None:
        try:
            adapter = rt.registry.get(params.provider)
        except UnknownProvider:
            raise ValidationFailed.field(
                ["body", "provider"], f"unknown provider {params.provider!r}"
            ) from None
        if params.method not in adapter.capabilities.methods:
            raise ValidationFailed.field(
                ["body", "provider"], f"provider {adapter.name} does not support method {params.method.value}"
            )
        candidates = [adapter]
    else:
        candidates = rt.registry.for_method(PaymentMethod(params.method))
        if not candidates:
            raise MethodNotAvailable(
                f"No provider for method {params.method.value} is available on this gateway."
            )
    by_currency = [a for a in candidates if params.currency in a.capabilities.currencies]
    if not by_currency:
        raise CurrencyNotSupported(f"No {params.method.value} provider accepts {params.currency}.")
    by_amount = [
        a for a in by_currency if a.capabilities.min_amount <= params.amount <= a.capabilities.max_amount
    ]
    if not by_amount:
        raise AmountOutOfRange(f"No {params.method.value} provider accepts an amount of {params.amount}.")
    return by_amount[0]


async def create_payment(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, params: PaymentCreate
) -> Payment:
    adapter = choose_adapter(rt, params)
    now = rt.clock.now()
    payment = Payment(
        id=rt.ids.new("pay"),
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        status=S.requires_confirmation.value,
        amount=params.amount,
        currency=params.currency,
        amount_received=0,
        amount_refunded=0,
        method=params.method.value,
        provider=adapter.name,
        reference=params.reference,
        description=params.description,
        customer=params.customer.model_dump(exclude_none=True) if params.customer else None,
        metadata_=dict(params.metadata),
        return_url=params.return_url,
        provider_data={},
        expires_at=now + timedelta(seconds=params.expires_in),
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    await session.flush()
    return payment


def _start_request(payment: Payment) -> StartPayment:
    return StartPayment(
        payment_id=payment.id,
        amount=payment.amount,
        currency=payment.currency,
        reference=payment.reference,
        description=payment.description,
        customer=payment.customer,
        return_url=payment.return_url,
        expires_at=payment.expires_at,
        created_at=payment.created_at,
    )


StartOutcome = StartResult | ProviderDeclinedError | ProviderTechnicalError


async def _call_start(
    rt: Runtime, adapter: PaymentAdapter, ctx: ProviderContext, payment: Payment
) -> StartOutcome:
    try:
        return await adapter.start_payment(ctx, _start_request(payment))
    except (ProviderDeclinedError, ProviderTechnicalError) as exc:
        log.warning("provider.start_failed", payment_id=payment.id, provider=adapter.name, error=str(exc))
        return exc


async def confirm_payment(
    uow: UnitOfWork, rt: Runtime, scope: MerchantScope, payment_id: str, params: PaymentConfirm | None
) -> Payment:
    """requires_confirmation → whatever the provider says. A provider reached over the network is called
    outside any transaction, after the attempt is committed, so a crash there is resumed by a retry."""
    payment = await _locked(uow.session, scope, payment_id)
    if payment.status != S.requires_confirmation.value:
        raise InvalidState(
            f"Payment {payment.id} is {payment.status}; only requires_confirmation can be confirmed."
        )
    if params is not None:
        if params.customer is not None:
            payment.customer = params.customer.model_dump(exclude_none=True)
        if params.return_url is not None:
            payment.return_url = params.return_url
    adapter = rt.registry.get(payment.provider)
    ctx = await context_for(uow.session, rt, adapter, scope.merchant_id, scope.livemode)
    if adapter.capabilities.offline_start:
        await apply_start_outcome(uow.session, rt, payment, await _call_start(rt, adapter, ctx, payment))
        return payment
    payment.provider_attempted_at = payment.updated_at = rt.clock.now()
    await uow.checkpoint(payment.id)
    outcome = await _call_start(rt, adapter, ctx, payment)
    session = await uow.resume()
    payment = await _locked(session, scope, payment_id)
    if payment.status == S.requires_confirmation.value:  # else a notification got there first
        await apply_start_outcome(session, rt, payment, outcome)
    return payment


async def apply_start_outcome(
    session: AsyncSession, rt: Runtime, payment: Payment, outcome: StartOutcome
) -> None:
    if isinstance(outcome, ProviderDeclinedError):
        await change_status(
            session, rt, payment, S.failed, failure_code=outcome.code, failure_message=outcome.message[:255]
        )
        return
    if isinstance(outcome, ProviderTechnicalError):
        if outcome.certainly_not_created:
            raise ProviderUnavailable(
                f"{payment.provider} could not be reached; retry with the same Idempotency-Key."
            )
        # The provider may have created the charge: never fail on a guess; the janitor will ask it.
        await change_status(session, rt, payment, S.processing)
        return
    payment.provider_reference = outcome.provider_reference
    payment.next_action = outcome.next_action
    payment.provider_data = {**payment.provider_data, **outcome.provider_data}
    if outcome.status is ProviderStatus.succeeded:
        await record_funds_received(
            session, rt, payment, payment.amount, f"{payment.provider}:{outcome.provider_reference}"
        )
    elif outcome.status is ProviderStatus.failed:
        await change_status(
            session,
            rt,
            payment,
            S.failed,
            failure_code=outcome.failure_code or "declined",
            failure_message=outcome.failure_message,
        )
    else:
        await change_status(session, rt, payment, S(outcome.status.value))


async def cancel_payment(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, payment_id: str
) -> Payment:
    payment = await _locked(session, scope, payment_id)
    await expire_if_due(session, rt, payment)
    if PaymentStatus(payment.status) not in _CANCELABLE:
        raise InvalidState(f"Payment {payment.id} is {payment.status} and cannot be canceled.")
    await change_status(session, rt, payment, S.canceled)
    return payment


async def expire_if_due(session: AsyncSession, rt: Runtime, payment: Payment) -> bool:
    """Expire a payable payment whose time is up (the caller holds its row lock)."""
    if PaymentStatus(payment.status) in _EXPIRABLE and payment.expires_at <= rt.clock.now():
        await change_status(session, rt, payment, S.expired)
        return True
    return False


async def record_funds_received(
    session: AsyncSession, rt: Runtime, payment: Payment, amount: int, source: str
) -> bool:
    """Money the provider confirmed, posted once per `source`; False when this source was already posted.

    Less than owed keeps the payment open (payment.partially_paid); more succeeds and keeps the surplus;
    funds for an expired or canceled payment make it succeed late rather than be dropped.
    """
    posted = await ledger.post_transaction(
        session,
        rt,
        kind=ledger.LedgerKind.payment_received,
        source=source,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        currency=payment.currency,
        postings=ledger.receipt_postings(payment.provider, payment.merchant_id, amount),
        payment_id=payment.id,
    )
    if not posted:
        return False
    payment.amount_received += amount
    payment.updated_at = rt.clock.now()
    status = PaymentStatus(payment.status)
    if status is S.succeeded:
        log.info("payment.surplus_received", payment_id=payment.id, amount=amount)
        return True
    late = status in (S.canceled, S.expired)
    if late or payment.amount_received >= payment.amount:
        await change_status(session, rt, payment, S.succeeded, late=late)
    else:
        await record_event(
            session,
            rt,
            merchant_id=payment.merchant_id,
            livemode=payment.livemode,
            type=EventType.payment_partially_paid,
            obj=payment_object(payment),
            payment_id=payment.id,
        )
        log.info("payment.partially_paid", payment_id=payment.id, received=payment.amount_received)
    return True


async def decline_payment(
    session: AsyncSession, rt: Runtime, payment: Payment, failure_code: str, failure_message: str
) -> bool:
    """The provider reports the payer's attempt failed; False if the payment had already ended."""
    if PaymentStatus(payment.status).is_terminal:
        return False
    await change_status(
        session, rt, payment, S.failed, failure_code=failure_code, failure_message=failure_message[:255]
    )
    return True


async def get_payment(session: AsyncSession, rt: Runtime, scope: MerchantScope, payment_id: str) -> Payment:
    payment = await repository.get(session, scope, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.")
    if PaymentStatus(payment.status) in _EXPIRABLE and payment.expires_at <= rt.clock.now():
        # Never show a stale payment as payable, even before the sweeper gets to it.
        payment = await _locked(session, scope, payment_id)
        await expire_if_due(session, rt, payment)
    return payment


async def _locked(session: AsyncSession, scope: MerchantScope, payment_id: str) -> Payment:
    payment = await repository.get_for_update(session, scope, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.")
    return payment


async def expire_due_payments(rt: Runtime, batch: int = 100) -> int:
    """One sweep: expire every payable payment past its time, each in its own short transaction."""
    async with rt.db.transaction() as session:
        ids = await repository.ids_due_for_expiry(session, rt.clock.now(), batch)
    expired = 0
    for payment_id in ids:
        async with rt.db.transaction() as session:
            payment = await repository.lock_by_id(session, payment_id)
            if payment is not None and await expire_if_due(session, rt, payment):
                expired += 1
    return expired
