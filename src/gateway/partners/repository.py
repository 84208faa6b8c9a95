"""Every SQL statement about partners and which merchants they may collect for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import flush_in_savepoint
from gateway.merchants import repository as merchants
from gateway.merchants.models import Merchant
from gateway.pagination import keyset_page
from gateway.partners.models import MerchantPartner, Partner


async def get(session: AsyncSession, partner_id: str, *, lock: bool = False) -> Partner | None:
    stmt = select(Partner).where(Partner.id == partner_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_page(session: AsyncSession, limit: int, starting_after: str | None) -> tuple[list[Partner], bool]:
    return await keyset_page(session, select(Partner), Partner.id, limit, starting_after)


async def code_taken(session: AsyncSession, code: str) -> bool:
    """Whether a partner has the code, in any case (partners are few: no index of its own is needed)."""
    stmt = select(Partner.id).where(func.upper(Partner.code) == code.upper()).limit(1)
    return (await session.execute(stmt)).first() is not None


async def add_unless_code_taken(session: AsyncSession, partner: Partner) -> bool:
    """Add the new partner and flush it; False when a concurrent request took the code first. The caller's check
    before is the common case; the unique index decides a race."""
    code = partner.code  # a rolled-back savepoint expunges the object
    refused = await flush_in_savepoint(session, lambda: session.add(partner))
    if refused is None:
        return True
    if await code_taken(session, code):
        return False
    raise refused


async def set_enabled(
    session: AsyncSession, merchant_id: str, partner_id: str, enabled: bool, now: datetime
) -> MerchantPartner:
    """Create or change whether the partner may collect for the merchant; two first PUTs racing both land (the
    second changes the row the first created)."""
    key = (merchant_id, partner_id)
    row = await session.get(MerchantPartner, key, with_for_update=True, populate_existing=True)
    if row is None:
        new = MerchantPartner(
            merchant_id=merchant_id, partner_id=partner_id, enabled=enabled, created_at=now, updated_at=now
        )
        refused = await flush_in_savepoint(session, lambda: session.add(new))
        if refused is None:
            return new
        row = await session.get(MerchantPartner, key, with_for_update=True, populate_existing=True)
        if row is None:
            raise refused
    row.enabled = enabled
    row.updated_at = now
    await session.flush()
    return row


async def enabled_for(session: AsyncSession, partner_id: str, merchant_id: str) -> bool:
    """Whether the merchant lets the partner collect for it (PUT /v1/merchants/{id}/partners/{partner_id})."""
    stmt = select(MerchantPartner.enabled).where(
        MerchantPartner.merchant_id == merchant_id, MerchantPartner.partner_id == partner_id
    )
    return bool((await session.execute(stmt)).scalar_one_or_none())


async def merchant_by_biller_code(session: AsyncSession, biller_code: str) -> Merchant | None:
    """The merchant a partner names by `biller_code`. Biller codes are stored as the operator gave them and matched
    case-insensitively: `evn_hn` finds the merchant whose code is `EVN_HN`."""
    return await merchants.by_biller_code(session, biller_code)
