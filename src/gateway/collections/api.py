"""The routes collection partners call (§12). No API key: every request is signed with the partner's secret.

The order of checks is fixed, so a caller learns nothing it has not proven: the signature over the exact bytes
first (401 `invalid_signature`), then the body (400 `malformed_json`, 422 `validation_error`), then the biller
(404 `biller_not_found`), then the rest. Each route parses its own body, after the signature, and every request —
accepted or refused — is kept raw with its answer (`partner_requests`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from gateway.api_support import JSON_BODY, PARAMETERS, json_response, problems
from gateway.auth import RuntimeDep
from gateway.collections import service
from gateway.collections.schemas import BillInquiry, CollectionCreate, CollectionObject, InquiryRequest, ReversalCreate
from gateway.errors import (
    DATABASE_UNAVAILABLE,
    AmountNotAllowed,
    BillerNotFound,
    BillNotPayable,
    CustomerNotFound,
    DuplicateTransaction,
    GatewayError,
    InvalidState,
    MalformedJson,
    NotFound,
    PartnerSignatureInvalid,
    ReversalWindowClosed,
    TestModeDisabled,
    ValidationFailed,
    gateway_error_response,
)
from gateway.idempotency.service import fingerprint
from gateway.partners.auth import SignedRequest, authenticate
from gateway.partners.models import Partner
from gateway.partners.signing import PARTNER_ID_HEADER
from gateway.runtime import Runtime

router = APIRouter(prefix="/v1/collect", tags=["collection partners"])

M = TypeVar("M", bound=BaseModel)
Operation = Callable[[AsyncSession, Partner], Awaitable[service.Answer]]

SIGNED = (PartnerSignatureInvalid, TestModeDisabled, DATABASE_UNAVAILABLE)
_SIGNATURE_HELP = (
    "**Signed, no API key.** Send `X-Partner-Id: ptn_...`, `X-Timestamp: <unix seconds>` and `X-Signature: <hex "
    'HMAC-SHA256 of "{timestamp}.{METHOD}.{path}.{body}" keyed by the whole psk_... secret (UTF-8)>` — `path` '
    "without the query, `body` the exact bytes sent (empty for a GET). A missing or wrong signature, an unknown "
    "partner or a timestamp more than 300 s from the gateway's clock answers 401 `invalid_signature`, before "
    "anything else is looked at; then the body is validated; then the biller (a `biller_code` that does not exist "
    "or has not enabled this partner: 404 `biller_not_found`). A test partner (`livemode: false`) works on the "
    "biller's test customers and bills only. Every request is kept raw for audit with its answer."
)


def _signature_headers(body: type[BaseModel] | None) -> dict[str, Any]:
    """The three signature headers as parameters, and the body the route parses itself (after the signature)."""
    described = {
        PARTNER_ID_HEADER: ("X-Partner-Id", "The partner's id (`ptn_...`)", {"type": "string", "maxLength": 40}),
        "x-timestamp": ("X-Timestamp", "Unix seconds, within 300 s of the gateway's clock", {"type": "string"}),
        "x-signature": ("X-Signature", "Hex HMAC-SHA256 (see the description)", {"type": "string"}),
    }
    extra: dict[str, Any] = {
        "parameters": [
            {"name": name, "in": "header", "required": True, "description": text, "schema": schema}
            for name, text, schema in described.values()
        ]
    }
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
        }
    return extra


def parse_body(model: type[M], body: bytes) -> M:
    """The body as `model`, read only once its signature held: 400 `malformed_json` for anything but a UTF-8 JSON
    object's text, 422 `validation_error` naming each bad or unknown field."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # orjson refuses integers past 64 bits, which are still JSON (and then an invalid amount)
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            raise MalformedJson("The request body is not UTF-8 JSON.") from None
    if not isinstance(document, dict):
        raise ValidationFailed.field(["body"], "must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [
            {
                "loc": ["body", *err["loc"]],
                "msg": "unknown field" if err["type"] == "extra_forbidden" else str(err["msg"]),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in errors)
        raise ValidationFailed(f"Invalid fields: {fields}", errors=errors) from None


async def _answer(request: Request, rt: Runtime, body: bytes, operation: Operation) -> Response:
    """Authenticate, run the operation in one transaction with the request's audit row, answer; a refused request is
    kept with its answer in a transaction of its own."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    signed = SignedRequest(request.method, request.url.path, headers, body)
    received = service.ReceivedRequest(
        request.method, request.url.path, headers, body, signed.claimed_partner_id, rt.clock.now()
    )
    verified = False
    try:
        async with rt.db.transaction() as session:
            partner = await authenticate(session, rt, signed)
            verified = True
            answer = await operation(session, partner)
            service.add_answered_request(session, rt, received, answer)
    except GatewayError as exc:
        await service.record_request(
            rt, received, verified=verified, status_code=exc.status, outcome=exc.code, collection_id=None
        )
        return gateway_error_response(exc)
    except Exception:
        await service.record_request(
            rt, received, verified=verified, status_code=500, outcome="internal_error", collection_id=None
        )
        raise
    return json_response(answer.document, answer.status)


@router.post(
    "/inquiry",
    response_model=BillInquiry,
    summary="Look a customer's bills up (a partner's inquiry)",
    description="What the customer owes the biller: its payable bills, oldest due date first (the order a "
    "collection by customer code pays them), `total_due` their sum and `balance` the customer's credit. The name "
    "is masked (`NGUYEN V** A`) unless the partner is a telco or platform allowed to show full names. The customer "
    "code is matched in any case; an unknown customer answers 404 `customer_not_found`; nothing due answers 200 "
    "with `bills: []` and `total_due: 0`. Read only.\n\n" + _SIGNATURE_HELP,
    responses=problems(*SIGNED, *JSON_BODY, BillerNotFound, CustomerNotFound),
    openapi_extra=_signature_headers(InquiryRequest),
)
async def inquiry(request: Request, rt: RuntimeDep) -> Response:
    body = await request.body()

    async def operation(session: AsyncSession, partner: Partner) -> service.Answer:
        return await service.inquire(session, rt, partner, parse_body(InquiryRequest, body))

    return await _answer(request, rt, body, operation)


@router.post(
    "/payments",
    status_code=201,
    response_model=CollectionObject,
    summary="Record a partner's payment (a collection)",
    description="The partner took `amount` from the payer: recorded at once as a succeeded payment "
    "(`method: partner`, `provider` the partner's code, `partner_channel` the request's `channel`, `channel` "
    "`counter` for `counter` and `agent`, else `online`), posted to the ledger against the partner's clearing "
    "account, allocated, and receipted (one receipt listing each bill paid, when the biller issues receipts) — in "
    "one transaction, with its events.\n\n"
    "**Allocation** (§11): with `bill_numbers` the funds go to those bills in the order named, each up to what "
    "remains, the rest to the customer's balance; each must be a bill of that customer (else 404 `not_found` "
    "naming it) and payable (a paid or void bill: 409 `bill_not_payable`), and the amount must fit the bills' "
    "rules (422 `amount_not_allowed`): an `exact` bill must receive all that remains of it, and the named bills' "
    "remaining total is the most a collection may pay unless one of them takes `any` amount. Without "
    "`bill_numbers` any amount is accepted: the customer's payable bills take it oldest due date first, the rest "
    "becomes its balance.\n\n"
    "**Idempotent on `partner_transaction_id`** (per partner): the same id with the same body (compared as "
    "canonical JSON) answers 200 with the same collection as it is now (a reversed one says so); with another "
    "body 409 `duplicate_transaction`. Concurrent retries converge on one collection.\n\n" + _SIGNATURE_HELP,
    responses={
        200: {"model": CollectionObject, "description": "A replay: the collection this transaction id created"},
        **problems(
            *SIGNED,
            *JSON_BODY,
            BillerNotFound,
            CustomerNotFound,
            NotFound,
            BillNotPayable,
            AmountNotAllowed,
            DuplicateTransaction,
        ),
    },
    openapi_extra=_signature_headers(CollectionCreate),
)
async def create_collection(request: Request, rt: RuntimeDep) -> Response:
    body = await request.body()

    async def operation(session: AsyncSession, partner: Partner) -> service.Answer:
        params = parse_body(CollectionCreate, body)
        return await service.collect(session, rt, partner, params, fingerprint(body))

    return await _answer(request, rt, body, operation)


@router.get(
    "/payments/{partner_transaction_id}",
    response_model=CollectionObject,
    summary="A partner's collection, by its transaction id",
    description="What became of a payment the partner sent (ask this after a timeout, before retrying): the "
    "collection as it is now, or 404 `not_found` when the gateway never accepted it. Only the calling partner's "
    "collections. Signed over an empty body.\n\n" + _SIGNATURE_HELP,
    responses=problems(*SIGNED, *PARAMETERS, NotFound),
    openapi_extra=_signature_headers(None),
)
async def get_collection(partner_transaction_id: str, request: Request, rt: RuntimeDep) -> Response:
    # Not constrained in the route: an over-long id is a 404 after the signature, never a 422 before it.
    async def operation(session: AsyncSession, partner: Partner) -> service.Answer:
        return await service.collection_status(session, partner, partner_transaction_id)

    return await _answer(request, rt, await request.body(), operation)


@router.post(
    "/reversals",
    response_model=CollectionObject,
    summary="Reverse a collection (the same business day)",
    description="Gives a collection's money back: the allocations are undone (bills become `partially_paid` or "
    "`open` again, the balance it added is taken back), the receipt is canceled, reversing ledger entries are "
    "posted (nothing is deleted), a refund of the whole amount is recorded (`succeeded` at once) and "
    "`collection.reversed` is emitted with the bills' and receipt's events. Only on the Vietnam business day "
    "(UTC+7) the collection was accepted, else 409 `reversal_window_closed`; a collection already reversed answers "
    "409 `invalid_state`; an unknown transaction id 404 `not_found`.\n\n" + _SIGNATURE_HELP,
    responses=problems(*SIGNED, *JSON_BODY, NotFound, InvalidState, ReversalWindowClosed),
    openapi_extra=_signature_headers(ReversalCreate),
)
async def create_reversal(request: Request, rt: RuntimeDep) -> Response:
    body = await request.body()

    async def operation(session: AsyncSession, partner: Partner) -> service.Answer:
        return await service.reverse(session, rt, partner, parse_body(ReversalCreate, body))

    return await _answer(request, rt, body, operation)
