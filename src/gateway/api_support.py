"""What every route shares: JSON responses, the Idempotency-Key header, list parameters, documented problems."""

from __future__ import annotations

import io
import re
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

import orjson
import segno
from fastapi import Header, Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from gateway.errors import (
    DATABASE_UNAVAILABLE,
    MALFORMED_JSON,
    PROBLEM_JSON,
    Forbidden,
    GatewayError,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    ProblemDoc,
    TestModeDisabled,
    Unauthenticated,
    ValidationFailed,
)
from gateway.idempotency.service import Operation, StoredResponse, run_idempotent, validate_key
from gateway.runtime import Runtime

# Read as an optional header so a missing or malformed key answers the contract's 400, never FastAPI's 422; the
# document declares it (required or not) through `idempotency_key()`.
IdempotencyKeyHeader = Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
StartingAfter = Annotated[str | None, Query(max_length=64, description="Id of the last object of the previous page")]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: Any) -> Any:
    # pydantic also takes unix timestamps (`0`) and dates without an offset; a filter takes RFC 3339 only.
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-11-22T10:00:00Z")


DateTimeFilter = Annotated[datetime, BeforeValidator(_rfc3339_only)]


def idempotency_key(*, required: bool) -> dict[str, Any]:
    """The `openapi_extra` declaring a route's Idempotency-Key header (CONTRACT §2)."""
    return {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": required,
                "description": "1-255 printable ASCII characters, scoped to the caller and kept 24 hours: the "
                "same key with the same body replays the first response (`Idempotent-Replayed: true`)."
                + (" Missing: 400 `idempotency_key_missing`." if required else ""),
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
            }
        ]
    }


INVALID_REQUEST = ProblemDoc(400, "invalid_request", "Invalid request")  # a NUL in the path or query (middleware)
PAYLOAD_TOO_LARGE = ProblemDoc(413, "payload_too_large", "Payload too large")  # bodies over 1 MB (middleware)

ProblemSource = type[GatewayError] | ProblemDoc
# What a route of each kind can answer besides its own domain errors.
MERCHANT_KEY: tuple[ProblemSource, ...] = (Unauthenticated, Forbidden, TestModeDisabled, DATABASE_UNAVAILABLE)
ADMIN_TOKEN: tuple[ProblemSource, ...] = (Unauthenticated, Forbidden, DATABASE_UNAVAILABLE)
PARAMETERS: tuple[ProblemSource, ...] = (INVALID_REQUEST, ValidationFailed)
JSON_BODY: tuple[ProblemSource, ...] = (INVALID_REQUEST, MALFORMED_JSON, PAYLOAD_TOO_LARGE, ValidationFailed)
IDEMPOTENT: tuple[ProblemSource, ...] = (IdempotencyKeyInvalid, IdempotencyKeyInUse, IdempotencyKeyReused)
IDEMPOTENCY_REQUIRED: tuple[ProblemSource, ...] = (IdempotencyKeyMissing, *IDEMPOTENT)


def problems(*sources: ProblemSource) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=`: one application/problem+json response per status, naming the codes it can carry."""
    codes: dict[int, list[str]] = {}
    for source in sources:
        listed = codes.setdefault(source.status, [])
        if source.code not in listed:
            listed.append(source.code)
    return {
        status: {
            "description": f"{HTTPStatus(status).phrase}: " + ", ".join(f"`{code}`" for code in codes[status]),
            "content": {
                PROBLEM_JSON: {
                    "schema": {
                        "allOf": [{"$ref": "#/components/schemas/Problem"}],
                        "properties": {"status": {"const": status}, "code": {"enum": codes[status]}},
                    }
                }
            },
        }
        for status in sorted(codes)
    }


def json_response(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


def stored(document: Any, status: int = 200) -> StoredResponse:
    return StoredResponse(status, orjson.dumps(document))


def to_response(result: StoredResponse) -> Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    media_type = PROBLEM_JSON if result.problem else "application/json"
    return Response(result.body, status_code=result.status, media_type=media_type, headers=headers)


async def idempotent(
    rt: Runtime,
    request: Request,
    scope: str,
    key: str | None,
    operation: Operation,
    *,
    required: bool = False,
) -> Response:
    if key is None and required:
        raise IdempotencyKeyMissing(f"{request.method} {request.url.path} requires an Idempotency-Key header.")
    if key is not None:
        validate_key(key)
    result = await run_idempotent(
        rt,
        scope=scope,
        key=key,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
        operation=operation,
    )
    return to_response(result)


QR_MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def qr_image(payload: str, kind: str) -> Response:
    """A QR code any banking app scans: error correction M, 8 px modules, the 4-module quiet zone."""
    buffer = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(buffer, kind=kind, scale=8, border=4)
    return Response(buffer.getvalue(), media_type=QR_MEDIA_TYPES[kind], headers={"Cache-Control": "no-store"})
