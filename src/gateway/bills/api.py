from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENT,
    JSON_BODY,
    MERCHANT_KEY,
    PARAMETERS,
    PAYLOAD_TOO_LARGE,
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
from gateway.bills import repository, service
from gateway.bills.schemas import BillCreate, BillObject
from gateway.db import UnitOfWork
from gateway.domain import BillStatus
from gateway.errors import BillNumberTaken, InvalidState, NotFound
from gateway.idempotency.service import StoredResponse
from gateway.schemas import IsoDate, ListEnvelope, list_document

router = APIRouter(prefix="/v1/bills", tags=["bills"])


@router.post(
    "",
    status_code=201,
    response_model=BillObject,
    summary="Create a bill",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, BillNumberTaken),
    openapi_extra=idempotency_key(required=False),
    description='`customer` is a customer id or `{"code": ...}` (any case) of an existing customer; one that '
    'does not exist (or is another merchant\'s) answers 422 `validation_error` naming `["body", "customer"]`. '
    "`number` is unique per merchant and mode (409 `bill_number_taken`); `lines`, when given, sum to `amount`. "
    "A customer holding a balance pays the new bill from it at once: the answer then shows the bill "
    "`partially_paid` or `paid`, with its allocations.",
)
async def create_bill(
    params: BillCreate,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        bill = await service.create_bill(uow.session, rt, scope, params)
        return stored(await service.bill_document(uow.session, bill), 201)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.get(
    "",
    response_model=ListEnvelope[BillObject],
    summary="List bills, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_bills(
    rt: RuntimeDep,
    scope: MerchantDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    customer: Annotated[str | None, Query(max_length=40, description="A customer id")] = None,
    status: BillStatus | None = None,
    number: Annotated[str | None, Query(max_length=64)] = None,
    period: Annotated[str | None, Query(max_length=32)] = None,
    due_before: Annotated[IsoDate | None, Query(description="YYYY-MM-DD: bills due before that day")] = None,
) -> Response:
    filters = repository.BillFilters(
        customer_id=customer, status=status, number=number, period=period, due_before=due_before
    )
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_bills(session, scope, filters, limit, starting_after)
        documents = await service.bill_documents(session, rows)
    return json_response(list_document(documents, has_more))


@router.get(
    "/{bill_id}",
    response_model=BillObject,
    summary="Get a bill, with its allocations and receipts",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_bill(bill_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        bill = await service.get_bill(session, scope, bill_id)
        document = await service.bill_document(session, bill)
    return json_response(document)


@router.post(
    "/{bill_id}/void",
    response_model=BillObject,
    summary="Void a bill that has no money on it",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, PAYLOAD_TOO_LARGE, *IDEMPOTENT, NotFound, InvalidState),
    openapi_extra=idempotency_key(required=False),
    description="Only an `open` bill with nothing paid; otherwise (money on it, paid, already void) 409 "
    "`invalid_state`. A void bill is never payable again.",
)
async def void_bill(
    bill_id: str,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        bill = await service.void_bill(uow.session, rt, scope, bill_id)
        return stored(await service.bill_document(uow.session, bill))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)
