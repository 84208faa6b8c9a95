from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENCY_REQUIRED,
    JSON_BODY,
    MERCHANT_KEY,
    PARAMETERS,
    IdempotencyKeyHeader,
    Limit,
    StartingAfter,
    idempotency_key,
    idempotent,
    json_response,
    problems,
    stored,
)
from gateway.auth import MerchantDep, RuntimeDep
from gateway.db import UnitOfWork
from gateway.errors import (
    AmountExceedsRefundable,
    InvalidState,
    NotFound,
    ProviderNotConfigured,
    RefundNotSupported,
)
from gateway.idempotency.service import StoredResponse
from gateway.refunds import repository, service
from gateway.refunds.schemas import RefundCreate, RefundObject
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(prefix="/v1/refunds", tags=["refunds"])


@router.post(
    "",
    status_code=201,
    response_model=RefundObject,
    summary="Refund a succeeded payment",
    responses=problems(
        *MERCHANT_KEY,
        *JSON_BODY,
        *IDEMPOTENCY_REQUIRED,
        NotFound,
        InvalidState,
        AmountExceedsRefundable,
        RefundNotSupported,
        ProviderNotConfigured,
    ),
    openapi_extra=idempotency_key(required=True),
    description="Requires an Idempotency-Key. `amount` defaults to what is still refundable; pending and "
    "succeeded refunds together never exceed `amount_received`. The refund is `pending` until the provider "
    "confirms (the sandbox bank confirms at once).",
)
async def create_refund(
    params: RefundCreate,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, resume_id: str | None) -> StoredResponse:
        refund = await service.create_refund(uow, rt, scope, params, resume_id)
        return stored(service.refund_object(refund), 201)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation, required=True)


@router.get(
    "",
    response_model=ListEnvelope[RefundObject],
    summary="List refunds, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def list_refunds(
    rt: RuntimeDep,
    scope: MerchantDep,
    payment_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    async with rt.db.transaction() as session:
        await repository.ensure_visible(session, scope, payment_id=payment_id)
        rows, has_more = await repository.list_page(session, scope, payment_id, limit, starting_after)
    return json_response(list_document([service.refund_object(r) for r in rows], has_more))


@router.get(
    "/{refund_id}",
    response_model=RefundObject,
    summary="Get a refund",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_refund(refund_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        refund = await service.get_refund(session, scope, refund_id)
    return json_response(service.refund_object(refund))
