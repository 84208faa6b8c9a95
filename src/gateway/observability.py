"""JSON logs with the request id bound once, secrets redacted and phone/account numbers masked; metrics."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.masking import mask_free_text, mask_name, mask_number

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_REDACT_KEYS = re.compile(r"(secret|token|password|authorization|api_key|signature|hash|cookie)", re.I)
_MASK_KEYS = re.compile(r"(phone|msisdn|account_number|card|pan)", re.I)
_NAME_KEYS = re.compile(r"(account_name|payer_name|customer_name|holder)", re.I)
_PERSON_KEYS = re.compile(r"(customer|payer|counter_account)", re.I)  # whose `name` is a person's
# Free text: what a payer typed, an error's message, a formatted traceback (the SQL parameters it may quote).
_FREE_TEXT_KEYS = frozenset({"event", "content", "detail", "error", "exception", "message"})


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(request_id: str) -> Callable[[], None]:
    """Bind the request id for logs and problem bodies; returns what puts the previous one back."""
    token = _request_id.set(request_id)
    tokens = structlog.contextvars.bind_contextvars(request_id=request_id)

    def restore() -> None:
        structlog.contextvars.reset_contextvars(**tokens)
        _request_id.reset(token)

    return restore


def _scrub(key: str, value: Any, *, person: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(str(k), v, person=bool(_PERSON_KEYS.search(key))) for k, v in value.items()}
    if _REDACT_KEYS.search(key) and key not in {"request_id"}:
        return "[redacted]"
    if _MASK_KEYS.search(key) and isinstance(value, str | int):
        return mask_number(str(value))
    if isinstance(value, str) and (_NAME_KEYS.search(key) or (person and key == "name")):
        return mask_name(value)
    if isinstance(value, str) and key in _FREE_TEXT_KEYS:
        return mask_free_text(value)
    return value


def scrub_sensitive(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Runs after exceptions are formatted: a traceback is text like any other and is masked the same way."""
    for key in list(event_dict):
        event_dict[key] = _scrub(key, event_dict[key])
    return event_dict


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current sys.stdout, not the one that existed when logging was configured."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_sensitive,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(),  # whatever sys.stdout is now
        cache_logger_on_first_use=False,  # reconfigurable (tests, several apps per process)
    )
    # Route the standard library's loggers (uvicorn, alembic) through the same JSON shape.
    handler = _StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                scrub_sensitive,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))  # plug-in chatter
    logging.getLogger("alembic.runtime.migration").setLevel(numeric)  # but say which migrations ran


MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """One registry per app, so tests and several apps in one process never collide.

    Under `serve --workers N` the CLI sets PROMETHEUS_MULTIPROC_DIR before the workers start: every process then
    writes its values to files there, and a scrape of any worker reads all of them (prometheus-client's
    multiprocess mode).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.payment_transitions = Counter(
            "gateway_payments", "Payments entering each status", ["status", "method"], registry=self.registry
        )
        self.refund_transitions = Counter(
            "gateway_refunds", "Refunds entering each status", ["status"], registry=self.registry
        )
        self.notifications = Counter(
            "gateway_provider_notifications",
            "Provider notifications by outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "gateway_webhook_attempts",
            "Webhook delivery attempts by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "gateway_webhook_deliveries",
            "Webhook deliveries by what became of them after an attempt",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "gateway_webhook_attempt_duration_seconds",
            "Webhook attempt latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
            registry=self.registry,
        )
        # Read from the database at each scrape: whichever process answered last knows the current value.
        self.webhook_backlog = Gauge(
            "gateway_webhook_backlog",
            "Webhook deliveries due and not yet delivered",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.webhook_oldest_due_age = Gauge(
            "gateway_webhook_oldest_due_age_seconds",
            "How long the oldest due delivery has waited",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.provider_calls = Histogram(
            "gateway_provider_call_duration_seconds",
            "Calls to providers",
            ["provider", "operation", "outcome"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every process of the server in multiprocess mode."""
        if os.environ.get(MULTIPROCESS_DIR_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
