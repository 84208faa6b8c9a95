"""The outbox: an event row is written in the transaction of the change it reports.

Subscribers registered at start-up (`Runtime.event_subscribers`) are called in that transaction.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import isoformat
from gateway.domain import EventType
from gateway.events import repository
from gateway.events.models import Event
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
