"""Every SQL statement about organisation units. The table is small (a province has a few hundred units), so the
tree is read whole when it is walked."""

from __future__ import annotations

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import flush_in_savepoint
from gateway.org_units.models import OrgUnit


async def get(session: AsyncSession, code: str, *, lock: bool = False) -> OrgUnit | None:
    stmt = select(OrgUnit).where(OrgUnit.code == code)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_page(session: AsyncSession, limit: int, starting_after: str | None) -> tuple[list[OrgUnit], bool]:
    """One page, newest first (§1; units created in the same instant by code, descending), after the cursor unit."""
    stmt = select(OrgUnit)
    if starting_after is not None:
        cursor = await get(session, starting_after)
        if cursor is None:
            return [], False
        stmt = stmt.where(tuple_(OrgUnit.created_at, OrgUnit.code) < tuple_(cursor.created_at, cursor.code))
    ordered = stmt.order_by(OrgUnit.created_at.desc(), OrgUnit.code.desc()).limit(limit + 1)
    rows = list((await session.execute(ordered)).scalars())
    return rows[:limit], len(rows) > limit


async def all_units(session: AsyncSession) -> list[OrgUnit]:
    return list((await session.execute(select(OrgUnit).order_by(OrgUnit.code))).scalars())


async def add_unless_exists(session: AsyncSession, unit: OrgUnit) -> bool:
    """Add the new unit and flush it; False when its code exists (a concurrent request took it first)."""
    code = unit.code  # a rolled-back savepoint expunges the object
    refused = await flush_in_savepoint(session, lambda: session.add(unit))
    if refused is None:
        return True
    if await get(session, code) is not None:
        return False
    raise refused
