"""Customers: their documents, their payment code and static QR."""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import PaymentAdapter, StaticTransferCodes
from gateway.clock import isoformat
from gateway.customers.models import Customer
from gateway.domain import PaymentMethod
from gateway.errors import GatewayError
from gateway.merchants.credentials import credentials_for
from gateway.runtime import Runtime


def customer_object(c: Customer, qr_payload: str | None) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "customer",
        "livemode": c.livemode,
        "code": c.code,
        "name": c.name,
        "phone": c.phone,
        "email": c.email,
        "address": c.address,
        "org_unit": c.org_unit,
        "metadata": c.metadata_,
        "balance": c.balance,
        "currency": c.currency,
        "payment_code": c.payment_code,
        "qr_payload": qr_payload,
        "created_at": isoformat(c.created_at),
        "updated_at": isoformat(c.updated_at),
    }


class TransferCodesAdapter(PaymentAdapter, StaticTransferCodes, Protocol):
    pass


def transfer_codes(rt: Runtime) -> TransferCodesAdapter | None:
    """The bank-transfer provider whose payers pay a customer by a code (VietQR), if one is installed."""
    for adapter in rt.registry.for_method(PaymentMethod.vietqr):
        if isinstance(adapter, StaticTransferCodes):
            return cast(TransferCodesAdapter, adapter)
    return None


def new_payment_code(rt: Runtime, customer_id: str) -> str:
    codes = transfer_codes(rt)
    if codes is None:  # no transfer provider installed: still a unique ASCII code for partners and counters
        return customer_id.removeprefix("cus_")[-20:]
    return codes.customer_payment_code(customer_id)


async def static_qr_payloads(
    session: AsyncSession, rt: Runtime, merchant_id: str, livemode: bool, payment_codes: list[str]
) -> list[str | None]:
    """Each customer's static QR, when the merchant has a transfer account (in test mode: the sandbox bank's)."""
    codes = transfer_codes(rt)
    if codes is None:
        return [None] * len(payment_codes)
    try:
        creds = await credentials_for(session, rt, codes, merchant_id, livemode)
    except GatewayError:
        return [None] * len(payment_codes)
    return [codes.static_qr_payload(creds.settings, code) for code in payment_codes]


async def customer_document(session: AsyncSession, rt: Runtime, c: Customer) -> dict[str, Any]:
    (payload,) = await static_qr_payloads(session, rt, c.merchant_id, c.livemode, [c.payment_code])
    return customer_object(c, payload)
