"""Provider callbacks: verify with the account's own secret, apply through the one state machine, keep
the raw callback for audit, and answer in the provider's expected format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import (
    AcknowledgesRequest,
    FundsReceived,
    InboundRequest,
    NotificationRejected,
    NotificationUnusable,
    OutboundResponse,
    PaymentAdapter,
    PaymentDeclined,
    ProviderCredentials,
    ProviderEvent,
    RefundSettled,
    StaticTransferCodes,
)
from gateway.adapters.registry import UnknownProvider
from gateway.customers import repository as customers_repo
from gateway.domain import MAX_AMOUNT, NotificationOutcome, PaymentStatus
from gateway.errors import InvalidSignature, NotFound
from gateway.merchants.credentials import notification_credentials
from gateway.notifications.models import ProviderNotification
from gateway.payments import repository as payments_repo
from gateway.payments import service as payments
from gateway.payments.models import Payment
from gateway.refunds import repository as refunds_repo
from gateway.refunds import service as refunds
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.notifications")


def funds_source(provider: str, livemode: bool, provider_transaction_id: str) -> str:
    """The ledger's dedupe key for money a provider confirmed: the same however it was learned."""
    return f"{'live' if livemode else 'test'}:{provider}:{provider_transaction_id}"


Outcome = NotificationOutcome
_AUDITED_HEADERS = ("content-type", "user-agent", "x-forwarded-for")
# Of a callback nobody signed, only this much is kept: anyone can post, so the audit must not be a free store.
UNVERIFIED_AUDIT_BYTES = 4096
_UNVERIFIED_HEADER_CHARS = 256


async def receive_notification(rt: Runtime, provider: str, inbound: InboundRequest) -> OutboundResponse:
    try:
        adapter = rt.registry.get(provider)
    except UnknownProvider:
        raise NotFound(f"No provider {provider}.") from None
    now = rt.clock.now()
    detail: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    genuine = False
    matched: ProviderCredentials | None = None
    try:
        async with rt.db.transaction() as session:
            candidates = await notification_credentials(session, rt, adapter, adapter.notification_account(inbound))
            verified, matched = _verify(adapter, inbound, candidates, now)
            if isinstance(verified, NotificationUnusable):
                genuine, outcome, detail = True, verified.outcome, verified.reason
                log.warning("notification.unusable", provider=provider, reason=verified.reason)
            elif isinstance(verified, str):
                outcome, detail = Outcome.rejected, verified
            else:
                genuine = True
                assert matched is not None
                results = [await apply_provider_event(session, rt, adapter, matched, event) for event in verified]
                applied = _summarise(results)
                outcome, detail = applied.outcome, applied.detail
                payment_id, refund_id = applied.payment_id, applied.refund_id
            session.add(audit_row(rt, provider, inbound, now, outcome, genuine, detail, payment_id, refund_id))
    except Exception as exc:
        log.exception("notification.failed", provider=provider, error=type(exc).__name__)
        outcome, detail = Outcome.error, type(exc).__name__
        await store_failed_audit(rt, provider, inbound, now, genuine, detail)
    rt.metrics.notifications.labels(provider, outcome).inc()
    log.info(
        "notification.received",
        provider=provider,
        outcome=outcome,
        detail=detail,
        payment_id=payment_id,
        refund_id=refund_id,
    )
    if isinstance(adapter, AcknowledgesRequest):
        return adapter.acknowledge_request(outcome, inbound, matched if genuine else None)
    return adapter.acknowledge(outcome)


def _verify(
    adapter: PaymentAdapter, inbound: InboundRequest, candidates: list[ProviderCredentials], now: datetime
) -> tuple[Sequence[ProviderEvent] | NotificationUnusable | str, ProviderCredentials | None]:
    """The notification's events and the account whose signature matched; or why it cannot be trusted."""
    reason = "no account matches this notification"
    for credentials in candidates:
        try:
            return adapter.verify_notification(inbound, credentials, now), credentials
        except NotificationUnusable as exc:
            return exc, credentials  # this account's signature matched: no other account's can
        except NotificationRejected as exc:
            reason = exc.reason
    return reason, None


@dataclass(frozen=True)
class AppliedEvent:
    """What applying one provider event did: the notification's outcome, and what it touched."""

    outcome: NotificationOutcome
    detail: str | None
    payment_id: str | None
    refund_id: str | None


def _summarise(results: list[AppliedEvent]) -> AppliedEvent:
    if not results:
        return AppliedEvent(Outcome.applied, "nothing to apply", None, None)
    for result in results:
        if result.outcome is not Outcome.applied:
            return result
    return results[0]


async def apply_provider_event(
    session: AsyncSession,
    rt: Runtime,
    adapter: PaymentAdapter,
    creds: ProviderCredentials,
    event: ProviderEvent,
) -> AppliedEvent:
    """What a provider reports, however it was learned (a notification, or the janitor's status query),
    goes through here: the same matching, amount checks, dedupe, state machine and ledger path."""
    if isinstance(event, FundsReceived):
        return await _apply_funds(session, rt, adapter, creds, event)
    if isinstance(event, PaymentDeclined):
        payment = await payments_repo.by_provider_reference(
            session, adapter.name, event.payment_references, creds.livemode, creds.merchant_id, lock=True
        )
        if payment is None:
            return AppliedEvent(Outcome.unmatched, "no matching payment", None, None)
        if adapter.capabilities.accumulates_funds:
            # One failed transfer is a fact about that transfer: the payer may send another, and whatever
            # already arrived stays the payment's.
            log.info(
                "transfer.failed",
                provider=adapter.name,
                payment_id=payment.id,
                failure_code=event.failure_code,
                transaction=event.provider_transaction_id,
            )
            return AppliedEvent(Outcome.applied, "a failed transfer: the payment stays payable", payment.id, None)
        if (
            event.amount is not None
            and not adapter.capabilities.accepts_partial_funds
            and event.amount != payment.amount
        ):
            return AppliedEvent(Outcome.amount_mismatch, f"amount {event.amount} != {payment.amount}", payment.id, None)
        changed = await payments.decline_payment(session, rt, payment, event.failure_code, event.failure_message)
        return AppliedEvent(Outcome.applied if changed else Outcome.duplicate, None, payment.id, None)
    return await _apply_refund(session, rt, adapter, creds, event)


async def _apply_funds(
    session: AsyncSession,
    rt: Runtime,
    adapter: PaymentAdapter,
    creds: ProviderCredentials,
    event: FundsReceived,
) -> AppliedEvent:
    payment = await payments_repo.by_provider_reference(
        session, adapter.name, event.payment_references, creds.livemode, creds.merchant_id, lock=True
    )
    if payment is None and 0 < event.amount <= MAX_AMOUNT:
        payment = await _payment_for_customer(session, rt, adapter, creds, event)
    payment_id = payment.id if payment else None
    if not 0 < event.amount <= MAX_AMOUNT:
        # No payment can carry it and no ledger column can hold it: refused, and not money to keep on record.
        log.warning("funds.impossible_amount", provider=adapter.name, amount=str(event.amount)[:40])
        if payment is None:
            return AppliedEvent(Outcome.unmatched, "no matching payment; impossible amount", None, None)
        return AppliedEvent(Outcome.amount_mismatch, f"impossible amount {str(event.amount)[:40]}", payment_id, None)
    reason: str | None = None
    # Answered as a repeat: the provider must stop sending it, and VNPAY's "02 already confirmed" says so.
    settled_already = False
    if payment is None:
        reason = "no matching payment"
    elif event.account_key and payment.provider_data.get("account_key") not in (None, event.account_key):
        reason, payment, payment_id = "paid into another account than the payment's", None, None
    elif event.currency != payment.currency:
        reason = f"currency {event.currency} differs from the payment's {payment.currency}"
    elif not adapter.capabilities.accepts_partial_funds and event.amount != payment.amount:
        # A card or wallet must charge exactly the amount: anything else is refused, not credited — but the
        # money the provider reports is kept on record for reconciliation.
        reason = f"amount {event.amount} != {payment.amount}"
        await payments_repo.record_received_funds(session, _funds_row(rt, adapter, creds, event, payment, reason))
        return AppliedEvent(Outcome.amount_mismatch, reason, payment.id, None)
    elif payment.status == PaymentStatus.failed:
        reason, settled_already = "the payment had already failed", True
    elif not adapter.capabilities.accumulates_funds and (
        payment.amount_received > 0 or payment.status == PaymentStatus.succeeded
    ):
        # A card or wallet order is paid once: a second charge is the payer's money to give back, not more
        # money for the payment.
        reason, settled_already = "the order was already paid: a second charge, not credited", True
    fresh = await payments_repo.record_received_funds(session, _funds_row(rt, adapter, creds, event, payment, reason))
    if not fresh:
        return AppliedEvent(Outcome.duplicate, "transaction already recorded", payment_id, None)
    if settled_already:
        assert payment is not None
        log.warning(
            "funds.not_credited",
            provider=adapter.name,
            payment_id=payment.id,
            status=payment.status,
            amount=event.amount,
            transaction=event.provider_transaction_id,
            reason=reason,
        )
        return AppliedEvent(Outcome.duplicate, reason, payment.id, None)
    if reason is not None or payment is None:
        log.warning(
            "funds.unmatched",
            provider=adapter.name,
            amount=event.amount,
            reason=reason,
            content=event.content,
        )
        return AppliedEvent(Outcome.unmatched, reason, payment_id, None)
    if event.provider_data:
        # Before the funds: the payment.succeeded event and the receipt show what the provider gave.
        payment.provider_data = {**payment.provider_data, **event.provider_data}
    source = funds_source(adapter.name, creds.livemode, event.provider_transaction_id)
    posted = await payments.record_funds_received(session, rt, payment, event.amount, source)
    return AppliedEvent(Outcome.applied if posted else Outcome.duplicate, None, payment.id, None)


async def _payment_for_customer(
    session: AsyncSession,
    rt: Runtime,
    adapter: PaymentAdapter,
    creds: ProviderCredentials,
    event: FundsReceived,
) -> Payment | None:
    """A transfer naming a customer's payment code (the static QR on its bills) and no payment: a new payment for
    that customer, so its funds are allocated to the customer's bills. Never for a transfer already recorded."""
    if not isinstance(adapter, StaticTransferCodes) or not event.payment_references:
        return None
    customer = await customers_repo.by_payment_codes(
        session, event.payment_references, creds.livemode, creds.merchant_id
    )
    if customer is None or customer.currency != event.currency:
        return None
    if await payments_repo.funds_recorded(session, adapter.name, creds.livemode, event.provider_transaction_id):
        return None  # a repeat of a transfer already turned into a payment: the dedupe below answers it
    (method,) = adapter.capabilities.methods
    return await payments.payment_for_customer_funds(
        session,
        rt,
        customer,
        method=method,
        provider=adapter.name,
        amount=event.amount,
        provider_reference=f"{customer.payment_code}:{event.provider_transaction_id}"[:120],
        provider_data={"account_key": event.account_key, "payment_code": customer.payment_code, "static_qr": True},
        description="Chuyển khoản theo mã khách hàng",
    )


def _funds_row(
    rt: Runtime,
    adapter: PaymentAdapter,
    creds: ProviderCredentials,
    event: FundsReceived,
    payment: Payment | None,
    reason: str | None,
) -> dict[str, object]:
    return {
        "id": rt.ids.new("rcv"),
        "provider": adapter.name,
        "provider_transaction_id": event.provider_transaction_id,
        "livemode": creds.livemode,
        "merchant_id": payment.merchant_id if payment else creds.merchant_id,
        "payment_id": payment.id if payment else None,
        "amount": event.amount,
        "currency": event.currency,
        "status": "unmatched" if reason else "matched",
        "reason": reason[:120] if reason else None,
        "account_key": event.account_key,
        "payer": dict(event.payer),
        "content": event.content.replace("\x00", "") if event.content else None,
        "received_at": rt.clock.now(),
    }


async def _apply_refund(
    session: AsyncSession,
    rt: Runtime,
    adapter: PaymentAdapter,
    creds: ProviderCredentials,
    event: RefundSettled,
) -> AppliedEvent:
    found = await refunds_repo.find(session, event.refund_id, adapter.name, creds.livemode)
    if found is None or (creds.merchant_id is not None and found.merchant_id != creds.merchant_id):
        return AppliedEvent(Outcome.unmatched, "no matching refund", None, None)
    # Lock order everywhere: the payment, then its refund.
    payment = await payments_repo.lock_by_id(session, found.payment_id)
    refund = await refunds_repo.lock(session, found.id)
    assert payment is not None and refund is not None
    changed = await refunds.settle_refund(
        session,
        rt,
        payment,
        refund,
        succeeded=event.succeeded,
        provider_reference=event.provider_reference,
        failure_code=event.failure_code,
        failure_message=event.failure_message,
    )
    return AppliedEvent(Outcome.applied if changed else Outcome.duplicate, None, payment.id, refund.id)


def audit_row(
    rt: Runtime,
    provider: str,
    inbound: InboundRequest,
    now: datetime,
    outcome: NotificationOutcome,
    verified: bool,
    detail: str | None,
    payment_id: str | None,
    refund_id: str | None,
) -> ProviderNotification:
    """The raw callback: whole when its signature was checked, else a bounded prefix (with its real size)."""
    body, query = inbound.body, "&".join(f"{k}={v}" for k, v in inbound.query.items())
    headers = {k: v for k, v in inbound.headers.items() if k in _AUDITED_HEADERS or k.startswith("x-")}
    if not verified:
        cut = [f"body {len(body)} bytes"] if len(body) > UNVERIFIED_AUDIT_BYTES else []
        if len(query) > UNVERIFIED_AUDIT_BYTES:
            cut.append(f"query {len(query)} characters")
        if cut:
            detail = f"{detail or 'unverified'}; kept the first {UNVERIFIED_AUDIT_BYTES} of {', '.join(cut)}"
        body, query = body[:UNVERIFIED_AUDIT_BYTES], query[:UNVERIFIED_AUDIT_BYTES]
        headers = {k: v[:_UNVERIFIED_HEADER_CHARS] for k, v in list(headers.items())[:32]}
    return ProviderNotification(
        id=rt.ids.new("ntf"),
        provider=provider,
        http_method=inbound.method,
        query_string=query.replace("\x00", ""),
        headers=headers,
        body=body.decode("utf-8", errors="replace").replace("\x00", "\\u0000"),  # PostgreSQL text takes no NUL
        verified=verified,
        outcome=outcome,
        detail=(detail or "")[:500] or None,
        payment_id=payment_id,
        refund_id=refund_id,
        received_at=now,
    )


async def store_failed_audit(
    rt: Runtime, provider: str, inbound: InboundRequest, now: datetime, verified: bool, detail: str
) -> None:
    try:
        async with rt.db.transaction() as session:
            session.add(audit_row(rt, provider, inbound, now, Outcome.error, verified, detail, None, None))
    except Exception:
        log.exception("notification.audit_failed", provider=provider)


@dataclass(frozen=True)
class ReturnVisit:
    """Where to send the payer's browser after the provider's page: never a change of state."""

    payment_id: str
    status: PaymentStatus
    return_url: str | None


async def verify_browser_return(rt: Runtime, provider: str, inbound: InboundRequest) -> ReturnVisit:
    try:
        adapter = rt.registry.get(provider)
    except UnknownProvider:
        raise NotFound(f"No provider {provider}.") from None
    async with rt.db.transaction() as session:
        candidates = await notification_credentials(session, rt, adapter, adapter.notification_account(inbound))
        reason = "no account matches"
        for credentials in candidates:
            try:
                references = adapter.verify_return(inbound, credentials, rt.clock.now())
            except NotificationRejected as exc:
                reason = exc.reason
                continue
            payment = await payments_repo.by_provider_reference(
                session, adapter.name, references, credentials.livemode, credentials.merchant_id, lock=False
            )
            if payment is None:
                raise NotFound("No payment matches this return.")
            return ReturnVisit(payment.id, payment.status, payment.return_url)
    log.warning("return.rejected", provider=provider, reason=reason)
    raise InvalidSignature(f"The return from {provider} is not genuine: {reason}.")
