"""A provider asking what a code owes before its payer pays (the telco's verify-order, §15; the national platform's
inquiry by dossier code, §16), and the sandbox's biller list. Verified with the account's own secret like a
notification, kept for audit like one, and answered in the provider's own format. An inquiry for a payer-started
payment creates the payment its result will settle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import (
    BillInquiry,
    GatewayReferences,
    InboundRequest,
    InquiryAnswer,
    InquiryRequest,
    InquiryStatus,
    NotificationRejected,
    OutboundResponse,
    ProviderCredentials,
    SandboxBillers,
)
from gateway.adapters.registry import UnknownProvider
from gateway.auth_types import MerchantScope
from gateway.bills import repository as bills_repo
from gateway.bills.models import Bill
from gateway.customers import repository as customers_repo
from gateway.customers.models import Customer
from gateway.domain import NotificationOutcome, PaymentStatus
from gateway.errors import InvalidSignature, NotFound
from gateway.masking import mask_name
from gateway.merchants import repository as merchants_repo
from gateway.merchants.credentials import notification_credentials, sandbox_credentials
from gateway.notifications.service import audit_row, store_failed_audit
from gateway.payments import repository as payments_repo
from gateway.payments import service as payments
from gateway.payments.models import Payment
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.inquiries")

# How long the telco has, after its verify, to send the result before the payment expires (a late one still counts).
INQUIRY_PAYMENT_TTL = timedelta(minutes=15)
_OUTCOME_OF = {
    InquiryStatus.payable: NotificationOutcome.applied,
    InquiryStatus.not_payable: NotificationOutcome.unmatched,
    InquiryStatus.rejected: NotificationOutcome.rejected,
    InquiryStatus.error: NotificationOutcome.error,
}
_MAX_REFERENCE = 64  # what a payment's reference holds
_MAX_PROVIDER_REFERENCE = 120


def _inquiry_adapter(rt: Runtime, provider: str) -> BillInquiry:
    try:
        adapter = rt.registry.get(provider)
    except UnknownProvider:
        raise NotFound(f"No provider {provider}.") from None
    if not isinstance(adapter, BillInquiry):
        raise NotFound(f"Provider {provider} makes no bill inquiries.")
    return adapter


@dataclass(frozen=True)
class _Decided:
    answer: InquiryAnswer
    detail: str
    payment_id: str | None = None


async def answer_inquiry(rt: Runtime, provider: str, inbound: InboundRequest) -> OutboundResponse:
    adapter = _inquiry_adapter(rt, provider)
    now = rt.clock.now()
    matched: ProviderCredentials | None = None
    decided = _Decided(InquiryAnswer(InquiryStatus.error), "not answered")
    try:
        async with rt.db.transaction() as session:
            payment_adapter = rt.registry.get(provider)
            candidates = await notification_credentials(session, rt, payment_adapter, adapter.inquiry_account(inbound))
            reason = "no account matches this inquiry"
            inquiry: InquiryRequest | None = None
            for credentials in candidates:
                try:
                    inquiry, matched = adapter.verify_bill_inquiry(inbound, credentials), credentials
                    break
                except NotificationRejected as exc:
                    reason = exc.reason
            if inquiry is None or matched is None:
                decided = _Decided(InquiryAnswer(InquiryStatus.rejected), reason)
            elif inquiry.order_id is None:
                decided = await _decide_by_reference(session, rt, provider, matched, inquiry.code)
            else:
                decided = await _decide(session, rt, provider, matched, inquiry, inquiry.order_id)
            outcome = _OUTCOME_OF[decided.answer.status]
            session.add(
                audit_row(
                    rt,
                    provider,
                    inbound,
                    now,
                    outcome,
                    matched is not None,
                    f"verify-order: {decided.detail}",
                    decided.payment_id,
                    None,
                )
            )
    except Exception as exc:
        log.exception("inquiry.failed", provider=provider, error=type(exc).__name__)
        decided = _Decided(InquiryAnswer(InquiryStatus.error), type(exc).__name__)
        await store_failed_audit(rt, provider, inbound, now, matched is not None, f"verify-order: {decided.detail}")
    log.info(
        "inquiry.answered",
        provider=provider,
        status=decided.answer.status,
        detail=decided.detail,
        payment_id=decided.payment_id,
    )
    return adapter.answer_bill_inquiry(inbound, matched, decided.answer)


def _payable_now(payment: Payment, rt: Runtime) -> bool:
    return payment.status is PaymentStatus.requires_action and payment.expires_at > rt.clock.now()


def _customer_name(payment: Payment) -> str | None:
    name = (payment.customer or {}).get("name")
    return mask_name(name) if isinstance(name, str) and name else None


def _not_payable(detail: str) -> _Decided:
    return _Decided(InquiryAnswer(InquiryStatus.not_payable), detail)


async def _decide(
    session: AsyncSession,
    rt: Runtime,
    provider: str,
    creds: ProviderCredentials,
    inquiry: InquiryRequest,
    order_id: str,
) -> _Decided:
    # A payment of this order already: one the gateway started (its id is the order), or an earlier verify's.
    payment = await payments_repo.by_provider_reference(
        session, provider, [order_id], creds.livemode, creds.merchant_id, lock=True
    )
    if payment is not None:
        if not _payable_now(payment, rt):
            return _Decided(InquiryAnswer(InquiryStatus.not_payable), f"payment is {payment.status}", payment.id)
        if inquiry.amount is not None and inquiry.amount != payment.amount:
            return _Decided(
                InquiryAnswer(InquiryStatus.not_payable), f"amount {inquiry.amount} != {payment.amount}", payment.id
            )
        return _Decided(
            InquiryAnswer(InquiryStatus.payable, payment.amount, _customer_name(payment)), "open", payment.id
        )
    if creds.merchant_id is None:
        return _not_payable("no such payment (the sandbox account names no biller)")
    if len(inquiry.code) > _MAX_REFERENCE or len(order_id) > _MAX_PROVIDER_REFERENCE:
        return _not_payable("code or order_id too long")
    scope = MerchantScope(creds.merchant_id, creds.livemode)
    due = await _amount_due(session, scope, inquiry.code)
    if isinstance(due, str):
        return _not_payable(due)
    customer, bill, amount = due
    adapter = rt.registry.get(provider)
    caps = adapter.capabilities
    if customer.currency not in caps.currencies or not caps.min_amount <= amount <= caps.max_amount:
        return _not_payable(f"{amount} {customer.currency} is beyond what {provider} collects")
    if inquiry.amount is not None and inquiry.amount != amount:
        return _not_payable(f"amount {inquiry.amount} != {amount} due")
    (method,) = caps.methods
    payment = await payments.payment_for_inquiry(
        session,
        rt,
        customer,
        bill,
        method=method,
        provider=provider,
        provider_reference=order_id,
        amount=amount,
        reference=inquiry.code,
        provider_data={
            "order_id": order_id,
            "merchant_code": creds.settings.get("merchant_code"),
            "billcode": inquiry.code,
            "subscriber_started": True,
        },
        description=f"Thanh toán qua {provider}",
        expires_in=INQUIRY_PAYMENT_TTL,
    )
    if not _payable_now(payment, rt):  # a concurrent verify of the same order created it, and it moved on
        return _Decided(InquiryAnswer(InquiryStatus.not_payable), f"payment is {payment.status}", payment.id)
    return _Decided(
        InquiryAnswer(InquiryStatus.payable, payment.amount, mask_name(customer.name)), "created", payment.id
    )


async def _bill_due(
    session: AsyncSession, scope: MerchantScope, number: str
) -> tuple[Customer, Bill, int] | str | None:
    """What the bill of that number owes, locked (the customer's lock, then the bill's: the allocation's order); why
    nothing is payable; or None when there is no such bill."""
    bill = await bills_repo.by_number(session, scope, number)
    if bill is None:
        return None
    customer = await customers_repo.lock_by_id(session, bill.customer_id)
    locked = await bills_repo.lock_by_id(session, bill.id)
    assert customer is not None and locked is not None
    if not locked.status.is_payable:
        return f"bill {locked.number} is {locked.status}"
    return customer, locked, locked.amount - locked.amount_paid


async def _amount_due(
    session: AsyncSession, scope: MerchantScope, code: str
) -> tuple[Customer, Bill | None, int] | str:
    """What `code` owes: a bill number (what remains of it), else a customer code (what remains of its payable bills,
    allocated by rule 2 when paid); or why nothing is payable."""
    by_bill = await _bill_due(session, scope, code)
    if by_bill is not None:
        return by_bill
    customer = await customers_repo.by_code(session, scope, code, lock=True)
    if customer is None:
        return "unknown code"
    due = sum(b.amount - b.amount_paid for b in await bills_repo.payable_bills_for_update(session, customer.id))
    if due <= 0:
        return f"customer {customer.code} has nothing due"
    return customer, None, due


def _fees_of(payment: Payment) -> list[dict[str, object]]:
    block = payment.provider_data.get("national_platform") or {}
    return list(
        block.get("fees")
        or [{"kind": "fee", "code": payment.reference, "name": payment.reference, "amount": payment.amount}]
    )


def _open_answer(payment: Payment, detail: str) -> _Decided:
    answer = InquiryAnswer(
        InquiryStatus.payable, payment.amount, _customer_name(payment), payment.provider_reference, _fees_of(payment)
    )
    return _Decided(answer, detail, payment.id)


async def _decide_by_reference(
    session: AsyncSession, rt: Runtime, provider: str, creds: ProviderCredentials, dossier: str
) -> _Decided:
    """A provider asking by the merchant's own reference (the national platform, by dossier code): the open payment
    of that reference, else a payable bill of that number, for which the payment its result will settle is created
    (a repeated inquiry then finds that payment)."""
    if len(dossier) > _MAX_REFERENCE:
        return _not_payable("dossier code too long")
    due: tuple[Customer, Bill, int] | str | None = None
    scope: MerchantScope | None = None
    if creds.merchant_id is not None:
        scope = MerchantScope(creds.merchant_id, creds.livemode)
    elif not creds.livemode:
        # The shared sandbox account names no agency: the test bill of that number, when one merchant alone has it.
        owners = await bills_repo.test_merchants_with_number(session, dossier)
        if len(owners) > 1:
            return _not_payable("test bills of that number at several merchants")
        scope = MerchantScope(owners[0], False) if owners else None
    if scope is not None:
        # The bill's lock first: a concurrent inquiry of the same dossier waits here, then finds this one's payment.
        due = await _bill_due(session, scope, dossier)
    if isinstance(due, str):  # the dossier's bill is paid, void or owes nothing: an open payment of it is not due
        return _not_payable(due)
    now = rt.clock.now()
    owner = scope.merchant_id if scope is not None else creds.merchant_id
    payment = await payments_repo.open_by_reference(session, provider, dossier, creds.livemode, owner, now)
    if payment is not None:
        if due is not None and payment.amount > due[2]:
            return _not_payable(f"the open payment asks {payment.amount}, the bill owes {due[2]}")
        return _open_answer(payment, "open")
    if due is None:
        return _not_payable("no open payment or payable bill of that dossier")
    customer, bill, amount = due
    adapter = rt.registry.get(provider)
    caps = adapter.capabilities
    if not isinstance(adapter, GatewayReferences) or customer.currency not in caps.currencies:
        return _not_payable(f"{provider} cannot collect this bill")
    if not caps.min_amount <= amount <= caps.max_amount:
        return _not_payable(f"{amount} {customer.currency} is beyond what {provider} collects")
    (method,) = caps.methods
    payment_id = rt.ids.new("pay")
    reference = adapter.payment_reference(payment_id)
    fee = {"kind": "fee", "code": bill.number, "name": bill.description or f"Hồ sơ {bill.number}", "amount": amount}
    payment = await payments.payment_for_inquiry(
        session,
        rt,
        customer,
        bill,
        method=method,
        provider=provider,
        provider_reference=reference,
        amount=amount,
        reference=dossier,
        provider_data={
            "national_platform": {"procedure_code": None, "service_code": None, "fees": [fee], "dossier": dossier},
            "platform": {"reference": reference},
            "inquiry_started": True,
        },
        description=f"Thanh toán qua {provider}",
        expires_in=INQUIRY_PAYMENT_TTL,
        payment_id=payment_id,
    )
    return _open_answer(payment, "created")


async def sandbox_billers(rt: Runtime, provider: str, inbound: InboundRequest) -> list[dict[str, str]]:
    """Test mode: the merchants with a biller_code, by name, for the sandbox's USSD menu (signed by the sandbox)."""
    try:
        adapter = rt.registry.get(provider)
    except UnknownProvider:
        raise NotFound(f"No provider {provider}.") from None
    sandbox = sandbox_credentials(rt, adapter)
    if sandbox is None or not isinstance(adapter, SandboxBillers):
        raise NotFound(f"No sandbox of {provider} lists billers.")
    try:
        adapter.verify_biller_list_request(inbound, sandbox)
    except NotificationRejected as exc:
        raise InvalidSignature(f"The biller list request is not the sandbox's: {exc.reason}.") from None
    async with rt.db.transaction() as session:
        rows = await merchants_repo.billers(session)
    return [{"biller_code": code, "name": name} for code, name in rows]
