from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from gateway.api_support import (
    ADMIN_TOKEN,
    IDEMPOTENT,
    JSON_BODY,
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
from gateway.auth import Admin, AdminDep, RuntimeDep
from gateway.clock import isoformat
from gateway.db import UnitOfWork
from gateway.domain import KeyMode
from gateway.errors import BillerCodeTaken, NotFound
from gateway.idempotency.service import StoredResponse
from gateway.merchants import service
from gateway.merchants.repository import forget_routing
from gateway.merchants.schemas import (
    ApiKeyCreate,
    MerchantCreate,
    MerchantObject,
    MerchantUpdate,
    MerchantWithKey,
    NewApiKey,
    ProviderAccountObject,
    RevokedApiKey,
)
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(prefix="/v1/merchants", tags=["merchants (admin token)"])
ADMIN_SCOPE = Admin.idempotency_scope


@router.post(
    "",
    status_code=201,
    response_model=MerchantWithKey,
    summary="Create a merchant and its first test key",
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, *IDEMPOTENT, BillerCodeTaken),
    openapi_extra=idempotency_key(required=False),
    description="`biller_code` (optional) is how collection partners name the merchant (§12): unique, compared "
    "case-insensitively, stored as given; taken, 409 `biller_code_taken`. `org_unit` (optional) names an existing "
    "organisation unit (§17) by code, else 422.",
)
async def create_merchant(
    params: MerchantCreate,
    request: Request,
    rt: RuntimeDep,
    _: AdminDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        merchant, key, secret = await service.create_merchant(
            uow.session, rt, params.name, params.category, biller_code=params.biller_code, org_unit=params.org_unit
        )
        return stored({**service.merchant_object(merchant), "api_key": service.new_key_object(key, secret)}, 201)

    return await idempotent(rt, request, ADMIN_SCOPE, idempotency_key, operation)


@router.get(
    "",
    response_model=ListEnvelope[MerchantObject],
    summary="List merchants",
    responses=problems(*ADMIN_TOKEN, *PARAMETERS),
)
async def list_merchants(
    rt: RuntimeDep, _: AdminDep, limit: Limit = 20, starting_after: StartingAfter = None
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_merchants(session, limit, starting_after)
    return json_response(list_document([service.merchant_object(m) for m in rows], has_more))


@router.get(
    "/{merchant_id}",
    response_model=MerchantObject,
    summary="Get a merchant",
    responses=problems(*ADMIN_TOKEN, *PARAMETERS, NotFound),
)
async def get_merchant(merchant_id: str, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        merchant = await service.get_merchant(session, merchant_id)
    return json_response(service.merchant_object(merchant))


@router.patch(
    "/{merchant_id}",
    response_model=MerchantObject,
    summary="Change a merchant's name, category, biller code or organisation unit",
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, NotFound, BillerCodeTaken),
    description="Only the fields sent change; `biller_code: null` and `org_unit: null` clear them (a unit must "
    "exist, else 422; payments already made keep the unit they were recorded with). A new `biller_code` must be free, "
    "compared case-insensitively (409 `biller_code_taken`).",
)
async def update_merchant(merchant_id: str, params: MerchantUpdate, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        merchant = await service.update_merchant(session, rt, merchant_id, params)
        document = service.merchant_object(merchant)
    return json_response(document)


@router.post(
    "/{merchant_id}/api-keys",
    status_code=201,
    response_model=NewApiKey,
    summary="Issue an API key",
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, *IDEMPOTENT, NotFound),
    openapi_extra=idempotency_key(required=False),
)
async def create_api_key(
    merchant_id: str,
    request: Request,
    rt: RuntimeDep,
    _: AdminDep,
    params: Annotated[ApiKeyCreate | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    mode = params.mode if params is not None else KeyMode.test

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        await service.get_merchant(uow.session, merchant_id)
        key, secret = await service.issue_api_key(uow.session, rt, merchant_id, mode)
        return stored(service.new_key_object(key, secret), 201)

    return await idempotent(rt, request, ADMIN_SCOPE, idempotency_key, operation)


@router.delete(
    "/{merchant_id}/api-keys/{key_id}",
    response_model=RevokedApiKey,
    summary="Revoke an API key (it answers 401 at once)",
    responses=problems(*ADMIN_TOKEN, *PARAMETERS, NotFound),
)
async def revoke_api_key(merchant_id: str, key_id: str, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        key = await service.revoke_api_key(session, rt, merchant_id, key_id)
    rt.api_keys.forget_key(key.id)  # after the commit: this process refuses the key at once
    document = {
        "id": key.id,
        "object": "api_key",
        "mode": "live" if key.livemode else "test",
        "revoked": True,
        "revoked_at": isoformat(key.revoked_at) if key.revoked_at else None,
    }
    return json_response(document)


@router.put(
    "/{merchant_id}/providers/{provider}",
    response_model=ProviderAccountObject,
    summary="Store a provider's live credentials and settings",
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, NotFound),
    description="For `vietqr`: `bank_bin`, `account_number`, `account_name`, and optionally `webhook_secret` "
    "(the bank's notification key), `api_base_url` and `api_key` (its transfer API, for refunds). Secret "
    "fields are encrypted at rest and never returned.",
)
async def put_provider(
    merchant_id: str, provider: str, body: Annotated[dict[str, Any], Body()], rt: RuntimeDep, _: AdminDep
) -> Response:
    async with rt.db.transaction() as session:
        row, secret_names = await service.put_provider_account(session, rt, merchant_id, provider, body)
        forget_routing(rt.routing_cache, merchant_id)
        document = service.provider_account_object(row, secret_names)
    return json_response(document)
