from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from gateway.adapters.base import InboundRequest
from gateway.api_support import json_response
from gateway.auth import RuntimeDep
from gateway.notifications.service import receive_notification, verify_browser_return

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
    inbound = _inbound(request, await request.body())
    ack = await receive_notification(rt, provider, inbound)
    return Response(ack.body, status_code=ack.status_code, media_type=ack.media_type)


@router.get(
    "/v1/providers/{provider}/return",
    summary="The payer's browser coming back from a provider's page",
    description="The provider's signed return is verified, then the browser is redirected (303) to the "
    "payment's `return_url` with `payment_id` and `status` added. It never changes a payment's state: only "
    "the provider's notification (or a status query) does. A tampered return answers 400 `invalid_signature`.",
    response_class=Response,
    responses={303: {"description": "Redirect to the payment's return_url"}},
)
async def provider_return(provider: str, request: Request, rt: RuntimeDep) -> Response:
    visit = await verify_browser_return(rt, provider, _inbound(request, b""))
    if visit.return_url is None:
        return json_response({"payment_id": visit.payment_id, "status": visit.status})
    separator = "&" if urlsplit(visit.return_url).query else "?"
    target = f"{visit.return_url}{separator}{urlencode({'payment_id': visit.payment_id, 'status': visit.status})}"
    return RedirectResponse(target, status_code=303)


def _inbound(request: Request, body: bytes) -> InboundRequest:
    return InboundRequest(
        method=request.method,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
