"""Electronic receipts (§14). The payments and refunds services call these hooks in the paying transaction.

A payment that succeeds gets exactly one receipt, numbered from the merchant's counter for its template, series
and Vietnam calendar year; a full refund cancels it, a partial refund cancels it and issues a replacement for
what remains. Each change and its event are in the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import base64
import secrets
from collections import defaultdict
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills import repository as bills
from gateway.clock import isoformat, vietnam_time
from gateway.customers.models import Customer
from gateway.domain import EventType, ReceiptStatus
from gateway.errors import NotFound, ValidationFailed
from gateway.events.service import record_event
from gateway.merchants.models import Merchant
from gateway.payments.models import Payment
from gateway.receipts import repository
from gateway.receipts.models import Receipt, ReceiptSettings
from gateway.receipts.schemas import ReceiptSettingsPut
from gateway.receipts.wording import amount_in_words
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.receipts")

_SELLER_FIELDS = ("name", "tax_code", "address")
BALANCE_ITEM = "Tiền trả trước vào số dư của khách hàng"


def lookup_url(rt: Runtime, lookup_code: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/receipts/{lookup_code}"


def receipt_object(rt: Runtime, r: Receipt) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "receipt",
        "livemode": r.livemode,
        "status": r.status,
        "template": r.template,
        "series": r.series,
        "number": r.number,
        "issued_at": isoformat(r.issued_at),
        "canceled_at": isoformat(r.canceled_at) if r.canceled_at else None,
        "seller": _seller(r.seller),
        "payer": {"name": r.payer.get("name"), "code": r.payer.get("code")},
        "items": [{"description": i["description"], "amount": i["amount"]} for i in r.items],
        "amount": r.amount,
        "currency": r.currency,
        "amount_in_words": r.amount_in_words,
        "payment_id": r.payment_id,
        "bill_ids": list(r.bill_ids),
        "method": r.method,
        "channel": r.channel,
        "lookup_code": r.lookup_code,
        "lookup_url": lookup_url(rt, r.lookup_code),
        "replaces": r.replaces,
        "national_platform": r.national_platform,
        "created_at": isoformat(r.created_at),
    }


def _seller(stored: dict[str, Any]) -> dict[str, str | None]:
    return {name: stored.get(name) for name in _SELLER_FIELDS}


def settings_object(s: ReceiptSettings) -> dict[str, Any]:
    return {
        "object": "receipt_settings",
        "merchant_id": s.merchant_id,
        "enabled": s.enabled,
        "template": s.template,
        "series": s.series,
        "seller": _seller(s.seller),
        "updated_at": isoformat(s.updated_at),
    }


# --- settings ------------------------------------------------------------------------------------------------


async def put_settings(
    session: AsyncSession, rt: Runtime, merchant_id: str, params: ReceiptSettingsPut
) -> ReceiptSettings:
    """Replace the merchant's receipt settings. Payments that succeed from the commit on are receipted with them;
    numbers go on from the counter of the template and series (a new series starts at 00000001)."""
    if await session.get(Merchant, merchant_id) is None:
        raise NotFound(f"No merchant {merchant_id}.")
    if params.enabled and params.seller.name is None:
        raise ValidationFailed.field(["body", "seller", "name"], "required when enabled")
    now = rt.clock.now()
    seller = params.seller.model_dump()
    row = await repository.settings_for_update(session, merchant_id)
    if row is None:
        row = ReceiptSettings(merchant_id=merchant_id)
        repository.add(session, row)
    row.enabled, row.template, row.series, row.seller, row.updated_at = (
        params.enabled,
        params.template,
        params.series,
        seller,
        now,
    )
    await session.flush()
    log.info("receipts.settings_changed", merchant_id=merchant_id, enabled=params.enabled, series=params.series)
    return row


# --- issuing and canceling (hooks called by payments and refunds) ---------------------------------------------


async def issue_for_payment(session: AsyncSession, rt: Runtime, payment: Payment) -> None:
    """The payment just succeeded: issue its one receipt when the merchant issues receipts."""
    settings = await repository.settings_of(session, payment.merchant_id)
    if settings is None or not settings.enabled:
        return
    # The allocation rows of these funds may still be pending in the session (autoflush is off).
    await session.flush()
    if await repository.any_for_payment(session, payment.id):
        return  # exactly one per payment, whatever calls this again
    items, bill_ids = await _items_of(session, payment)
    payer = await _payer_of(session, payment)
    await _issue(
        session,
        rt,
        payment,
        template=settings.template,
        series=settings.series,
        seller=_seller(settings.seller),
        payer=payer,
        items=items,
        bill_ids=bill_ids,
        replaces=None,
    )


async def after_refund(session: AsyncSession, rt: Runtime, payment: Payment) -> None:
    """A refund of the payment just succeeded (payment.amount_refunded includes it): cancel its receipt, or
    replace it with one for what remains."""
    remaining = payment.amount_received - payment.amount_refunded
    if remaining <= 0:
        await cancel_for_payment(session, rt, payment)
        return
    current = await repository.issued_for_payment(session, payment.id)
    if current is None or current.amount == remaining:
        return  # never receipted (receipts were off), or already for what remains
    await _cancel(session, rt, current)
    # A replacement is a receipt issued now: with the register the merchant issues with now, else (receipts
    # since turned off) the canceled one's, so the payer still holds a valid receipt for what they paid.
    settings = await repository.settings_of(session, payment.merchant_id)
    register = settings if settings is not None and settings.enabled else current
    await _issue(
        session,
        rt,
        payment,
        template=register.template,
        series=register.series,
        seller=_seller(register.seller),
        payer=dict(current.payer),
        items=reduced_items(current.items, remaining),
        bill_ids=list(current.bill_ids),
        replaces=current.id,
    )


async def cancel_for_payment(session: AsyncSession, rt: Runtime, payment: Payment) -> Receipt | None:
    """The payment's money is all given back (a full refund, a reversal): cancel its receipt in force, if any."""
    current = await repository.issued_for_payment(session, payment.id)
    if current is not None:
        await _cancel(session, rt, current)
    return current


def reduced_items(items: list[dict[str, Any]], amount: int) -> list[dict[str, Any]]:
    """The items cut down to `amount`, taking from the last first (items that reach zero are dropped)."""
    excess = sum(int(i["amount"]) for i in items) - amount
    kept: list[dict[str, Any]] = []
    for item in reversed(items):
        take = min(excess, int(item["amount"]))
        excess -= take
        if item["amount"] - take > 0:
            kept.append({"description": item["description"], "amount": item["amount"] - take})
    return list(reversed(kept))


async def _issue(
    session: AsyncSession,
    rt: Runtime,
    payment: Payment,
    *,
    template: str,
    series: str,
    seller: dict[str, Any],
    payer: dict[str, Any],
    items: list[dict[str, Any]],
    bill_ids: list[str],
    replaces: str | None,
) -> Receipt:
    now = rt.clock.now()
    year = vietnam_time(now).year
    number = await repository.take_next_number(
        session,
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        template=template,
        series=series,
        year=year,
    )
    amount = sum(int(i["amount"]) for i in items)
    receipt = Receipt(
        id=rt.ids.new("rcp"),
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        payment_id=payment.id,
        status=ReceiptStatus.issued,
        template=template,
        series=series,
        year=year,
        number=f"{number:08d}",
        issued_at=now,
        canceled_at=None,
        seller=seller,
        payer=payer,
        items=items,
        amount=amount,
        currency=payment.currency,
        amount_in_words=amount_in_words(amount, payment.currency),
        bill_ids=bill_ids,
        method=payment.method.value,
        channel=payment.channel.value,
        lookup_code=new_lookup_code(),
        national_platform=_platform_receipt(payment),
        replaces=replaces,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, receipt)
    await record_event(
        session,
        rt,
        merchant_id=receipt.merchant_id,
        livemode=receipt.livemode,
        type=EventType.receipt_issued,
        obj=receipt_object(rt, receipt),
        payment_id=payment.id,
    )
    log.info(
        "receipt.issued",
        receipt_id=receipt.id,
        payment_id=payment.id,
        series=series,
        number=receipt.number,
        replaces=replaces,
    )
    return receipt


async def _cancel(session: AsyncSession, rt: Runtime, receipt: Receipt) -> None:
    receipt.status = ReceiptStatus.canceled
    receipt.canceled_at = receipt.updated_at = rt.clock.now()
    await record_event(
        session,
        rt,
        merchant_id=receipt.merchant_id,
        livemode=receipt.livemode,
        type=EventType.receipt_canceled,
        obj=receipt_object(rt, receipt),
        payment_id=receipt.payment_id,
    )
    log.info("receipt.canceled", receipt_id=receipt.id, payment_id=receipt.payment_id, number=receipt.number)


def new_lookup_code() -> str:
    """16 characters of base32 (80 random bits): unguessable, and easy to type from a printed receipt."""
    return base64.b32encode(secrets.token_bytes(10)).decode()


async def _items_of(session: AsyncSession, payment: Payment) -> tuple[list[dict[str, Any]], list[str]]:
    """One item per bill the payment's funds went to, one for what went to the customer's balance; whatever the
    allocation journal does not account for (a payment without a customer) is one item named by the payment."""
    per_bill: dict[str, int] = defaultdict(int)
    to_balance = 0
    for row in await bills.allocations_of_payment(session, payment.id):
        if row.bill_id is None:
            to_balance += row.amount
        else:
            per_bill[row.bill_id] += row.amount
    paid_bills = {bill_id: amount for bill_id, amount in per_bill.items() if amount > 0}
    by_id = {b.id: b for b in await bills.bills_by_ids(session, list(paid_bills))}
    items: list[dict[str, Any]] = []
    for bill_id, amount in paid_bills.items():
        bill = by_id[bill_id]
        described = f"Hóa đơn {bill.number}" + (f" kỳ {bill.period}" if bill.period else "")
        if bill.description:
            described += f": {bill.description}"
        items.append({"description": described, "amount": amount})
    if to_balance > 0:
        items.append({"description": BALANCE_ITEM, "amount": to_balance})
    rest = payment.amount_received - sum(i["amount"] for i in items)
    if rest < 0:  # the journal cannot say more than was received; never print a receipt that does not add up
        items, paid_bills, rest = [], {}, payment.amount_received
    if rest > 0:
        items.extend(
            _fee_items(payment, rest) or [{"description": payment.description or payment.reference, "amount": rest}]
        )
    return items, list(paid_bills)


def _fee_items(payment: Payment, amount: int) -> list[dict[str, Any]]:
    """An administrative fee paid through the national platform (§16): one item per fee and charge of its dossier,
    when they account for exactly what is receipted."""
    platform = payment.national_platform_details()
    fees = platform["fees"] if platform else []
    if not fees or sum(int(f["amount"]) for f in fees) != amount:
        return []
    return [{"description": f"{f['name']} (hồ sơ {payment.reference})", "amount": f["amount"]} for f in fees]


async def _payer_of(session: AsyncSession, payment: Payment) -> dict[str, Any]:
    """The payer as the gateway knows them: the biller's customer (its name and code), else the name given with
    the payment."""
    if payment.customer_id is not None and (customer := await session.get(Customer, payment.customer_id)):
        return {"name": customer.name, "code": customer.code}
    return {"name": (payment.customer or {}).get("name") or None, "code": None}


def _platform_receipt(payment: Payment) -> dict[str, Any] | None:
    """What the national platform gave the citizen for this payment (§16), shown on the gateway's receipt."""
    platform = payment.national_platform_details()
    if platform is None:
        return None
    return {k: platform[k] for k in ("reference", "transaction_id", "receipt_url")}


# --- reading -------------------------------------------------------------------------------------------------


async def get_receipt(session: AsyncSession, scope: MerchantScope, receipt_id: str) -> Receipt:
    receipt = await repository.get(session, scope, receipt_id)
    if receipt is None:
        raise NotFound(f"No receipt {receipt_id}.")
    return receipt


async def replaced_number(session: AsyncSession, receipt: Receipt) -> str | None:
    """The number of the receipt this one replaces, which the printed receipt names."""
    if receipt.replaces is None:
        return None
    old = await repository.by_id(session, receipt.replaces)
    return old.number if old is not None else None


async def receipt_ids_for_payments(session: AsyncSession, payment_ids: list[str]) -> list[str]:
    """For a bill's `receipts`: the receipts of the payments that paid it, oldest first."""
    return await repository.ids_for_payments(session, payment_ids)
