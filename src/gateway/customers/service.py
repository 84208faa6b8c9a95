"""Customers: their documents, their payment code and static QR."""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import PaymentAdapter, StaticTransferCodes
from gateway.auth_types import MerchantScope
from gateway.clock import isoformat
from gateway.customers import repository
from gateway.customers.models import Customer
from gateway.customers.schemas import CustomerCreate, CustomerUpdate
from gateway.domain import PaymentMethod
from gateway.errors import CustomerCodeTaken, GatewayError, NotFound
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


async def customer_documents(session: AsyncSession, rt: Runtime, customers: list[Customer]) -> list[dict[str, Any]]:
    """Documents of one merchant's customers in one mode (a list page): their QR codes built from one lookup."""
    if not customers:
        return []
    first = customers[0]
    payloads = await static_qr_payloads(
        session, rt, first.merchant_id, first.livemode, [c.payment_code for c in customers]
    )
    return [customer_object(c, payload) for c, payload in zip(customers, payloads, strict=True)]


def _code_taken(code: str) -> CustomerCodeTaken:
    return CustomerCodeTaken(
        f"A customer with code {code!r} already exists (codes are compared case-insensitively).",
        errors=[{"loc": ["body", "code"], "msg": "already taken"}],
    )


async def create_customer(session: AsyncSession, rt: Runtime, scope: MerchantScope, params: CustomerCreate) -> Customer:
    if await repository.code_taken(session, scope, params.code):
        raise _code_taken(params.code)
    now = rt.clock.now()
    customer_id = rt.ids.new("cus")
    customer = Customer(
        id=customer_id,
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        code=params.code,
        code_key=repository.code_key(params.code),
        name=params.name,
        phone=params.phone,
        email=params.email,
        address=params.address,
        org_unit=params.org_unit,
        metadata_=params.metadata,
        payment_code=new_payment_code(rt, customer_id),
        balance=0,
        currency="VND",
        created_at=now,
        updated_at=now,
    )
    if not await repository.write_unless_code_taken(session, scope, lambda: customer):
        raise _code_taken(params.code)
    return customer


async def get_customer(
    session: AsyncSession, scope: MerchantScope, customer_id: str, *, lock: bool = False
) -> Customer:
    customer = await repository.get(session, scope, customer_id, lock=lock)
    if customer is None:
        raise NotFound(f"No customer {customer_id}.")
    return customer


async def update_customer(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, customer_id: str, params: CustomerUpdate
) -> Customer:
    """Only the fields sent change; the customer's row lock orders this with changes to its balance."""
    customer = await get_customer(session, scope, customer_id, lock=True)
    if params.code is not None and await repository.code_taken(session, scope, params.code, besides=customer.id):
        raise _code_taken(params.code)

    def change() -> Customer:
        if params.code is not None:
            customer.code, customer.code_key = params.code, repository.code_key(params.code)
        if params.name is not None:
            customer.name = params.name
        if params.metadata is not None:
            customer.metadata_ = params.metadata
        for name in ("phone", "email", "address", "org_unit"):
            if name in params.model_fields_set:  # sent, perhaps as null to clear it
                setattr(customer, name, getattr(params, name))
        customer.updated_at = rt.clock.now()
        return customer

    if not await repository.write_unless_code_taken(session, scope, change):
        raise _code_taken(str(params.code))  # only a new code can conflict
    return customer


async def list_customers(
    session: AsyncSession, scope: MerchantScope, code: str | None, limit: int, starting_after: str | None
) -> tuple[list[Customer], bool]:
    return await repository.list_page(session, scope, code, limit, starting_after)
