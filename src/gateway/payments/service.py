"""The payment state machine and everything that changes a payment.

Every source of truth — an API call, a provider notification, the janitor, the sweeper, a test helper —
changes a payment's status through `change_status` and records money through `record_funds_received`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
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
    StatusQuery,
)
from gateway.auth_types import MerchantScope
from gateway.bills import repository as bills
from gateway.bills.allocation import FundsForCustomer, allocate_funds
from gateway.bills.models import Bill
from gateway.clock import isoformat, vietnam_time
from gateway.customers import repository as customers
from gateway.customers.models import Customer
from gateway.db import UnitOfWork, flush_in_savepoint
from gateway.domain import (
    AmountRule,
    EventType,
    PartnerChannel,
    PaymentChannel,
    PaymentMethod,
    PaymentStatus,
    RequestedMethod,
)
from gateway.errors import (
    AmountNotAllowed,
    BillNotPayable,
    ConfirmationInProgress,
    GatewayError,
    InvalidState,
    NotFound,
    ProviderUnavailable,
    ValidationFailed,
)
from gateway.events.service import record_event
from gateway.ledger import service as ledger
from gateway.merchants.credentials import context_for
from gateway.merchants.models import Merchant
from gateway.payments import repository, routing
from gateway.payments.models import Payment
from gateway.payments.schemas import PaymentConfirm, PaymentCreate
from gateway.receipts import service as receipts
from gateway.runtime import Runtime
from gateway.status_checks import first_check

log = structlog.get_logger("gateway.payments")

S = PaymentStatus
_ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.requires_confirmation: frozenset({S.requires_action, S.processing, S.succeeded, S.failed, S.canceled, S.expired}),
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
        "channel": p.channel,
        "bill_id": p.bill_id,
        "customer_id": p.customer_id,
        "counter": p.counter,
        "partner_channel": p.partner_channel,
        "reference": p.reference,
        "description": p.description,
        "customer": p.customer,
        "metadata": p.metadata_,
        "return_url": p.return_url,
        "next_action": p.next_action if p.status == S.requires_action else None,
        "failure_code": p.failure_code,
        "failure_message": p.failure_message,
        "national_platform": p.national_platform_details(),
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
    current = payment.status
    if to not in _ALLOWED[current] or (current in (S.canceled, S.expired) and not late):
        raise InvalidState(f"Payment {payment.id} is {current} and cannot become {to}.")
    payment.status = to
    payment.updated_at = rt.clock.now()
    _schedule_status_checks(rt, payment, to)
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
    if to is S.succeeded:
        await _stamp_success(session, payment)
        await receipts.issue_for_payment(session, rt, payment)
    rt.metrics.payment_transitions.labels(to, payment.method).inc()
    log.info(f"payment.{to}", payment_id=payment.id, provider=payment.provider, late=late or None)


async def _stamp_success(session: AsyncSession, payment: Payment) -> None:
    """What the reports count it by (§17), fixed now: later moves of its customer or merchant rewrite no history."""
    payment.succeeded_at = payment.updated_at
    payment.succeeded_on = vietnam_time(payment.updated_at).date()
    unit: str | None = None
    if payment.customer_id is not None:
        customer = await session.get(Customer, payment.customer_id)
        unit = customer.org_unit if customer is not None else None
    if unit is None:
        merchant = await session.get(Merchant, payment.merchant_id)
        unit = merchant.org_unit if merchant is not None else None
    payment.org_unit = unit


def _schedule_status_checks(rt: Runtime, payment: Payment, to: PaymentStatus) -> None:
    """While the payer may still pay, the janitor asks the provider if its notification is late."""
    if to in (S.succeeded, S.failed):
        payment.next_status_check_at = None
    elif to in (S.requires_action, S.processing) and payment.next_status_check_at is None:
        if isinstance(rt.registry.get(payment.provider), StatusQuery):
            payment.next_status_check_at = first_check(rt.clock.now())


COUNTER = "counter"  # the provider of a counter payment: the cashier, not a provider the gateway calls


async def create_payment(session: AsyncSession, rt: Runtime, scope: MerchantScope, params: PaymentCreate) -> Payment:
    bill = await _bill_to_pay(session, scope, params)
    amount = params.amount if params.amount is not None else (bill.amount - bill.amount_paid if bill else None)
    reference = params.reference if params.reference is not None else (bill.number if bill else None)
    if amount is None:
        raise ValidationFailed.field(["body", "amount"], "Field required (or name a bill_id)")
    if reference is None:
        raise ValidationFailed.field(["body", "reference"], "Field required (or name a bill_id)")
    if bill is not None:
        check_amount_for_bill(bill, amount)
    method = params.method.method
    if method is PaymentMethod.counter:
        if params.counter is None:
            raise ValidationFailed.field(["body", "counter"], "Field required for method counter")
        if params.provider not in (None, COUNTER):
            raise ValidationFailed.field(["body", "provider"], "a counter payment has no provider")
        provider, channel = COUNTER, PaymentChannel.counter
    else:
        if params.counter is not None:
            raise ValidationFailed.field(["body", "counter"], "only for method counter")
        _check_mobile_money(params)
        _check_national_platform(params, amount)
        best = (await routing.candidates(session, rt, scope, method, params.currency, amount, params.provider))[0]
        reason = (
            "requested" if params.provider else f"priority {best.priority}" + ("" if best.healthy else ", cooling down")
        )
        log.info("payment.routed", provider=best.adapter.name, method=method, reason=reason)
        provider, channel = best.adapter.name, PaymentChannel.online
    now = rt.clock.now()
    payment = _new_payment(
        rt,
        now,
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        amount=amount,
        currency=params.currency,
        method=method,
        provider=provider,
        channel=channel,
        customer_id=bill.customer_id if bill else None,
        bill_id=bill.id if bill else None,
        counter=params.counter.model_dump(exclude_none=True) if params.counter else None,
        reference=reference,
        description=params.description,
        customer=params.customer.model_dump(exclude_none=True) if params.customer else None,
        metadata_=dict(params.metadata),
        return_url=params.return_url,
        provider_data={
            "routing": {"explicit": params.provider is not None, "tried": []},
            **({"mobile_money": params.mobile_money.model_dump()} if params.mobile_money else {}),
            **(await _national_platform_data(session, scope, params, reference)),
        },
        expires_at=now + timedelta(seconds=params.expires_in),
    )
    # Written when the transaction commits (with the status the confirmation gives it, in one INSERT), or at a
    # checkpoint before a provider is called over the network.
    session.add(payment)
    return payment


def _check_mobile_money(params: PaymentCreate) -> None:
    if params.mobile_money is None:
        return
    if params.method is not RequestedMethod.mobile_money:
        raise ValidationFailed.field(["body", "mobile_money"], "only for method mobile_money")
    if params.mobile_money.push and not (params.customer and params.customer.phone):
        raise ValidationFailed.field(["body", "customer", "phone"], "a USSD push needs the payer's phone")


def _check_national_platform(params: PaymentCreate, amount: int) -> None:
    block = params.national_platform
    if params.method is not RequestedMethod.national_platform:
        if block is not None:
            raise ValidationFailed.field(["body", "national_platform"], "only for method national_platform")
        return
    if block is None:
        raise ValidationFailed.field(["body", "national_platform"], "Field required for method national_platform")
    total = sum(fee.amount for fee in block.fees)
    if total != amount:
        raise ValidationFailed.field(
            ["body", "national_platform", "fees"], f"the fees sum to {total}, not the amount {amount}"
        )


async def _national_platform_data(
    session: AsyncSession, scope: MerchantScope, params: PaymentCreate, dossier: str
) -> dict[str, Any]:
    """The §16 block kept on the payment, with the agency's name (TenDonVi) and the dossier code for the platform."""
    if params.national_platform is None:
        return {}
    merchant = await session.get(Merchant, scope.merchant_id)
    return {
        "national_platform": {
            **params.national_platform.model_dump(),
            "dossier": dossier,
            "agency_name": merchant.name if merchant is not None else None,
        }
    }


def _new_payment(rt: Runtime, now: datetime, **fields: Any) -> Payment:
    """A payment as every source creates one: unconfirmed, nothing received yet, stamped `now`."""
    if "id" not in fields:
        fields["id"] = rt.ids.new("pay")
    return Payment(
        status=S.requires_confirmation,
        amount_received=0,
        amount_refunded=0,
        created_at=now,
        updated_at=now,
        **fields,
    )


async def _bill_to_pay(session: AsyncSession, scope: MerchantScope, params: PaymentCreate) -> Bill | None:
    if params.bill_id is None:
        return None
    found = await bills.get(session, scope, params.bill_id)
    if found is None:
        raise NotFound(f"No bill {params.bill_id}.")
    # Under the customer's lock, as allocation takes it: money taken now (a counter, a partner) sees the bill as
    # the payments before it left it, so a paid bill refuses and the amount rule holds.
    await customers.lock_by_id(session, found.customer_id)
    bill = await bills.lock_by_id(session, found.id)
    assert bill is not None
    if not bill.status.is_payable:
        raise BillNotPayable(f"Bill {bill.number} is {bill.status} and takes no payment.")
    if params.currency != bill.currency:
        raise ValidationFailed.field(["body", "currency"], f"the bill is in {bill.currency}")
    return bill


def check_amount_for_bill(bill: Bill, amount: int) -> None:
    """The bill's amount rule (§11) for a payment or collection naming it; money that merely arrives for more is
    never refused (it becomes credit)."""
    remaining = bill.amount - bill.amount_paid
    if bill.amount_rule is AmountRule.exact and amount != remaining:
        raise AmountNotAllowed(f"Bill {bill.number} must be paid exactly: {remaining} {bill.currency} remain.")
    if bill.amount_rule is AmountRule.partial and amount > remaining:
        raise AmountNotAllowed(f"Bill {bill.number} takes at most what remains: {remaining} {bill.currency}.")


def check_amount_for_bills(bills: Sequence[Bill], amount: int) -> None:
    """The amount rules for a collection naming several bills, whose funds go to each in the order named: an
    `exact` bill must receive all that remains of it, and the named bills' remaining total is the most that may be
    paid unless one of them takes `any` amount."""
    if len(bills) == 1:
        check_amount_for_bill(bills[0], amount)
        return
    left = amount
    for bill in bills:
        remaining = bill.amount - bill.amount_paid
        take = min(left, remaining)
        if bill.amount_rule is AmountRule.exact and take != remaining:
            raise AmountNotAllowed(
                f"Bill {bill.number} must be paid exactly: {remaining} {bill.currency} remain after the bills named "
                "before it."
            )
        left -= take
    if left > 0 and not any(b.amount_rule is AmountRule.any for b in bills):
        total = sum(b.amount - b.amount_paid for b in bills)
        raise AmountNotAllowed(f"The bills named take at most what remains of them: {total} {bills[0].currency}.")


async def record_partner_collection(
    session: AsyncSession,
    rt: Runtime,
    *,
    partner_id: str,
    partner_code: str,
    customer: Customer,
    bills: Sequence[Bill],
    amount: int,
    partner_channel: PartnerChannel,
    partner_transaction_id: str,
    payer: dict[str, str] | None,
) -> Payment:
    """A partner took `amount` for the customer (§12): a payment that succeeds at once — allocated to the bills
    named, in order (else by rules 2-3), posted against the partner's clearing account and receipted, all in the
    caller's transaction. The caller holds the customer's lock, then the bills', and checked the amount rules."""
    now = rt.clock.now()
    payment = _new_payment(
        rt,
        now,
        merchant_id=customer.merchant_id,
        livemode=customer.livemode,
        amount=amount,
        currency=customer.currency,
        method=PaymentMethod.partner,
        provider=partner_code,
        provider_reference=partner_transaction_id,
        channel=partner_channel.payment_channel,
        partner_channel=partner_channel,
        customer_id=customer.id,
        bill_id=bills[0].id if len(bills) == 1 else None,
        reference=bills[0].number if len(bills) == 1 else customer.code,
        description=None,
        customer={**(payer or {"name": customer.name}), "external_id": customer.code},
        metadata_={},
        provider_data={"partner_id": partner_id},
        expires_at=now,
    )
    session.add(payment)
    await session.flush()
    await record_funds_received(
        session,
        rt,
        payment,
        amount,
        source=f"partner:{partner_id}:{partner_transaction_id}",
        bill_ids=[b.id for b in bills] if len(bills) > 1 else (),
    )
    log.info("payment.partner_collection", payment_id=payment.id, provider=partner_code, channel=partner_channel)
    return payment


def _customer_payment(rt: Runtime, customer: Customer, expires_in: timedelta, **fields: Any) -> Payment:
    """A payment no merchant asked for, for one of its customers (a transfer by the static QR, a telco's verify):
    online, in the customer's merchant, mode and currency, the payer named as the customer."""
    now = rt.clock.now()
    return _new_payment(
        rt,
        now,
        merchant_id=customer.merchant_id,
        livemode=customer.livemode,
        currency=customer.currency,
        channel=PaymentChannel.online,
        customer_id=customer.id,
        customer={"name": customer.name, "external_id": customer.code},
        metadata_={},
        expires_at=now + expires_in,
        **fields,
    )


async def payment_for_customer_funds(
    session: AsyncSession,
    rt: Runtime,
    customer: Customer,
    *,
    method: PaymentMethod,
    provider: str,
    amount: int,
    provider_reference: str,
    provider_data: dict[str, Any],
    description: str,
) -> Payment:
    """Money that arrived for a customer with no payment asked for (a transfer by the static QR's code): a payment
    for that customer, with no bill named, that the caller then records the funds of (and so allocates)."""
    payment = _customer_payment(
        rt,
        customer,
        timedelta(0),
        amount=amount,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        bill_id=None,
        reference=customer.code,
        description=description,
        provider_data=provider_data,
    )
    session.add(payment)
    await session.flush()
    log.info("payment.for_customer", payment_id=payment.id, customer_id=customer.id, provider=provider)
    return payment


async def payment_for_inquiry(
    session: AsyncSession,
    rt: Runtime,
    customer: Customer,
    bill: Bill | None,
    *,
    method: PaymentMethod,
    provider: str,
    provider_reference: str,
    amount: int,
    reference: str,
    provider_data: dict[str, Any],
    description: str,
    expires_in: timedelta,
    payment_id: str | None = None,
) -> Payment:
    """A provider asked what `reference` owes before its payer pays (a telco's verify-order): the payment its
    result will settle, awaiting the payer. One per provider order: a repeated inquiry finds the first.
    `payment_id`: chosen by the caller when the provider's reference derives from it (the national platform's)."""
    payment = _customer_payment(
        rt,
        customer,
        expires_in,
        **({"id": payment_id} if payment_id else {}),
        amount=amount,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        bill_id=bill.id if bill else None,
        reference=reference,
        description=description,
        provider_data=provider_data,
    )
    refused = await flush_in_savepoint(session, lambda: session.add(payment))
    if refused is not None:
        # A concurrent inquiry for the same order created it first (the unique index on the provider's reference).
        existing = await repository.by_provider_reference(
            session, provider, [provider_reference], customer.livemode, customer.merchant_id, lock=True
        )
        if existing is None:
            raise refused
        return existing
    await change_status(session, rt, payment, S.requires_action)
    log.info("payment.for_inquiry", payment_id=payment.id, customer_id=customer.id, provider=provider)
    return payment


async def record_counter_payment(session: AsyncSession, rt: Runtime, payment: Payment) -> None:
    """A cashier took the money: it is received now, posted against the merchant's counter account."""
    await record_funds_received(session, rt, payment, payment.amount, f"counter:{payment.id}")


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
        options={name: payment.provider_data[name] for name in _START_OPTIONS if name in payment.provider_data},
    )


# The request's method-specific choices, kept in provider_data and handed to the adapter that starts it.
_START_OPTIONS = ("mobile_money", "national_platform")
StartOutcome = routing.StartOutcome


async def _call_start(rt: Runtime, adapter: PaymentAdapter, ctx: ProviderContext, payment: Payment) -> StartOutcome:
    try:
        return await adapter.start_payment(ctx, _start_request(payment))
    except (ProviderDeclinedError, ProviderTechnicalError) as exc:
        log.warning("provider.start_failed", payment_id=payment.id, provider=adapter.name, error=str(exc))
        return exc


async def confirm_payment(
    uow: UnitOfWork,
    rt: Runtime,
    scope: MerchantScope,
    payment_id: str,
    params: PaymentConfirm | None,
    resuming: bool = False,
    created: Payment | None = None,
) -> Payment:
    """requires_confirmation → whatever the provider says. A provider reached over the network is called
    outside any transaction, after the attempt is committed, so a crash there is resumed by a retry. When the
    provider certainly created nothing (a connection refused, a declared refusal) and the merchant did not
    ask for it by name, the payment moves on to the next provider the routing allows."""
    # A payment created in this same transaction is ours already: no need to read and lock it again.
    payment = created if created is not None else await _locked(uow.session, scope, payment_id)
    if payment.status != S.requires_confirmation:
        raise InvalidState(f"Payment {payment.id} is {payment.status}; only requires_confirmation can be confirmed.")
    if params is not None:
        if params.customer is not None:
            payment.customer = params.customer.model_dump(exclude_none=True)
        if params.return_url is not None:
            payment.return_url = params.return_url
    if payment.method is PaymentMethod.counter:
        await uow.session.flush()
        await record_counter_payment(uow.session, rt, payment)
        return payment
    while True:
        adapter = rt.registry.get(payment.provider)
        session = uow.session
        ctx = await context_for(session, rt, adapter, scope.merchant_id, scope.livemode)
        if adapter.capabilities.offline_start:
            outcome = await _call_start(rt, adapter, ctx, payment)
        else:
            if not resuming:  # a retry that took its own dead request's key over may go on
                _refuse_concurrent_start(rt, payment)
            payment.provider_attempted_at = payment.updated_at = rt.clock.now()
            await uow.checkpoint(payment.id)
            outcome = await _call_start(rt, adapter, ctx, payment)
            session = await uow.resume()
            payment = await _locked(session, scope, payment_id)
            if payment.status != S.requires_confirmation:  # canceled, expired or paid meanwhile
                _keep_reference(payment, outcome)
                return payment
        await routing.record_outcome(session, rt, adapter.name, scope.livemode, outcome)
        if routing.certainly_nothing_created(outcome):
            following = await _next_provider(session, rt, scope, payment)
            if following is not None:
                log.warning(
                    "payment.failover",
                    payment_id=payment.id,
                    from_provider=payment.provider,
                    to_provider=following,
                    reason=str(outcome)[:200],
                )
                _move_to(payment, following)
                continue
        await apply_start_outcome(session, rt, payment, outcome)
        return payment


async def _next_provider(session: AsyncSession, rt: Runtime, scope: MerchantScope, payment: Payment) -> str | None:
    state = payment.provider_data.get("routing", {})
    if state.get("explicit"):
        return None
    tried = (*state.get("tried", []), payment.provider)
    try:
        remaining = await routing.candidates(
            session, rt, scope, PaymentMethod(payment.method), payment.currency, payment.amount, exclude=tuple(tried)
        )
    except GatewayError:
        return None
    return remaining[0].adapter.name


def _refuse_concurrent_start(rt: Runtime, payment: Payment) -> None:
    """Another request is asking the provider for this payment right now: never start it twice at once."""
    window = timedelta(seconds=rt.settings.idempotency_lock_seconds)
    if payment.provider_attempted_at is not None and rt.clock.now() - payment.provider_attempted_at < window:
        raise ConfirmationInProgress(
            f"Payment {payment.id} is being confirmed by another request; retry shortly.", headers={"Retry-After": "1"}
        )


def _keep_reference(payment: Payment, outcome: StartOutcome) -> None:
    """The provider may still collect for a payment that ended while it was being asked: keep its reference so
    the notification matches and late funds are never dropped."""
    if isinstance(outcome, StartResult) and payment.provider_reference is None:
        payment.provider_reference = outcome.provider_reference
        payment.provider_data = {**payment.provider_data, **outcome.provider_data}


def _move_to(payment: Payment, provider: str) -> None:
    state = dict(payment.provider_data.get("routing", {}))
    state["tried"] = [*state.get("tried", []), payment.provider]
    payment.provider_data = {**payment.provider_data, "routing": state}
    payment.provider = provider
    payment.provider_attempted_at = None


async def apply_start_outcome(session: AsyncSession, rt: Runtime, payment: Payment, outcome: StartOutcome) -> None:
    if isinstance(outcome, ProviderDeclinedError):
        await change_status(
            session, rt, payment, S.failed, failure_code=outcome.code, failure_message=outcome.message[:255]
        )
        return
    if isinstance(outcome, ProviderTechnicalError):
        if outcome.certainly_not_created:
            raise ProviderUnavailable(f"{payment.provider} could not be reached; retry with the same Idempotency-Key.")
        # The provider may have created the charge: never fail on a guess; the janitor will ask it.
        await change_status(session, rt, payment, S.processing)
        return
    payment.provider_reference = outcome.provider_reference
    payment.next_action = outcome.next_action
    payment.provider_data = {**payment.provider_data, **outcome.provider_data}
    if outcome.status is ProviderStatus.failed:
        await change_status(
            session,
            rt,
            payment,
            S.failed,
            failure_code=outcome.failure_code or "declined",
            failure_message=outcome.failure_message,
        )
    elif outcome.status is ProviderStatus.succeeded:
        # Money is only ever counted from a provider transaction id, through the one funds path (notification
        # or status query) that dedupes it: a provider that says "paid" at once is asked straight away.
        await change_status(session, rt, payment, S.processing)
        payment.next_status_check_at = rt.clock.now()
    else:
        await change_status(session, rt, payment, S(outcome.status))


async def cancel_payment(session: AsyncSession, rt: Runtime, scope: MerchantScope, payment_id: str) -> Payment:
    payment = await _locked(session, scope, payment_id)
    await expire_if_due(session, rt, payment)
    if payment.status not in _CANCELABLE:
        raise InvalidState(f"Payment {payment.id} is {payment.status} and cannot be canceled.")
    await change_status(session, rt, payment, S.canceled)
    return payment


async def expire_if_due(session: AsyncSession, rt: Runtime, payment: Payment) -> bool:
    """Expire a payable payment whose time is up (the caller holds its row lock)."""
    if payment.status in _EXPIRABLE and payment.expires_at <= rt.clock.now():
        await change_status(session, rt, payment, S.expired)
        return True
    return False


def funds_account(payment: Payment) -> str:
    """Where a payment's money is held: the provider's clearing account, the merchant's counter, or the collection
    partner's clearing account (the partner took the money and settles it)."""
    if payment.provider == COUNTER:
        return ledger.counter_cash(payment.merchant_id)
    if payment.method is PaymentMethod.partner:
        return ledger.partner_clearing(payment.provider)
    return ledger.provider_clearing(payment.provider)


async def record_funds_received(
    session: AsyncSession,
    rt: Runtime,
    payment: Payment,
    amount: int,
    source: str,
    bill_ids: Sequence[str] = (),
) -> bool:
    """Money the provider confirmed, posted once per `source`; False when this source was already posted.
    `bill_ids`: the bills a partner's collection named, which the funds go to in that order (else payment.bill_id).

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
        postings=ledger.receipt_postings(funds_account(payment), payment.merchant_id, amount),
        payment_id=payment.id,
    )
    if not posted:
        return False
    payment.amount_received += amount
    payment.updated_at = rt.clock.now()
    if payment.customer_id is not None:
        # In the same transaction as the funds: the customer's bills, then its balance (§11).
        await allocate_funds(
            session,
            rt,
            FundsForCustomer(
                payment.id, payment.customer_id, amount, payment.currency, payment.bill_id, tuple(bill_ids)
            ),
        )
    status = payment.status
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
    if payment.status.is_terminal:
        return False
    await change_status(
        session, rt, payment, S.failed, failure_code=failure_code[:64], failure_message=failure_message[:255]
    )
    return True


async def get_payment(session: AsyncSession, rt: Runtime, scope: MerchantScope, payment_id: str) -> Payment:
    payment = await repository.get(session, scope, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.")
    if payment.status in _EXPIRABLE and payment.expires_at <= rt.clock.now():
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
