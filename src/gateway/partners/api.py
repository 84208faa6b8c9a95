"""Collection partners (§12), the operator's side (admin token): partners, their secrets, and which merchants each
may collect for. The partners' own routes (/v1/collect) are in gateway.collections."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

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
from gateway.auth import AdminDep, RuntimeDep
from gateway.db import UnitOfWork
from gateway.errors import NotFound, PartnerCodeTaken
from gateway.idempotency.service import StoredResponse
from gateway.partners import service
from gateway.partners.schemas import (
    MerchantPartnerObject,
    MerchantPartnerPut,
    PartnerCreate,
    PartnerObject,
    PartnerWithSecret,
    RotateSecret,
)
from gateway.schemas import ListEnvelope, list_document

router = APIRouter()
PARTNERS = "/v1/partners"
_TAGS: list[str | Enum] = ["partners (admin token)"]


@router.post(
    PARTNERS,
    status_code=201,
    response_model=PartnerWithSecret,
    summary="Create a collection partner and its secret",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, *IDEMPOTENT, PartnerCodeTaken),
    openapi_extra=idempotency_key(required=False),
    description="`secret` (`psk_...`) signs every request the partner sends to /v1/collect; it is shown only here "
    "and when rotated, and stored encrypted. `code` is unique, compared case-insensitively (409 "
    "`partner_code_taken`). `mode: test` makes a test partner (`livemode: false`) that collects against "
    "merchants' test objects. `shows_full_names: true` is allowed for `telco` and `platform` partners only.",
)
async def create_partner(
    params: PartnerCreate,
    request: Request,
    rt: RuntimeDep,
    admin: AdminDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        partner, secret = await service.create_partner(uow.session, rt, params)
        return stored(service.partner_object(partner, secret), 201)

    return await idempotent(rt, request, admin.idempotency_scope, idempotency_key, operation)


@router.get(
    PARTNERS,
    response_model=ListEnvelope[PartnerObject],
    summary="List collection partners, newest first",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *PARAMETERS),
)
async def list_partners(
    rt: RuntimeDep, _: AdminDep, limit: Limit = 20, starting_after: StartingAfter = None
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_partners(session, limit, starting_after)
    return json_response(list_document([service.partner_object(p) for p in rows], has_more))


@router.get(
    PARTNERS + "/{partner_id}",
    response_model=PartnerObject,
    summary="Get a collection partner (never its secret)",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *PARAMETERS, NotFound),
)
async def get_partner(partner_id: str, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        partner = await service.get_partner(session, partner_id)
    return json_response(service.partner_object(partner))


@router.post(
    PARTNERS + "/{partner_id}/rotate-secret",
    response_model=PartnerWithSecret,
    summary="Rotate a partner's secret",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, *IDEMPOTENT, NotFound),
    openapi_extra=idempotency_key(required=False),
    description="Answers the new secret, once. Until the old secret expires (`expire_old_after` seconds, default "
    "86400, 0 = at once; `previous_secret_expires_at`) requests signed with either secret are accepted.",
)
async def rotate_secret(
    partner_id: str,
    request: Request,
    rt: RuntimeDep,
    admin: AdminDep,
    params: Annotated[RotateSecret | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    expire = (params or RotateSecret()).expire_old_after

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        partner, secret = await service.rotate_secret(uow.session, rt, partner_id, expire)
        return stored(service.partner_object(partner, secret))

    return await idempotent(rt, request, admin.idempotency_scope, idempotency_key, operation)


@router.put(
    "/v1/merchants/{merchant_id}/partners/{partner_id}",
    response_model=MerchantPartnerObject,
    summary="Let a collection partner collect for the merchant, or stop it",
    tags=["merchants (admin token)"],
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, NotFound),
    description="With `enabled: true` the partner may look up and pay the merchant's bills by its `biller_code`; "
    "with `false` (or never enabled) its requests for the merchant answer 404 `biller_not_found`. 404 `not_found` "
    "for an unknown merchant or partner.",
)
async def put_merchant_partner(
    merchant_id: str, partner_id: str, params: MerchantPartnerPut, rt: RuntimeDep, _: AdminDep
) -> Response:
    async with rt.db.transaction() as session:
        row = await service.set_merchant_partner(session, rt, merchant_id, partner_id, params.enabled)
        document = service.merchant_partner_object(row)
    return json_response(document)
