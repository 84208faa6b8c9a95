"""The outbox: an event row is written in the transaction of the change it reports.

Subscribers registered at start-up (`Runtime.event_subscribers`) are called in that transaction; a bulk change
(an import) records its events with `record_events` and calls `Runtime.event_batch_subscribers` once instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import isoformat
from gateway.domain import EventType
from gateway.events import repository
from gateway.events.models import Event, EventBatch
from gateway.runtime import Runtime


async def record_event(
    session: AsyncSession,
    rt: Runtime,
    *,
    merchant_id: str,
    livemode: bool,
    type: EventType,
    obj: dict[str, Any],
    payment_id: str | None = None,
    refund_id: str | None = None,
    late: bool = False,
) -> Event:
    now = rt.clock.now()
    event_id = rt.ids.new("evt")
    document: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": type.value,
        "created_at": isoformat(now),
        "data": {"object": obj},
    }
    if late:
        document["late"] = True
    values = {
        "id": event_id,
        "merchant_id": merchant_id,
        "livemode": livemode,
        "type": type.value,
        "payment_id": payment_id,
        "refund_id": refund_id,
        "body": orjson.dumps(document).decode(),
        "created_at": now,
    }
    await repository.insert_event(session, values)
    event = Event(**values)
    for subscriber in rt.event_subscribers:
        await subscriber(session, rt, event)
    return event


def event_rows(
    rt: Runtime, *, merchant_id: str, livemode: bool, type: EventType, objects: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of one event per object, all of one type, their bodies serialized: what `write_events` stores.
    Pure CPU, no database: an import builds them while PostgreSQL writes its bills."""
    now = rt.clock.now()
    created_at = isoformat(now)
    rows: list[dict[str, Any]] = []
    ids = rt.ids.new_many("evt", len(objects))
    for event_id, obj in zip(ids, objects, strict=True):
        document = {
            "id": event_id,
            "object": "event",
            "type": type.value,
            "created_at": created_at,
            "data": {"object": obj},
        }
        rows.append(
            {
                "id": event_id,
                "merchant_id": merchant_id,
                "livemode": livemode,
                "type": type.value,
                "payment_id": None,
                "refund_id": None,
                "body": orjson.dumps(document).decode(),
                "created_at": now,
            }
        )
    return rows


async def write_events(session: AsyncSession, rt: Runtime, rows: Sequence[dict[str, Any]]) -> EventBatch | None:
    """Store rows made by `event_rows` (one merchant, mode and type) in one statement; each batch subscriber is
    called once with the whole batch (the webhooks queue every delivery of it in one INSERT too)."""
    if not rows:
        return None
    await repository.insert_events(session, list(rows))
    first = rows[0]
    batch = EventBatch(
        first["merchant_id"], first["livemode"], first["type"], first["created_at"], [r["id"] for r in rows]
    )
    for subscriber in rt.event_batch_subscribers:
        await subscriber(session, rt, batch)
    return batch


async def record_events(
    session: AsyncSession,
    rt: Runtime,
    *,
    merchant_id: str,
    livemode: bool,
    type: EventType,
    objects: Sequence[dict[str, Any]],
) -> EventBatch:
    """One event per object, all of one type, in one multi-row INSERT (`event_rows` then `write_events`)."""
    rows = event_rows(rt, merchant_id=merchant_id, livemode=livemode, type=type, objects=objects)
    batch = await write_events(session, rt, rows)
    return batch or EventBatch(merchant_id, livemode, type.value, rt.clock.now(), [])
