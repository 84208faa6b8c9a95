"""S0, the ceiling: the least a payment-creating endpoint can do on this stack.

A bare FastAPI app that validates the same JSON body as POST /v1/payments (a pydantic model with the same fields,
limits and strictness as gateway.payments.schemas.PaymentCreate, copied here so that the ceiling does not move
when the gateway changes) and INSERTs one row with asyncpg in its own transaction, into `bench_ceiling` (created
by the harness). Served like the gateway: uvicorn, one worker, no access log:

    BENCH_CEILING_DSN=postgresql://postgres@127.0.0.1:5432/<db> \
        uvicorn ceiling_app:create_app --factory --app-dir bench --host 127.0.0.1 --port 8100 --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import orjson
from fastapi import FastAPI
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator
from starlette.responses import Response
from ulid import ULID

MAX_AMOUNT = 9_999_999_999_999
CURRENCIES = frozenset({"VND", "USD", "EUR", "JPY", "KRW", "CNY", "SGD", "THB"})
# The gateway's pool: 10 connections plus as many overflow (GATEWAY_DB_POOL_SIZE).
POOL_MIN, POOL_MAX = 10, 20


class PaymentMethod(StrEnum):
    vietqr = "vietqr"
    card = "card"
    ewallet = "ewallet"
    mobile_money = "mobile_money"
    national_platform = "national_platform"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("NUL characters are not allowed")
        return value


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 20:
        raise ValueError("at most 20 metadata pairs")
    for key, item in value.items():
        if not 1 <= len(key) <= 40:
            raise ValueError(f"metadata key {key[:40]!r} must be 1-40 characters")
        if len(item) > 500:
            raise ValueError(f"metadata value of {key!r} is longer than 500 characters")
    return value


def _check_absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


Metadata = Annotated[dict[str, str], AfterValidator(_check_metadata)]
AbsoluteURL = Annotated[str, Field(max_length=2048), AfterValidator(_check_absolute_url)]


class Customer(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    external_id: str | None = Field(default=None, max_length=100)


class PaymentCreate(StrictModel):
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT)
    currency: str = "VND"
    method: PaymentMethod
    provider: str | None = Field(default=None, min_length=1, max_length=40)
    reference: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=255)
    customer: Customer | None = None
    metadata: Metadata = Field(default_factory=dict)
    return_url: AbsoluteURL | None = None
    expires_in: StrictInt = Field(default=900, ge=10, le=604800)
    confirm: StrictBool = False

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError("unknown ISO 4217 currency code")
        return value


INSERT = (
    "INSERT INTO bench_ceiling (id, amount, currency, method, reference, expires_at, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def create_app() -> FastAPI:
    dsn = os.environ["BENCH_CEILING_DSN"]
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=POOL_MIN, max_size=POOL_MAX)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.post("/v1/payments", status_code=201)
    async def create_payment(params: PaymentCreate) -> Response:
        assert pool is not None
        now = datetime.now(UTC)
        payment_id = f"pay_{ULID.from_datetime(now)}"
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                INSERT,
                payment_id,
                params.amount,
                params.currency,
                params.method.value,
                params.reference,
                now + timedelta(seconds=params.expires_in),
                now,
            )
        document = {"id": payment_id, "object": "payment", "amount": params.amount, "reference": params.reference}
        return Response(orjson.dumps(document), status_code=201, media_type="application/json")

    return app
