"""The edge every request crosses: body limits per route, UTF-8 JSON only, and a request id on every answer (the
last-resort 500 included)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway.notifications.models import ProviderNotification
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, assert_problem
from tests.test_bad_input import assert_no_payments

PAYMENT = {"amount": 150000, "method": "vietqr", "reference": "HIS-2026-000123"}


async def notifications_stored(rt: Runtime) -> int:
    async with rt.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(ProviderNotification)) or 0)


async def test_a_provider_callback_over_64_kb_is_refused_unread_and_not_stored(
    client: httpx.AsyncClient, rt: Runtime
) -> None:
    response = await client.post(
        "/v1/providers/vietqr/notifications",
        content=b'{"content": "' + b"x" * (10 * 1024 * 1024) + b'"}',
        headers={"x-bank-signature": "00", "x-bank-timestamp": "1", "x-request-id": "req-big-callback"},
    )
    problem = assert_problem(response, 413, "payload_too_large")
    assert problem["request_id"] == "req-big-callback" == response.headers["x-request-id"]
    assert await notifications_stored(rt) == 0


async def test_a_callback_just_under_the_limit_reaches_the_adapter(client: httpx.AsyncClient, rt: Runtime) -> None:
    body = json.dumps({"content": "x" * (60 * 1024)}).encode()
    response = await client.post(
        "/v1/providers/vietqr/notifications", content=body, headers={"x-bank-signature": "00", "x-bank-timestamp": "1"}
    )
    assert response.status_code == 401  # the adapter's own refusal of a bad signature
    assert await notifications_stored(rt) == 1


async def test_an_api_body_over_1_mb_is_refused(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    body = json.dumps({**PAYMENT, "description": "x" * (1024 * 1024)}).encode()
    response = await client.post(
        "/v1/payments", content=body, headers={**merchant.idem(), "content-type": "application/json"}
    )
    assert_problem(response, 413, "payload_too_large")
    await assert_no_payments(client, merchant)


async def test_a_chunked_body_is_counted_as_it_arrives(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"description": "'
        for _ in range(20):
            yield b"x" * 64 * 1024
        yield b'"}'

    response = await client.post(
        "/v1/payments", content=chunks(), headers={**merchant.idem(), "content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_a_chunked_body_within_the_limit_is_served(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        text = json.dumps(PAYMENT).encode()
        yield text[:10]
        yield text[10:]

    response = await client.post(
        "/v1/payments", content=chunks(), headers={**merchant.idem(), "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(PAYMENT).encode("utf-16"), id="utf-16-with-bom"),
        pytest.param(json.dumps(PAYMENT).encode("utf-16-le"), id="utf-16-le"),
        pytest.param(json.dumps(PAYMENT).encode("utf-32"), id="utf-32"),
        pytest.param(b'{"amount": 150000, "method": "vietqr", "reference": "\xff\xfe"}', id="invalid-utf-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-past-any-parser"),
    ],
)
async def test_bodies_that_are_not_utf8_json_are_malformed(
    client: httpx.AsyncClient, merchant: MerchantHandle, body: bytes
) -> None:
    response = await client.post(
        "/v1/payments", content=body, headers={**merchant.idem(), "content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")
    await assert_no_payments(client, merchant)


async def test_vietnamese_text_in_utf8_is_accepted(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    body = json.dumps({**PAYMENT, "description": "Viện phí khám bệnh"}, ensure_ascii=False).encode()
    response = await client.post(
        "/v1/payments", content=body, headers={**merchant.idem(), "content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "Viện phí khám bệnh"


async def test_an_unexpected_error_is_a_500_problem_with_the_request_id(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/test-only/explode", explode)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        response = await client.get("/v1/test-only/explode", headers={"x-request-id": "req-bug"})
    problem = assert_problem(response, 500, "internal_error")
    assert problem["request_id"] == "req-bug" == response.headers["x-request-id"]
    assert "a bug" not in response.text and "Traceback" not in response.text
