from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api_support import (
    IDEMPOTENCY_REQUIRED,
    JSON_BODY,
    MERCHANT_KEY,
    IdempotencyKeyHeader,
    idempotency_key,
    idempotent,
    problems,
    stored,
)
from gateway.auth import MerchantDep, RuntimeDep
from gateway.bills import imports
from gateway.bills.schemas import BillImportResult
from gateway.db import UnitOfWork
from gateway.errors import IdempotencyKeyMissing, MalformedCsv, TooManyRows, UnsupportedMediaType
from gateway.idempotency.service import StoredResponse

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
