"""Domain errors (each carries its HTTP status and stable code) and the one problem+json renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gateway.observability import current_request_id

log = structlog.get_logger("gateway.errors")

PROBLEM_JSON = "application/problem+json"


class ProblemFieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the invalid value is, e.g. ["body", "amount"]')
    msg: str


class Problem(BaseModel):
    """The body of every error (RFC 9457, `application/problem+json`), as `problem_body` writes it."""

    type: str = Field(description="`about:blank`: the `code` says what went wrong")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str
    code: str = Field(pattern="^[a-z][a-z0-9_]*$", description="Stable snake_case code; branch on it")
    request_id: str = Field(description="The response's X-Request-Id")
    errors: list[ProblemFieldError] = Field(default_factory=list, description="Validation failures only")


class GatewayError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class ValidationFailed(GatewayError):
    status, code, title = 422, "validation_error", "Validation failed"

    @classmethod
    def field(cls, loc: list[str | int], msg: str) -> ValidationFailed:
        return cls(f"{'.'.join(str(p) for p in loc[1:])}: {msg}", errors=[{"loc": loc, "msg": msg}])


class NotFound(GatewayError):
    status, code, title = 404, "not_found", "Not found"


class InvalidState(GatewayError):
    status, code, title = 409, "invalid_state", "Invalid state"


class Unauthenticated(GatewayError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"


class Forbidden(GatewayError):
    status, code, title = 403, "forbidden", "Forbidden"


class TestModeDisabled(GatewayError):
    status, code, title = 403, "test_mode_disabled", "Test mode is disabled"


class IdempotencyKeyMissing(GatewayError):
    status, code, title = 400, "idempotency_key_missing", "Idempotency-Key header required"


class IdempotencyKeyInvalid(GatewayError):
    status, code, title = 400, "idempotency_key_invalid", "Invalid Idempotency-Key header"


class IdempotencyKeyReused(GatewayError):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class IdempotencyKeyInUse(GatewayError):
    status, code, title = 409, "idempotency_key_in_use", "Idempotency key in use"


class AmountExceedsRefundable(GatewayError):
    status, code, title = 422, "amount_exceeds_refundable", "Amount exceeds refundable"


class RefundNotSupported(GatewayError):
    status, code, title = 422, "refund_not_supported", "Refund not supported"


class ProviderNotConfigured(GatewayError):
    status, code, title = 422, "provider_not_configured", "Provider not configured"


class MethodNotAvailable(GatewayError):
    status, code, title = 422, "method_not_available", "Method not available"


class CurrencyNotSupported(GatewayError):
    status, code, title = 422, "currency_not_supported", "Currency not supported"


class AmountOutOfRange(GatewayError):
    status, code, title = 422, "amount_out_of_range", "Amount outside the provider's limits"


class OutcomeNotSupported(GatewayError):
    status, code, title = 422, "outcome_not_supported", "Outcome not supported"


class ProviderUnavailable(GatewayError):
    status, code, title = 503, "provider_unavailable", "Provider unavailable"


class SandboxFailed(GatewayError):
    status, code, title = 502, "sandbox_error", "Sandbox error"


class ConfirmationInProgress(GatewayError):
    status, code, title = 409, "confirmation_in_progress", "Confirmation in progress"


class InvalidSignature(GatewayError):
    status, code, title = 400, "invalid_signature", "Invalid signature"


class PartnerSignatureInvalid(GatewayError):
    """A partner request whose X-Signature, X-Timestamp or X-Partner-Id does not hold (§12)."""

    status, code, title = 401, "invalid_signature", "Invalid signature"


class BillerNotFound(GatewayError):
    status, code, title = 404, "biller_not_found", "Biller not found"


class CustomerNotFound(GatewayError):
    status, code, title = 404, "customer_not_found", "Customer not found"


class DuplicateTransaction(GatewayError):
    status, code, title = 409, "duplicate_transaction", "Duplicate transaction"


class ReversalWindowClosed(GatewayError):
    status, code, title = 409, "reversal_window_closed", "Reversal window closed"


class BillerCodeTaken(GatewayError):
    status, code, title = 409, "biller_code_taken", "Biller code taken"


class PartnerCodeTaken(GatewayError):
    status, code, title = 409, "partner_code_taken", "Partner code taken"


class OrgUnitExists(GatewayError):
    status, code, title = 409, "org_unit_exists", "Organisation unit exists"


class UrlNotAllowedError(GatewayError):
    status, code, title = 422, "url_not_allowed", "URL not allowed"


class CustomerCodeTaken(GatewayError):
    status, code, title = 409, "customer_code_taken", "Customer code taken"


class BillNumberTaken(GatewayError):
    status, code, title = 409, "bill_number_taken", "Bill number taken"


class BillNotPayable(GatewayError):
    status, code, title = 409, "bill_not_payable", "Bill not payable"


class AmountNotAllowed(GatewayError):
    status, code, title = 422, "amount_not_allowed", "Amount not allowed by the bill's rule"


class TooManyRows(GatewayError):
    status, code, title = 422, "too_many_rows", "Too many rows"


class UnsupportedMediaType(GatewayError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class MalformedJson(GatewayError):
    """A body the route parses itself (not through FastAPI) that is not JSON: the same answer as MALFORMED_JSON."""

    status, code, title = 400, "malformed_json", "Malformed JSON"


class MalformedCsv(GatewayError):
    status, code, title = 400, "malformed_csv", "Malformed CSV"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        content=problem_body(status, code, title, detail, errors=errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_body(
    status: int, code: str, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> bytes:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = errors
    return orjson.dumps(body)


@dataclass(frozen=True)
class ProblemDoc:
    """A problem answered outside the domain errors (middleware, request parsing, the database handlers),
    documented in a route's `responses` like an error class."""

    status: int
    code: str
    title: str

    def response(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> Response:
        headers = {"Retry-After": "1"} if self.status == 503 else None
        return problem_response(self.status, self.code, self.title, detail, errors=errors, headers=headers)


MALFORMED_JSON = ProblemDoc(400, "malformed_json", "Malformed JSON")
DATABASE_UNAVAILABLE = ProblemDoc(503, "database_unavailable", "Database unavailable")


def internal_error_response() -> Response:
    return problem_response(
        500,
        "internal_error",
        "Internal error",
        "Something went wrong on our side; it was logged. Retrying is safe.",
    )


def gateway_error_response(exc: GatewayError) -> Response:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, errors=exc.errors, headers=exc.headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        errors.append({"loc": loc, "msg": msg})
    return errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(_request: Request, exc: GatewayError) -> Response:
        return gateway_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return MALFORMED_JSON.response("The request body is not valid JSON.", errors=errors)
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in errors)
        return problem_response(
            422, "validation_error", "Validation failed", f"Invalid fields: {fields}", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not decode the body it was parsing as JSON (e.g. nested past the parser's depth).
            return MALFORMED_JSON.response("The request body is not valid JSON.")
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        code = codes.get(exc.status_code, "http_error")
        return problem_response(
            exc.status_code, code, str(exc.detail), str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(ConnectionError)
    async def _database_down(_request: Request, exc: Exception) -> Response:
        log.error("database.unavailable", error=type(exc).__name__)
        return DATABASE_UNAVAILABLE.response("The database is not answering; retry with the same Idempotency-Key.")

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated or _is_outage(exc):
            return await _database_down(request, exc)
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("request.unhandled_error", error=type(exc).__name__)
        return internal_error_response()


# SQLSTATEs that mean "the server is not there for us right now", which asyncpg raises as plain errors:
# connection exceptions (08…), operator intervention (57P01 shutting down, 57P02 crashed, 57P03 "the database
# system is starting up" / "not yet accepting connections"), too many connections (53300).
_OUTAGE_SQLSTATES = ("08", "57P", "53300")


def _is_outage(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_OUTAGE_SQLSTATES)
