"""What every route shares: JSON responses, the Idempotency-Key header, list parameters."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Request
from starlette.responses import Response

from gateway.errors import PROBLEM_JSON, IdempotencyKeyMissing
from gateway.idempotency.service import Operation, StoredResponse, run_idempotent, validate_key
from gateway.runtime import Runtime

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1-255 printable ASCII characters; the same key and body replay the first response.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
StartingAfter = Annotated[str | None, Query(max_length=64, description="Id of the last object of the previous page")]


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
