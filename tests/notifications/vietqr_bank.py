"""The sandbox bank's signed transfer notifications, as tests send them (PROVIDERS.md, "Bank transfer notification")."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vietqr.wire import sign_bank_message
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import sandbox_secrets

NOTIFY_URL = "/v1/providers/vietqr/notifications"


SANDBOX = VietQRAdapter.sandbox.settings


def bank_secret(rt: Runtime) -> str:
    return sandbox_secrets(rt, "vietqr")["webhook_secret"]


def bank_notification(content: str, amount: int, **overrides: Any) -> dict[str, Any]:
    """A credit to the sandbox account, as the bank reports it."""
    note: dict[str, Any] = {
        "transaction_id": f"FT26326{uuid.uuid4().hex[:10].upper()}",
        "bank_bin": SANDBOX["bank_bin"],
        "account_number": SANDBOX["account_number"],
        "direction": "credit",
        "amount": amount,
        "currency": "VND",
        "content": content,
        "counter_bank_bin": "970415",
        "counter_account_number": "0123456789",
        "counter_account_name": "NGUYEN VAN A",
        "transaction_time": "2026-11-22T17:05:00+07:00",
    }
    note.update(overrides)
    return note


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "X-Bank-Timestamp": str(timestamp),
        "X-Bank-Signature": sign_bank_message(secret, str(timestamp), body),
    }


async def post_raw(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(NOTIFY_URL, content=body, headers=headers)


async def send_notification(
    client: httpx.AsyncClient,
    rt: Runtime,
    clock: ManualClock,
    note: dict[str, Any],
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> httpx.Response:
    """Sign `note` like the bank does and POST it."""
    body = orjson.dumps(note)
    ts = int(clock.now().timestamp()) if timestamp is None else timestamp
    return await post_raw(client, body, signed_headers(secret or bank_secret(rt), ts, body))


async def transfer(
    client: httpx.AsyncClient, rt: Runtime, clock: ManualClock, content: str, amount: int, **overrides: Any
) -> tuple[httpx.Response, dict[str, Any]]:
    note = bank_notification(content, amount, **overrides)
    return await send_notification(client, rt, clock, note), note
