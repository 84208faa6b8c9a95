from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select
from starlette.responses import Response

from gateway.api_support import MERCHANT_KEY, PARAMETERS, Limit, StartingAfter, problems
from gateway.auth import MerchantDep, RuntimeDep
from gateway.domain import EventType
from gateway.errors import NotFound
from gateway.events.models import Event
from gateway.schemas import ListEnvelope

router = APIRouter(prefix="/v1/events", tags=["events"])


class EventObject(BaseModel):
    id: str
    object: Literal["event"] = "event"
    type: EventType
    created_at: str
    data: dict[str, Any]
    late: bool | None = None


@router.get(
    "",
    response_model=ListEnvelope[EventObject],
    summary="List events, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_events(
    rt: RuntimeDep,
    scope: MerchantDep,
    type: EventType | None = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    stmt = select(Event.body).where(Event.merchant_id == scope.merchant_id, Event.livemode == scope.livemode)
    if type is not None:
        stmt = stmt.where(Event.type == type.value)
    if starting_after is not None:
        stmt = stmt.where(Event.id < starting_after)
    async with rt.db.transaction() as session:
        bodies = list((await session.execute(stmt.order_by(Event.id.desc()).limit(limit + 1))).scalars())
    has_more = len(bodies) > limit
    # Events are served exactly as stored: the same bytes a webhook delivers.
    payload = b'{"object":"list","data":[' + ",".join(bodies[:limit]).encode() + b'],"has_more":'
    payload += b"true}" if has_more else b"false}"
    return Response(payload, media_type="application/json")


@router.get(
    "/{event_id}",
    response_model=EventObject,
    summary="Get an event",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_event(event_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        body = (
            await session.execute(
                select(Event.body).where(
                    Event.id == event_id,
                    Event.merchant_id == scope.merchant_id,
                    Event.livemode == scope.livemode,
                )
            )
        ).scalar_one_or_none()
    if body is None:
        raise NotFound(f"No event {event_id}.")
    return Response(body.encode(), media_type="application/json")
