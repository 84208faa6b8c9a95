"""Every SQL statement of the partners' bill API: billers by code, enablement, bills by number, collections."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.bills.models import Bill
from gateway.collections.models import Collection
from gateway.customers.models import Customer
from gateway.domain import BillStatus
from gateway.merchants.models import Merchant
from gateway.partners.models import MerchantPartner, PartnerRequest

_PAYABLE = (BillStatus.open, BillStatus.partially_paid)


async def biller_for_partner(session: AsyncSession, partner_id: str, biller_code: str) -> Merchant | None:
    """The merchant with this biller code (upper-cased: codes are upper case) that lets the partner collect."""
    stmt = (
        select(Merchant)
        .join(MerchantPartner, MerchantPartner.merchant_id == Merchant.id)
        .where(
            Merchant.biller_code == biller_code.upper(),
            MerchantPartner.partner_id == partner_id,
            MerchantPartner.enabled.is_(True),
        )
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def payable_bills(session: AsyncSession, customer_id: str) -> list[Bill]:
    """The customer's payable bills in allocation order (rule 2), read only: oldest due date first (bills without
    one last), then oldest created."""
    stmt = (
        select(Bill)
        .where(Bill.customer_id == customer_id, Bill.status.in_(_PAYABLE))
        .order_by(Bill.due_date.is_(None), Bill.due_date, Bill.created_at, Bill.id)
    )
    return list((await session.execute(stmt)).scalars())


async def bills_by_numbers(session: AsyncSession, scope: MerchantScope, numbers: Sequence[str]) -> dict[str, Bill]:
    """number → the merchant's bill (in this mode) with that number."""
    stmt = select(Bill).where(
        Bill.merchant_id == scope.merchant_id, Bill.livemode == scope.livemode, Bill.number.in_(list(numbers))
    )
    return {b.number: b for b in (await session.execute(stmt)).scalars()}


async def collection_of_partner(
    session: AsyncSession, partner_id: str, partner_transaction_id: str, *, lock: bool = False
) -> tuple[Collection, str, str] | None:
    """The partner's collection with that transaction id, with its biller's and customer's codes."""
    stmt = (
        select(Collection, Merchant.biller_code, Customer.code)
        .join(Merchant, Merchant.id == Collection.merchant_id)
        .join(Customer, Customer.id == Collection.customer_id)
        .where(Collection.partner_id == partner_id, Collection.partner_transaction_id == partner_transaction_id)
    )
    if lock:
        stmt = stmt.with_for_update(of=Collection).execution_options(populate_existing=True)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    collection, biller_code, customer_code = row
    return collection, biller_code or "", customer_code


def add_request(session: AsyncSession, row: PartnerRequest) -> None:
    session.add(row)
