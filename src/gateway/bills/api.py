from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENCY_REQUIRED,
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
from gateway.bills import imports, repository, service
from gateway.bills.schemas import BillCreate, BillImportResult, BillObject
from gateway.db import UnitOfWork
from gateway.domain import BillStatus
from gateway.errors import (
    BillNumberTaken,
    IdempotencyKeyMissing,
    InvalidState,
    MalformedCsv,
    NotFound,
    TooManyRows,
    UnsupportedMediaType,
)
from gateway.idempotency.service import StoredResponse
from gateway.schemas import IsoDate, ListEnvelope, list_document

router = APIRouter(prefix="/v1/bills", tags=["bills"])

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BillImport"}},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "number,amount,due_date,period,customer_code,customer_name\r\n"
                "HD-2026-11-0001,150000,2026-11-30,2026-11,PA01000123456,Nguyễn Văn An\r\n",
            },
        },
    }
}


@router.post(
    "/import",
    response_model=BillImportResult,
    summary="Import up to 10,000 bills",
    responses=problems(
        *MERCHANT_KEY, *JSON_BODY, MalformedCsv, UnsupportedMediaType, TooManyRows, *IDEMPOTENCY_REQUIRED
    ),
    openapi_extra={**idempotency_key(required=True), **_IMPORT_BODY},
    description='Requires an Idempotency-Key. The body is JSON `{"bills": [...]}` (`Content-Type: '
    "application/json`) or a CSV file (`text/csv`, UTF-8 with or without a BOM, CRLF or LF line ends) whose header "
    f"names its columns: {', '.join(f'`{c}`' for c in imports.CSV_COLUMNS)} — `number`, `amount` and "
    "`customer_code` (or `customer`, an id) required; `lines` and `metadata` are JSON only; an empty cell is an "
    "absent field; blank lines are skipped and not numbered. Any other media type answers 415 "
    "`unsupported_media_type`. A customer named by a code that no customer has is created when the row carries "
    "`customer_name` (an existing customer's name is left as it is); text is stored in Unicode NFC.\n\n"
    "Rows are numbered from 1 (the first bill; the CSV header is not a row). Whole-request problems store nothing: "
    "more than 10,000 rows (422 `too_many_rows`), an unknown or missing required CSV column (422 "
    "`validation_error` naming it), malformed JSON or CSV (400). Otherwise the answer is 200: the valid rows are "
    "stored, each invalid row is listed in `errors` with a code — `validation_error` (the detail names the "
    "field), `customer_not_found`, `bill_number_conflict` (the number exists, in the database or earlier in the "
    "file, with other content) — and a row whose number exists with the same content counts as `unchanged`. "
    "Each bill created emits `bill.created`; a customer's balance is applied to its new bills at once.",
)
async def import_bills(
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    if idempotency_key is None:
        raise IdempotencyKeyMissing("POST /v1/bills/import requires an Idempotency-Key header.")
    rows = imports.read_rows(request.headers.get("content-type"), await request.body())

    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        return stored(await imports.import_bills(uow.session, rt, scope, rows))

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation, required=True)


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
