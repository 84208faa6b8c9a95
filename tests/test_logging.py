"""Logs are JSON lines with the request id; secrets are redacted and phone/account numbers masked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.db import create_engine
from gateway.observability import configure_logging
from tests.conftest import MerchantHandle, create_vietqr_payment


def test_scrubbing_masks_numbers_and_redacts_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    structlog.get_logger("t").info(
        "funds.unmatched",
        counter_account_number="1017595600",
        phone="0912345678",
        api_key="sk_live_abcdef",
        webhook_secret="whsec_xyz",
        content="IBFT chuyen tien tu 0912345678 den 1017595600",
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "funds.unmatched"
    assert line["counter_account_number"] == "******5600"
    assert line["phone"] == "******5678"
    assert line["api_key"] == "[redacted]" and line["webhook_secret"] == "[redacted]"
    assert "0912345678" not in line["content"] and "1017595600" not in line["content"]


async def test_request_logs_carry_the_request_id_and_no_secret(
    client: httpx.AsyncClient, merchant: MerchantHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    capsys.readouterr()
    payment = await create_vietqr_payment(
        client,
        merchant,
        customer={"name": "Tran Thi B", "phone": "0987654321"},
    )
    await client.post(
        "/v1/providers/vietqr/notifications",
        content=b'{"bank_bin":"970436","account_number":"0011223344"}',
        headers={"x-request-id": "req-log-check", "x-bank-signature": "00", "x-bank-timestamp": "1"},
    )
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(
        entry.get("event") == "payment.requires_action" and entry.get("payment_id") == payment["id"] for entry in lines
    )
    assert any(entry.get("request_id") == "req-log-check" for entry in lines)
    assert merchant.key not in out and "0987654321" not in out


async def test_an_in_process_callback_does_not_take_over_the_request_id(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    payment = await create_vietqr_payment(client, merchant)
    # The test helper calls the sandbox bank, which calls back into the gateway, all in one process.
    response = await client.post(
        f"/v1/test-helpers/payments/{payment['id']}/pay",
        json={"outcome": "success"},
        headers={**merchant.headers, "x-request-id": "outer-request"},
    )
    assert response.headers["x-request-id"] == "outer-request"
    problem = await client.post(
        f"/v1/payments/{payment['id']}/cancel", headers={**merchant.headers, "x-request-id": "second-outer"}
    )
    assert problem.json()["request_id"] == "second-outer"


def test_phone_numbers_are_masked_however_they_are_spaced(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    structlog.get_logger("t").info(
        "payer.contacted",
        phone="0912 345 678",
        customer={"name": "NGUYEN VAN B", "phone": "+84 912.345.678"},
        content="goi 0912 345 678 hoac 0912.345.678 hoac +84-912-345-678 truoc 2026-11-22",
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["phone"] == "******5678"
    assert line["customer"] == {"name": "NGUYEN V** B", "phone": "*******5678"}
    for spaced in ("0912 345 678", "0912.345.678", "912-345-678"):
        assert spaced not in line["content"]
    assert "2026-11-22" in line["content"]  # a date is not a phone number


def test_a_traceback_is_masked_like_any_other_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    try:
        raise ValueError('insert failed: {"account_number":"19036677889900","account_name":"NGUYEN VAN B"}')
    except ValueError:
        structlog.get_logger("t").exception("request.unhandled_error")
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [entry["event"] for entry in lines] == ["request.unhandled_error", "Exception in ASGI application"]
    assert all("ValueError" in entry["exception"] for entry in lines)
    assert "19036677889900" not in out and "NGUYEN VAN B" not in out
    assert "**********9900" in out and "NGUYEN V** B" in out


async def test_database_errors_never_quote_the_statement_parameters(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError) as caught:
                await conn.execute(text("SELECT no_such_column, :account"), {"account": "19036677889900"})
    finally:
        await engine.dispose()
    assert "19036677889900" not in str(caught.value)
