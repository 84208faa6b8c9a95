"""Keyset pagination, newest first, for every list endpoint."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")


async def keyset_page(
    session: AsyncSession,
    stmt: Select[T],
    key: InstrumentedAttribute[Any],
    limit: int,
    starting_after: object | None,
) -> tuple[list[T], bool]:
    """One page of `stmt`, ordered by `key` descending, after the cursor; and whether more follow.

    Ids are time-ordered, so "older than the cursor" is one index range: page 1,000 costs what page 1 does.
    One row more than the page is read to tell whether another page follows.
    """
    if starting_after is not None:
        stmt = stmt.where(key < starting_after)
    rows = list((await session.execute(stmt.order_by(key.desc()).limit(limit + 1))).scalars())
    return rows[:limit], len(rows) > limit
