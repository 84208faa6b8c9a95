"""Every SQL statement about events."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.db import insert_new_many
from gateway.domain import EventType
from gateway.events.models import Event
from gateway.pagination import keyset_page

_INSERT_EVENT = insert(cast(Table, Event.__table__))


async def insert_event(session: AsyncSession, values: dict[str, Any]) -> None:
    # Written at once (not at the next flush), so the deliveries that reference it can follow in this transaction.
    await session.execute(_INSERT_EVENT, values)


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Many new events in one statement (a COPY on PostgreSQL), not one round trip each."""
    await insert_new_many(session, Event, rows)


async def bodies_page(
    session: AsyncSession, scope: MerchantScope, type: EventType | None, limit: int, starting_after: str | None
) -> tuple[list[str], bool]:
    """The stored documents of a page of the merchant's events, newest first."""
    stmt = select(Event.body).where(Event.merchant_id == scope.merchant_id, Event.livemode == scope.livemode)
    if type is not None:
        stmt = stmt.where(Event.type == type.value)
    return await keyset_page(session, stmt, Event.id, limit, starting_after)


async def body_of(session: AsyncSession, scope: MerchantScope, event_id: str) -> str | None:
    stmt = select(Event.body).where(
        Event.id == event_id, Event.merchant_id == scope.merchant_id, Event.livemode == scope.livemode
    )
    return (await session.execute(stmt)).scalar_one_or_none()
