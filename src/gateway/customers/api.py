from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
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
    qr_image,
    stored,
)
from gateway.auth import MerchantDep, RuntimeDep
from gateway.customers import service
from gateway.customers.schemas import CustomerCreate, CustomerObject, CustomerUpdate
from gateway.db import UnitOfWork
from gateway.errors import CustomerCodeTaken, NotFound
from gateway.idempotency.service import StoredResponse
from gateway.schemas import ListEnvelope, list_document

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post(
    "",
    status_code=201,
    response_model=CustomerObject,
    summary="Create a customer",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, *IDEMPOTENT, CustomerCodeTaken),
    openapi_extra=idempotency_key(required=False),
    description="`code` is unique per merchant and mode, compared case-insensitively (`pa01` and `PA01` are one "
    "code): taken, 409 `customer_code_taken`. `name` and `address` are stored in Unicode NFC. The gateway "
    "derives `payment_code` (what payers put in a transfer) and, when the merchant has a VietQR account (test "
    "mode: the sandbox bank's), `qr_payload`: a static VietQR with no amount.",
)
async def create_customer(
    params: CustomerCreate,
    request: Request,
    rt: RuntimeDep,
    scope: MerchantDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    async def operation(uow: UnitOfWork, _resume: str | None) -> StoredResponse:
        customer = await service.create_customer(uow.session, rt, scope, params)
        return stored(await service.customer_document(uow.session, rt, customer), 201)

    return await idempotent(rt, request, scope.idempotency_scope, idempotency_key, operation)


@router.get(
    "",
    response_model=ListEnvelope[CustomerObject],
    summary="List customers, newest first",
    responses=problems(*MERCHANT_KEY, *PARAMETERS),
)
async def list_customers(
    rt: RuntimeDep,
    scope: MerchantDep,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
    code: Annotated[str | None, Query(max_length=32, description="Matched case-insensitively")] = None,
) -> Response:
    async with rt.db.transaction() as session:
        rows, has_more = await service.list_customers(session, scope, code, limit, starting_after)
        documents = await service.customer_documents(session, rt, rows)
    return json_response(list_document(documents, has_more))


@router.get(
    "/{customer_id}",
    response_model=CustomerObject,
    summary="Get a customer",
    responses=problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
)
async def get_customer(customer_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        customer = await service.get_customer(session, scope, customer_id)
        document = await service.customer_document(session, rt, customer)
    return json_response(document)


@router.patch(
    "/{customer_id}",
    response_model=CustomerObject,
    summary="Change a customer's code, name, contact details, organisation unit or metadata",
    responses=problems(*MERCHANT_KEY, *JSON_BODY, NotFound, CustomerCodeTaken),
    description="Only the fields sent change; `null` clears `phone`, `email`, `address` or `org_unit`. A new "
    "`code` must be free (409 `customer_code_taken`); `payment_code` and the static QR never change.",
)
async def update_customer(customer_id: str, params: CustomerUpdate, rt: RuntimeDep, scope: MerchantDep) -> Response:
    async with rt.db.transaction() as session:
        customer = await service.update_customer(session, rt, scope, customer_id, params)
        document = await service.customer_document(session, rt, customer)
    return json_response(document)


async def _qr_payload(rt: RuntimeDep, scope: MerchantDep, customer_id: str) -> str:
    async with rt.db.transaction() as session:
        customer = await service.get_customer(session, scope, customer_id)
        payload = (await service.customer_document(session, rt, customer))["qr_payload"]
    if payload is None:
        raise NotFound(f"Customer {customer_id} has no static QR: the merchant has no VietQR account.")
    return str(payload)


@router.get(
    "/{customer_id}/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
    },
    summary="The customer's static VietQR as PNG",
    description="404 `not_found` too when the merchant has no VietQR account (live mode).",
)
async def qr_png(customer_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    return qr_image(await _qr_payload(rt, scope, customer_id), "png")


@router.get(
    "/{customer_id}/qr.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(*MERCHANT_KEY, *PARAMETERS, NotFound),
    },
    summary="The customer's static VietQR as SVG",
    description="404 `not_found` too when the merchant has no VietQR account (live mode).",
)
async def qr_svg(customer_id: str, rt: RuntimeDep, scope: MerchantDep) -> Response:
    return qr_image(await _qr_payload(rt, scope, customer_id), "svg")
