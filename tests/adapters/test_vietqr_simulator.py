"""The sandbox bank delivers its notifications like a bank: through a gateway restart (unreachable, then 5xx)
with backoff, and never again after the gateway's own answer."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from gateway.adapters.vietqr import simulator
from gateway.adapters.vietqr.simulator import SandboxBank
from gateway.clock import ManualClock


def bank_answering(*statuses: int) -> tuple[SandboxBank, list[bytes]]:
    """A bank whose notifications reach a gateway answering `statuses` in turn (0: the connection fails)."""
    received: list[bytes] = []
    answers = list(statuses)
    gateway = FastAPI()

    @gateway.post("/v1/providers/vietqr/notifications")
    async def notifications(request: Request) -> JSONResponse:
        received.append(await request.body())
        status = answers.pop(0) if answers else 200
        if status == 0:
            raise httpx.ConnectError("connection refused")
        return JSONResponse({"success": status == 200}, status_code=status)

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway.test")
    bank = SandboxBank(
        bank_bin="970436",
        account_number="0011223344",
        account_name="CONG THANH TOAN SANDBOX",
        webhook_secret="s" * 32,
        api_key="k" * 32,
        notify_url="http://gateway.test/v1/providers/vietqr/notifications",
        http=http,
        clock=ManualClock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
    )
    return bank, received


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulator, "NOTIFY_BACKOFF_SECONDS", (0.01, 0.01, 0.01, 0.01, 0.01))


async def test_a_notification_survives_a_gateway_restart() -> None:
    bank, received = bank_answering(0, 503, 503, 502)
    status = await bank.notify({"transaction_id": "FT1", "direction": "debit", "amount": 1})
    assert status == 200
    assert len(received) == 5 and len(set(received)) == 1


async def test_the_gateways_own_refusal_is_not_retried() -> None:
    bank, received = bank_answering(401)
    assert await bank.notify({"transaction_id": "FT2", "direction": "credit", "amount": 1}) == 401
    assert len(received) == 1


async def test_a_gateway_that_stays_down_is_given_up_on() -> None:
    bank, received = bank_answering(*([503] * 10))
    assert await bank.notify({"transaction_id": "FT3", "direction": "credit", "amount": 1}) == 503
    assert len(received) == len(simulator.NOTIFY_BACKOFF_SECONDS) + 1
