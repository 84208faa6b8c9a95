from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENCY_REQUIRED,
    IDEMPOTENT,
    JSON_BODY,
    MERCHANT_KEY,
    PARAMETERS,
    PAYLOAD_TOO_LARGE,
    DateTimeFilter,
    IdempotencyKeyHeader,
    Limit,
    StartingAfter,
    idempotency_key,
    idempotent,
    json_response,
    problems,
    qr_image,
    stored,
)
from gateway.auth import MerchantDep, RuntimeDep
from gateway.db import UnitOfWork
from gateway.domain import PaymentMethod, PaymentStatus
from gateway.errors import (
    AmountNotAllowed,
    AmountOutOfRange,
    BillNotPayable,
    ConfirmationInProgress,
    CurrencyNotSupported,
    InvalidState,
    MethodNotAvailable,
    NotFound,
    ProviderNotConfigured,
    ProviderUnavailable,
    ValidationFailed,
)
from gateway.idempotency.service import StoredResponse
from gateway.payments import repository, service
from gateway.payments.schemas import PaymentConfirm, PaymentCreate, PaymentObject
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(prefix="/v1/payments", tags=["payments"])
# Confirming asks the provider: its routing, configuration and reachability can refuse.
CONFIRMING = (
    InvalidState,
    ConfirmationInProgress,
    MethodNotAvailable,
    AmountOutOfRange,
    CurrencyNotSupported,
    ProviderNotConfigured,
    ProviderUnavailable,
)


@router.post(
    "",
    status_code=201,
    response_model=PaymentObject,
    summary="Create a payment",
    responses=problems(
        *MERCHANT_KEY, *JSON_BODY, *IDEMPOTENCY_REQUIRED, *CONFIRMING, NotFound, BillNotPayable, AmountNotAllowed
    ),
    openapi_extra=idempotency_key(required=True),
    description="Requires an Idempotency-Key. With `confirm: true` the payment is created and confirmed in one "
    "call: a VietQR payment then answers `requires_action` with a `display_qr` next action.\n\n"
    "**For a bill** (`bill_id`, §11): `amount` defaults to what remains and `reference` to the bill's number; the "
    "amount must fit the bill's `amount_rule` (`422 amount_not_allowed`); a paid or void bill answers "
    "`409 bill_not_payable`; an unknown bill `404 not_found`. The funds go to that bill up to what remains, the "
    "rest to the customer's balance.\n\n"
    "**At the counter** (`method: counter`, §13): with `counter: {instrument: cash | card_pos, location, "
    "cashier}` and `confirm: true` the payment is `succeeded` at once, `channel: counter`, posted against the "
    "merchant's counter account; its refunds are paid out at the counter and succeed at once.",
)
async def create_payment(
    params: PaymentCreate,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, resume_id: str | None) -> StoredResponse:
        created = None
        if resume_id is None:
            payment = created = await service.create_payment(uow.session, rt, scope, params)
        else:  # a retry of a request that created the payment and then died
            payment = await service.get_payment(uow.session, rt, scope, resume_id)
        if params.confirm and payment.status == PaymentStatus.requires_confirmation:
            payment = await service.confirm_payment(
                uow, rt, scope, payment.id, None, resuming=resume_id is not None, created=created
            )
        return stored(service.payment_object(payment), 201)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation, required=True)


@router.get(
    "",
    response_model=ListEnvelope[PaymentObject],
    summary="List payments, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_payments(
    rt: RuntimeDep,
    scope: MerchantDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    status: PaymentStatus | None = None,
    method: PaymentMethod | None = None,
    provider: Annotated[str | None, Query(max_length=40)] = None,
    reference: Annotated[str | None, Query(max_length=64)] = None,
    created_gte: Annotated[DateTimeFilter | None, Query(description="RFC 3339, inclusive")] = None,
    created_lt: Annotated[DateTimeFilter | None, Query(description="RFC 3339, exclusive")] = None,
) -> Response:
    filters = repository.PaymentFilters(
        status=status,
        method=method,
        provider=provider,
        reference=reference,
        created_gte=_utc(created_gte, "created_gte"),
        created_lt=_utc(created_lt, "created_lt"),
    )
    async with rt.db.transaction() as session:
        rows, has_more = await repository.list_page(session, scope, filters, limit, starting_after)
        stale = [p for p in rows if p.status in repository.EXPIRABLE and p.expires_at <= rt.clock.now()]
        for payment in stale:  # never list a stale payment as payable
            locked = await repository.get_for_update(session, scope, payment.id)
            if locked is not None:
                await service.expire_if_due(session, rt, locked)
        documents = [service.payment_object(p) for p in rows]
    return json_response(list_document(documents, has_more))


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed.field(["query", name], "out of range") from None


@router.get(
    "/{payment_id}",
    response_model=PaymentObject,
    summary="Get a payment",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_payment(payment_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        payment = await service.get_payment(session, rt, scope, payment_id)
        document = service.payment_object(payment)
    return json_response(document)


@router.post(
    "/{payment_id}/confirm",
    response_model=PaymentObject,
    summary="Confirm a payment",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, NotFound, *CONFIRMING),
    openapi_extra=idempotency_key(required=False),
    description="Only from `requires_confirmation`; otherwise 409 `invalid_state`.",
)
async def confirm_payment(
    payment_id: str,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    params: Annotated[PaymentConfirm | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, resume_id: str | None) -> StoredResponse:
        payment = await service.confirm_payment(uow, rt, scope, payment_id, params, resuming=resume_id is not None)
        return stored(service.payment_object(payment))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.post(
    "/{payment_id}/cancel",
    response_model=PaymentObject,
    summary="Cancel an unpaid payment",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, PAYLOAD_TOO_LARGE, *IDEMPOTENT, NotFound, InvalidState),
    openapi_extra=idempotency_key(required=False),
    description="From `requires_confirmation` or `requires_action`; otherwise 409 `invalid_state`. Funds that "
    "still arrive for a canceled payment make it succeed, with `late: true` on its event.",
)
async def cancel_payment(
    payment_id: str,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        payment = await service.cancel_payment(uow.session, rt, scope, payment_id)
        return stored(service.payment_object(payment))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


async def _qr_payload(rt: RuntimeDep, scope: MerchantDep, payment_id: str) -> str:
    async with rt.db.transaction() as session:
        payment = await service.get_payment(session, rt, scope, payment_id)
        action = service.payment_object(payment)["next_action"]
    if not action or action.get("type") != "display_qr":
        raise InvalidState(f"Payment {payment_id} is {payment.status} and has no QR code to display.")
    return str(action["qr_payload"])


@router.get(
    "/{payment_id}/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*MERCHANT_KEY, *PARAMETERS, NotFound, InvalidState),
    },
    summary="The payment's VietQR code as PNG",
)
async def qr_png(payment_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    return qr_image(await _qr_payload(rt, scope, payment_id), "png")


@router.get(
    "/{payment_id}/qr.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*MERCHANT_KEY, *PARAMETERS, NotFound, InvalidState),
    },
    summary="The payment's VietQR code as SVG",
)
async def qr_svg(payment_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    return qr_image(await _qr_payload(rt, scope, payment_id), "svg")
