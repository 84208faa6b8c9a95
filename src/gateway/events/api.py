from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from gateway.api_support import MERCHANT_KEY, PARAMETERS, Limit, StartingAfter, problems
from gateway.auth import MerchantDep, RuntimeDep
from gateway.domain import EventType
from gateway.errors import NotFound
from gateway.events import repository
from gateway.events.schemas import EventObject
from gateway.schemas import ListEnvelope

router = APIRouter(prefix="/v1/events", tags=["events"])


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
    async with rt.db.transaction() as session:
        bodies, has_more = await repository.bodies_page(session, scope, type, limit, starting_after)
    # Events are served exactly as stored: the same bytes a webhook delivers.
    payload = b'{"object":"list","data":[' + ",".join(bodies).encode() + b'],"has_more":'
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
        body = await repository.body_of(session, scope, event_id)
    if body is None:
        raise NotFound(f"No event {event_id}.")
    return Response(body.encode(), media_type="application/json")
