from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.adapters.base import InboundRequest
from gateway.auth import RuntimeDep
from gateway.notifications.service import receive_notification

router = APIRouter(tags=["provider callbacks"])


_DESCRIPTION = (
    "No API key: the adapter verifies the provider's own signature. Forged or tampered notifications change "
    "nothing; repeats are no-ops; the answer is in the provider's own format. Every raw notification is kept."
)


@router.post(
    "/v1/providers/{provider}/notifications",
    summary="A provider's notification (IPN), POST",
    description=_DESCRIPTION,
)
async def provider_notification_post(provider: str, request: Request, rt: RuntimeDep) -> Response:
    return await _receive(provider, request, rt)


@router.get(
    "/v1/providers/{provider}/notifications",
    summary="A provider's notification (IPN), GET",
    description=_DESCRIPTION,
)
async def provider_notification_get(provider: str, request: Request, rt: RuntimeDep) -> Response:
    return await _receive(provider, request, rt)


async def _receive(provider: str, request: Request, rt: RuntimeDep) -> Response:
    inbound = InboundRequest(
        method=request.method,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=await request.body(),
    )
    ack = await receive_notification(rt, provider, inbound)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)
