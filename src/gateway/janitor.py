"""Settles payments and refunds whose provider notification has not arrived, by asking the provider.

Every answer becomes the same provider event a notification would have carried and goes through
`apply_provider_event`: one state machine, one ledger path, and a notification that arrives after the query
is a duplicate, never a second credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from gateway.adapters.base import (
    FundsReceived,
    PaymentDeclined,
    PaymentLookup,
    ProviderContext,
    ProviderCredentials,
    ProviderDeclinedError,
    ProviderEvent,
    ProviderStatus,
    ProviderTechnicalError,
    RefundLookup,
    RefundOutcome,
    Refunds,
    RefundSettled,
    StatusQuery,
)
from gateway.adapters.registry import UnknownProvider
from gateway.errors import GatewayError
from gateway.merchants.credentials import context_for
from gateway.notifications.service import apply_provider_event
from gateway.payments import repository as payments_repo
from gateway.payments.models import Payment
from gateway.payments.repository import first_receipt
from gateway.refunds import repository as refunds_repo
from gateway.refunds.models import Refund
from gateway.runtime import Runtime
from gateway.status_checks import next_check

log = structlog.get_logger("gateway.janitor")

# After a payment expires the payer may still have paid at the provider: keep asking for a day.
GRACE_AFTER_EXPIRY = timedelta(hours=24)


@dataclass(frozen=True)
class _Due:
    id: str
    ctx: ProviderContext


async def _claim(rt: Runtime, model: type[Payment] | type[Refund], batch: int) -> list[_Due]:
    """Pick due rows and move their next check on before anything is asked, so two janitors (or a crash
    half-way) never ask twice at once; the provider is then asked holding no transaction."""
    now = rt.clock.now()
    async with rt.db.transaction() as session:
        skip_locked = not rt.db.is_sqlite
        rows: list[Payment] | list[Refund]
        if model is Payment:
            rows = await payments_repo.due_for_status_check(session, now, batch, skip_locked=skip_locked)
        else:
            rows = await refunds_repo.due_for_status_check(session, now, batch, skip_locked=skip_locked)
        due: list[_Due] = []
        for row in rows:
            row.status_checks += 1
            row.next_status_check_at = next_check(now, row.status_checks)
            if isinstance(row, Payment) and now > row.expires_at + GRACE_AFTER_EXPIRY:
                row.next_status_check_at = None
            try:
                ctx = await context_for(session, rt, rt.registry.get(row.provider), row.merchant_id, row.livemode)
            except GatewayError as exc:  # e.g. test mode off, credentials removed: skip it, never jam the rest
                log.warning("janitor.no_credentials", id=row.id, provider=row.provider, error=exc.code)
                continue
            except UnknownProvider:  # a counter's or a partner's: nobody to ask, ever
                row.next_status_check_at = None
                log.warning("janitor.no_provider", id=row.id, provider=row.provider)
                continue
            due.append(_Due(row.id, ctx))
        return due


async def check_payments_once(rt: Runtime, batch: int = 50) -> int:
    settled = 0
    for due in await _claim(rt, Payment, batch):
        async with rt.db.transaction() as session:
            payment = await session.get(Payment, due.id)
            assert payment is not None
            lookup = PaymentLookup(
                payment.id, payment.provider_reference, payment.provider_data, payment.amount, payment.created_at
            )
            adapter = rt.registry.get(payment.provider)
        if not isinstance(adapter, StatusQuery):
            continue
        references = [r for r in (payment.provider_reference, payment.id) if r]
        try:
            status = await adapter.fetch_status(due.ctx, lookup)
        except (ProviderTechnicalError, ProviderDeclinedError) as exc:
            log.warning("janitor.query_failed", payment_id=due.id, provider=adapter.name, error=str(exc)[:200])
            continue
        events: Sequence[ProviderEvent] = []
        if status.status is ProviderStatus.succeeded and status.provider_transaction_id:
            events = [
                FundsReceived(
                    status.provider_transaction_id,
                    references,
                    status.amount_received,
                    payment.currency,
                    provider_data=status.provider_data,
                )
            ]
        elif status.status is ProviderStatus.failed:
            events = [
                PaymentDeclined(
                    status.provider_transaction_id or f"{payment.id}:query",
                    references,
                    status.failure_code or "declined",
                    status.failure_message or "The provider reports the payment failed",
                )
            ]
        settled += await _apply(rt, adapter.name, due.ctx.credentials, events, due.id)
    return settled


async def check_refunds_once(rt: Runtime, batch: int = 50) -> int:
    settled = 0
    for due in await _claim(rt, Refund, batch):
        async with rt.db.transaction() as session:
            refund = await session.get(Refund, due.id)
            assert refund is not None
            payment = await session.get(Payment, refund.payment_id)
            assert payment is not None
            transaction_id, _payer = await first_receipt(session, payment.id)
            lookup = RefundLookup(
                refund.id,
                payment.id,
                refund.amount,
                refund.provider_reference,
                payment.provider_reference,
                payment.provider_data,
                transaction_id,
                refund.created_at,
                payment.amount_received,
            )
            adapter = rt.registry.get(refund.provider)
        if not isinstance(adapter, Refunds):
            continue
        try:
            result = await adapter.fetch_refund_status(due.ctx, lookup)
        except (ProviderTechnicalError, ProviderDeclinedError) as exc:
            log.warning("janitor.refund_query_failed", refund_id=due.id, provider=adapter.name, error=str(exc)[:200])
            continue
        if result.status is RefundOutcome.pending:
            continue
        event = RefundSettled(
            refund.id,
            result.provider_reference,
            result.status is RefundOutcome.succeeded,
            result.failure_code,
            result.failure_message,
        )
        settled += await _apply(rt, adapter.name, due.ctx.credentials, [event], due.id)
    return settled


async def _apply(
    rt: Runtime, provider: str, creds: ProviderCredentials, events: Sequence[ProviderEvent], row_id: str
) -> int:
    if not events:
        return 0
    adapter = rt.registry.get(provider)
    async with rt.db.transaction() as session:
        results = [await apply_provider_event(session, rt, adapter, creds, event) for event in events]
    log.info("janitor.settled", id=row_id, provider=provider, outcomes=[r.outcome for r in results])
    return 1
