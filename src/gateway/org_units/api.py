"""Organisation units (§17): the operator builds the tree (admin token); merchants read it too, to name units."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api_support import (
    ADMIN_TOKEN,
    IDEMPOTENT,
    JSON_BODY,
    MERCHANT_KEY,
    PARAMETERS,
    IdempotencyKeyHeader,
    Limit,
    idempotency_key,
    idempotent,
    json_response,
    problems,
    stored,
)
from gateway.auth import AdminDep, PrincipalDep, RuntimeDep
from gateway.db import UnitOfWork
from gateway.errors import NotFound, OrgUnitExists
from gateway.idempotency.service import StoredResponse
from gateway.org_units import service
from gateway.org_units.schemas import OrgUnitCreate, OrgUnitObject, OrgUnitUpdate
from gateway.schemas import ListEnvelope, list_document

router = APIRouter()
ORG_UNITS = "/v1/org-units"
_TAGS: list[str | Enum] = ["organisation units"]
_READERS = tuple(dict.fromkeys((*ADMIN_TOKEN, *MERCHANT_KEY)))
StartingAfterCode = Annotated[
    str | None, Query(max_length=32, description="Code of the last unit of the previous page")
]


@router.post(
    ORG_UNITS,
    status_code=201,
    response_model=OrgUnitObject,
    summary="Add an organisation unit (admin token)",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, *IDEMPOTENT, OrgUnitExists),
    openapi_extra=idempotency_key(required=False),
    description="`code`: 1-32 of `A-Z a-z 0-9 . _ -`, exact case, unique (409 `org_unit_exists`). The tree's rules "
    "(422 naming `parent`): a province has no parent; a district's parent is a province, a commune's a district; an "
    "agency sits under a province, a district or a commune. `online_target` (0 to 1, at most 4 decimals, or null) "
    "is what the reports compare the unit's online share with.",
)
async def create_org_unit(
    params: OrgUnitCreate,
    request: Request,
    rt: RuntimeDep,
    admin: AdminDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        unit = await service.create_unit(uow.session, rt, params)
        return stored(service.org_unit_object(unit), 201)

    return await idempotent(rt, request, admin.idempotency_scope, idempotency_key, operation)


@router.get(
    ORG_UNITS,
    response_model=ListEnvelope[OrgUnitObject],
    summary="List organisation units, newest first",
    tags=_TAGS,
    responses=problems(*_READERS, *PARAMETERS),
    description="The admin token or any merchant key (merchants name units by code). Newest first (units created "
    "in the same instant by code, descending), like every list; `starting_after` is the last code of the previous "
    "page.",
)
async def list_org_units(
    rt: RuntimeDep, _: PrincipalDep, limit: Limit = 20, starting_after: StartingAfterCode = None
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_units(session, limit, starting_after)
    return json_response(list_document([service.org_unit_object(u) for u in rows], has_more))


@router.get(
    ORG_UNITS + "/{code}",
    response_model=OrgUnitObject,
    summary="Get an organisation unit",
    tags=_TAGS,
    responses=problems(*_READERS, *PARAMETERS, NotFound),
)
async def get_org_unit(code: str, rt: RuntimeDep, _: PrincipalDep) -> Response:
    async with rt.db.transaction() as session:
        unit = await service.get_unit(session, code)
    return json_response(service.org_unit_object(unit))


@router.patch(
    ORG_UNITS + "/{code}",
    response_model=OrgUnitObject,
    summary="Rename an organisation unit or change its target (admin token)",
    tags=_TAGS,
    responses=problems(*ADMIN_TOKEN, *JSON_BODY, NotFound),
    description="Only the fields sent change; `online_target: null` removes the target. A unit's code, kind and "
    "parent never change: payments recorded under it keep meaning what they meant.",
)
async def update_org_unit(code: str, params: OrgUnitUpdate, rt: RuntimeDep, _: AdminDep) -> Response:
    async with rt.db.transaction() as session:
        unit = await service.update_unit(session, rt, code, params)
        document = service.org_unit_object(unit)
    return json_response(document)
