"""Pure ASGI middleware (no BaseHTTPMiddleware): request id, body limits and encoding, the last-resort 500, access
log, request metrics."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import internal_error_response, problem_response
from gateway.observability import Metrics, bind_request_id

log = structlog.get_logger("gateway.access")
error_log = structlog.get_logger("gateway.errors")

MB = 1024 * 1024
DEFAULT_BODY_LIMIT = 1 * MB
# Longest prefix wins. Provider callbacks are small and unauthenticated until verified; bulk imports are large.
BODY_LIMITS: tuple[tuple[str, int], ...] = (("/v1/providers/", 64 * 1024), ("/v1/bills/import", 20 * MB))
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_VALID_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def _has_nul(scope: Scope) -> bool:
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"%00" in raw.lower() or b"\x00" in raw or "\x00" in scope.get("path", "")


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if 0 < len(candidate) <= 128 and set(candidate) <= _VALID_ID:
                return candidate
    return None


def body_limit(path: str) -> int:
    return next((limit for prefix, limit in BODY_LIMITS if path.startswith(prefix)), DEFAULT_BODY_LIMIT)


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope.get("headers", []) if key == name), None)


def _expects_json(scope: Scope) -> bool:
    """API routes whose body FastAPI would parse as JSON (provider callbacks, simulators and the partners' routes,
    which check a signature over the bytes before reading them, parse their own)."""
    path: str = scope.get("path", "")
    if not path.startswith("/v1/") or path.startswith(("/v1/providers/", "/v1/collect/")):
        return False
    content_type = (_header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower()
    return content_type in {b"", b"application/json"} or content_type.endswith(b"+json")


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, list[Message]]:
    """The whole body, refusing it as soon as it passes the limit (a chunked body declares no length)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replaying(body: bytes, pending: list[Message], receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _is_utf8_json_text(body: bytes) -> bool:
    """JSON text is UTF-8 (RFC 8259 §8.1). The standard library would sniff UTF-16/32 from NUL bytes, which no
    valid UTF-8 JSON text contains outside an escape."""
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or f"req_{uuid.uuid4().hex}"
        # Bound for this request only: an in-process call (the sandbox calling back into the gateway) runs in
        # the caller's context and must hand it back unchanged.
        restore = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            checked = await _check_request(scope, receive)
            if isinstance(checked, Response):
                await checked(scope, receive, send_with_id)
            else:
                await self.app(scope, checked, send_with_id)
        except Exception as exc:
            # The last resort, here rather than in Starlette's outermost handler so that the 500 still carries
            # the request id (header and body) and is counted.
            if response_started:
                raise
            error_log.exception("request.unhandled_error", error=type(exc).__name__)
            await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            if self.access_log:
                log.info(
                    "http.request",
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            restore()


async def _check_request(scope: Scope, receive: Receive) -> Response | Receive:
    """A problem for a request the routes must never see, else the receive channel to read its body from."""
    if _has_nul(scope):
        return problem_response(
            400, "invalid_request", "Invalid request", "NUL characters are not allowed in the path or query."
        )
    limit = body_limit(scope.get("path", ""))
    declared = _header(scope, b"content-length")
    too_large = problem_response(
        413,
        "payload_too_large",
        "Payload too large",
        f"The request body is larger than this route accepts ({limit} bytes).",
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_large
    if scope.get("method") not in _BODY_METHODS:
        return receive
    try:
        body, pending = await _read_body(receive, limit)
    except _TooLarge:
        return too_large
    if body and _expects_json(scope) and not _is_utf8_json_text(body):
        return problem_response(400, "malformed_json", "Malformed JSON", "The request body is not UTF-8 JSON.")
    return _replaying(body, pending, receive)
