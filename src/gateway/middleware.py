"""Pure ASGI middleware (no BaseHTTPMiddleware buffering): request id, access log, request metrics."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import problem_response
from gateway.observability import Metrics, bind_request_id

log = structlog.get_logger("gateway.access")

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
        if _has_nul(scope):
            response = problem_response(
                400,
                "invalid_request",
                "Invalid request",
                "NUL characters are not allowed in the path or query.",
                headers={"x-request-id": request_id},
            )
            await response(scope, receive, send)
            restore()
            return
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
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
