"""Every SQL statement about customers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.customers.models import Customer


def code_key(code: str) -> str:
    """Codes are matched case-insensitively: `pa01` and `PA01` are one customer."""
    return code.upper()


async def get(session: AsyncSession, scope: MerchantScope, customer_id: str) -> Customer | None:
    return (
        await session.execute(
            select(Customer).where(
                Customer.id == customer_id,
                Customer.merchant_id == scope.merchant_id,
                Customer.livemode == scope.livemode,
            )
        )
    ).scalar_one_or_none()


async def by_code(session: AsyncSession, scope: MerchantScope, code: str, *, lock: bool = False) -> Customer | None:
    stmt = select(Customer).where(
        Customer.merchant_id == scope.merchant_id,
        Customer.livemode == scope.livemode,
        Customer.code_key == code_key(code),
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_by_id(session: AsyncSession, customer_id: str) -> Customer | None:
    """The customer's row lock orders every change to its balance and its bills (take it before any bill's)."""
    return (
        await session.execute(
            select(Customer)
            .where(Customer.id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def by_payment_codes(
    session: AsyncSession, codes: Sequence[str], livemode: bool, merchant_id: str | None
) -> Customer | None:
    """The customer a transfer's content names, locked; `merchant_id` None for the shared sandbox account."""
    if not codes:
        return None
    stmt = select(Customer).where(Customer.payment_code.in_(list(codes)), Customer.livemode == livemode)
    if merchant_id is not None:
        stmt = stmt.where(Customer.merchant_id == merchant_id)
    found = {
        c.payment_code: c
        for c in (await session.execute(stmt.with_for_update().execution_options(populate_existing=True))).scalars()
    }
    for code in codes:  # the first code the content carries wins
        if code in found:
            return found[code]
    return None
