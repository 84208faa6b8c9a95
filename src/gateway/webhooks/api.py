from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENT,
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
from gateway.errors import NotFound, UrlNotAllowedError
from gateway.idempotency.service import StoredResponse
from gateway.schemas import ListEnvelope, list_document
from gateway.webhooks import service
from gateway.webhooks.schemas import (
    AttemptObject,
    DeletedEndpoint,
    EndpointCreate,
    EndpointObject,
    EndpointUpdate,
    Redeliver,
    RedeliveryObject,
    RotateSecret,
)

router = APIRouter(tags=["webhooks"])
ENDPOINTS = "/v1/webhook-endpoints"


@router.post(
    ENDPOINTS,
    status_code=201,
    response_model=EndpointObject,
    summary="Subscribe a URL to events",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, UrlNotAllowedError),
    openapi_extra=idempotency_key(required=False),
    description="The `secret` (`whsec_…`) is shown only here and by rotation. URLs that resolve to private, "
    "loopback or link-local addresses answer 422 `url_not_allowed` unless the operator allows them; "
    "production requires https.",
)
async def create_endpoint(
    params: EndpointCreate,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    await service.check_url(rt, params.url)  # DNS before any transaction or lock

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        endpoint, secret = await service.create_endpoint(uow.session, rt, scope, params)
        return stored(service.endpoint_object(endpoint, secret), 201)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.get(
    ENDPOINTS,
    response_model=ListEnvelope[EndpointObject],
    summary="List webhook endpoints",
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_endpoints(
    rt: RuntimeDep, scope: MerchantDep, limit: Limit = 20, starting_after: StartingAfter = None
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_endpoints(session, scope, limit, starting_after)
    return json_response(list_document([service.endpoint_object(e) for e in rows], has_more))


@router.get(
    ENDPOINTS + "/{endpoint_id}",
    response_model=EndpointObject,
    summary="Get a webhook endpoint",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_endpoint(endpoint_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        endpoint = await service.get_endpoint(session, scope, endpoint_id)
    return json_response(service.endpoint_object(endpoint))


@router.patch(
    ENDPOINTS + "/{endpoint_id}",
    response_model=EndpointObject,
    summary="Change an endpoint's url, events or status",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, NotFound, UrlNotAllowedError),
)
async def update_endpoint(endpoint_id: str, params: EndpointUpdate, rt: RuntimeDep, scope: MerchantDep) -> Response:
    if params.url is not None:
        await service.check_url(rt, params.url)  # DNS before any transaction or lock
    async with rt.db.transaction() as session:
        endpoint = await service.update_endpoint(session, rt, scope, endpoint_id, params)
        document = service.endpoint_object(endpoint)
    return json_response(document)


@router.delete(
    ENDPOINTS + "/{endpoint_id}",
    response_model=DeletedEndpoint,
    summary="Delete an endpoint (its pending deliveries are canceled)",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def delete_endpoint(endpoint_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        await service.delete_endpoint(session, rt, scope, endpoint_id)
    return json_response({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})


@router.post(
    ENDPOINTS + "/{endpoint_id}/rotate-secret",
    response_model=EndpointObject,
    summary="Rotate the signing secret",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, NotFound),
    openapi_extra=idempotency_key(required=False),
    description="Until the old secret expires (`expire_old_after` seconds, default 86400, 0 = at once) every "
    "delivery carries both signatures in `webhook-signature`.",
)
async def rotate_secret(
    endpoint_id: str,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    params: Annotated[RotateSecret | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    expire = (params or RotateSecret()).expire_old_after

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        endpoint, secret = await service.rotate_secret(uow.session, rt, scope, endpoint_id, expire)
        return stored(service.endpoint_object(endpoint, secret))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.get(
    ENDPOINTS + "/{endpoint_id}/deliveries",
    response_model=ListEnvelope[AttemptObject],
    summary="Delivery attempts to this endpoint, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def list_attempts(
    endpoint_id: str,
    rt: RuntimeDep,
    scope: MerchantDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_attempts(session, scope, endpoint_id, limit, starting_after)
    return json_response(list_document([service.attempt_object(a) for a in rows], has_more))


@router.post(
    "/v1/events/{event_id}/redeliver",
    status_code=202,
    response_model=RedeliveryObject,
    tags=["events"],
    summary="Queue the event again for its subscribed endpoints (or one)",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, NotFound),
    openapi_extra=idempotency_key(required=False),
)
async def redeliver(
    event_id: str,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    params: Annotated[Redeliver | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    endpoint_id = params.endpoint_id if params is not None else None

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        targets = await service.redeliver(uow.session, rt, scope, event_id, endpoint_id)
        return stored({"object": "event_redelivery", "event_id": event_id, "endpoint_ids": targets}, 202)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)
