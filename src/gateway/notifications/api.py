from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from gateway.adapters.base import InboundRequest
from gateway.api_support import PARAMETERS, PAYLOAD_TOO_LARGE, json_response, problems
from gateway.auth import RuntimeDep
from gateway.errors import DATABASE_UNAVAILABLE, InvalidSignature, NotFound
from gateway.notifications.inquiries import answer_inquiry, sandbox_billers
from gateway.notifications.schemas import BillerList, PlatformInquiryAnswer, ReturnStatus, VerifyOrderAnswer
from gateway.notifications.service import receive_notification, verify_browser_return

router = APIRouter(tags=["provider callbacks"])
NATIONAL_PLATFORM = "national_platform"


def _provider_answers() -> dict[int | str, dict[str, Any]]:
    """The provider's own acknowledgement formats, beside the gateway's problems (unknown provider, bad request)."""
    answers = problems(*PARAMETERS, PAYLOAD_TOO_LARGE, NotFound, DATABASE_UNAVAILABLE)
    own_format: dict[str, Any] = {"application/json": {"schema": {}}}
    for status, description in (
        (200, "Acknowledged, in the provider's format"),
        (400, "Refused (forged or tampered), in the provider's format (MoMo)"),
        (401, "Refused (forged or tampered), in the provider's format (VietQR)"),
        (500, "Not processed yet: the provider's protocol asks it to send the notification again"),
    ):
        answer = answers.setdefault(status, {"description": description})
        answer["description"] = description + (f"; or {answer['description']}" if "content" in answer else "")
        answer["content"] = {**own_format, **answer.get("content", {})}
    answers[204] = {"description": "Acknowledged (MoMo expects no content)"}
    return answers


_DESCRIPTION = (
    "No API key: the adapter verifies the provider's own signature. Forged or tampered notifications change "
    "nothing; repeats are no-ops; the answer is in the provider's own format. Every raw notification is kept."
)


@router.post(
    "/v1/providers/{provider}/notifications",
    summary="A provider's notification (IPN), POST",
    description=_DESCRIPTION,
    responses=_provider_answers(),
)
async def provider_notification_post(provider: str, request: Request, rt: RuntimeDep) -> Response:
    return await _receive(provider, request, rt)


@router.get(
    "/v1/providers/{provider}/notifications",
    summary="A provider's notification (IPN), GET",
    description=_DESCRIPTION,
    responses=_provider_answers(),
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
    responses={
        200: {
            "description": "The payment has no return_url: its id and status",
            "content": {"application/json": {"schema": ReturnStatus.model_json_schema()}},
        },
        303: {
            "description": "Redirect to the payment's return_url",
            "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
        },
        **problems(*PARAMETERS, NotFound, InvalidSignature, DATABASE_UNAVAILABLE),
    },
)
async def provider_return(provider: str, request: Request, rt: RuntimeDep) -> Response:
    visit = await verify_browser_return(rt, provider, _inbound(request, b""))
    if visit.return_url is None:
        return json_response({"payment_id": visit.payment_id, "status": visit.status})
    separator = "&" if urlsplit(visit.return_url).query else "?"
    target = f"{visit.return_url}{separator}{urlencode({'payment_id': visit.payment_id, 'status': visit.status})}"
    return RedirectResponse(target, status_code=303)


@router.post(
    "/v1/providers/{provider}/verify",
    response_model=VerifyOrderAnswer,
    summary="A telco's verify-order call (mobile money, §15)",
    description="No API key: the telco's check_sum is verified with the account its `merchant_code` names. "
    "Form or JSON body. `billcode` is the gateway's payment (a gateway-started payment) or a bill number or "
    "customer code of the merchant: an open one answers `00` with the amount due and creates the payment its "
    "result will settle (once per telco `order_id`); an unknown or unpayable one `01`, a bad check_sum `02`. "
    "Every call is kept for audit.",
    responses=problems(*PARAMETERS, PAYLOAD_TOO_LARGE, NotFound, DATABASE_UNAVAILABLE),
)
async def provider_verify(provider: str, request: Request, rt: RuntimeDep) -> Response:
    if provider == NATIONAL_PLATFORM:  # its inquiry has its own route, and answers in its own format
        raise NotFound(f"The national platform asks at /v1/providers/{NATIONAL_PLATFORM}/inquiry.")
    return await _inquiry(provider, request, rt)


async def _inquiry(provider: str, request: Request, rt: RuntimeDep) -> Response:
    answer = await answer_inquiry(rt, provider, _inbound(request, await request.body()))
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)


@router.post(
    f"/v1/providers/{NATIONAL_PLATFORM}/inquiry",
    response_model=PlatformInquiryAnswer,
    summary="The national platform's inquiry by dossier code (§16)",
    description="No API key: the platform's MaXacThuc (SHA-256 of `MaHoSo|MaDoiTac|ThoiGianGD|hash_key`) is "
    "verified with the account its `MaDoiTac` names. JSON `{MaHoSo, MaDoiTac, ThoiGianGD, MaXacThuc}`. Answered "
    "from the open payment whose `reference` is the dossier code, else from a payable bill of that number (the "
    "payment its result will settle is then created, once: a repeated inquiry finds it): `error_code` 1 with "
    "`SoTien`, `MaThamChieu` and the fees `PhiLePhi`; 0 when nothing is due, it is paid or unknown; -1 for a bad "
    "MaXacThuc or an error. Every call is kept for audit.",
    responses=problems(*PARAMETERS, PAYLOAD_TOO_LARGE, DATABASE_UNAVAILABLE),
)
async def national_platform_inquiry(request: Request, rt: RuntimeDep) -> Response:
    return await _inquiry(NATIONAL_PLATFORM, request, rt)


@router.get(
    "/v1/providers/{provider}/billers",
    response_model=BillerList,
    summary="The billers a telco's sandbox lists on its USSD menu (test mode only)",
    description="Signed by the sandbox telco (`cmd=BILLER_LIST`, `version`, `check_sum` over cmd and version). "
    "Every merchant with a `biller_code`, by name. 404 when GATEWAY_SANDBOX is off.",
    responses=problems(*PARAMETERS, NotFound, InvalidSignature, DATABASE_UNAVAILABLE),
)
async def provider_billers(provider: str, request: Request, rt: RuntimeDep) -> Response:
    billers = await sandbox_billers(rt, provider, _inbound(request, b""))
    return json_response({"billers": billers})


def _inbound(request: Request, body: bytes) -> InboundRequest:
    return InboundRequest(
        method=request.method,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
    )
