"""A simulated Vietnamese bank speaking the VietQR notification protocol from the bank's side.

It holds the sandbox merchant account, "receives" transfers that a test payer sends to it, signs and pushes
the credit notification to the gateway, and executes the gateway's refund transfers through the transfer
API, confirming each with a signed debit notification. State lives in memory: it is a sandbox.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson
import structlog
from fastapi import BackgroundTasks, FastAPI, Header, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.responses import JSONResponse

from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext
from gateway.adapters.vietqr.wire import SIGNATURE_HEADER, TIMESTAMP_HEADER, TransferRequest, sign_bank_message
from gateway.clock import Clock

log = structlog.get_logger("gateway.sandbox.vietqr")

# Waits between notification attempts while the gateway is down or failing (about 7 s in all).
NOTIFY_BACKOFF_SECONDS = (0.25, 0.5, 1.0, 2.0, 3.5)


def _authorized(authorization: str, api_key: str) -> bool:
    return hmac.compare_digest(authorization.encode(), f"Bearer {api_key}".encode())


class IncomingTransfer(BaseModel):
    """What a test payer does in their banking app: scan, confirm, send."""

    model_config = ConfigDict(extra="forbid")
    to_bank_bin: str
    to_account_number: str
    amount: StrictInt = Field(gt=0)
    content: str = ""
    outcome: Literal["success", "failure"] = "success"
    from_bank_bin: str = "970415"
    from_account_number: str = "0123456789"
    from_account_name: str = "NGUYEN VAN A"
    # The payer's app's own request id: the same transfer sent again (a retry) is the one transfer, notified again.
    payer_reference: str | None = Field(default=None, min_length=1, max_length=200)


@dataclass
class SandboxBank:
    bank_bin: str
    account_number: str
    account_name: str
    webhook_secret: str
    api_key: str
    notify_url: str
    http: httpx.AsyncClient
    clock: Clock
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next_transfers: int = 0
    sent_by_payer: dict[str, dict[str, Any]] = field(default_factory=dict)
    lose_next_notifications: int = 0

    def _transaction_id(self) -> str:
        # Random, not a counter: a restarted (or second) sandbox never reuses an id the gateway has seen.
        return f"FT{self.clock.now():%y%j}{secrets.randbelow(10**12):012d}"

    async def notify(self, notification: dict[str, Any]) -> int:
        """Sign and push one notification. Like a bank, retry with backoff while the merchant's server is
        unreachable or answers 5xx (a restart); any other answer is the merchant's and final."""
        body = orjson.dumps(notification)
        status = 0
        for backoff in (*NOTIFY_BACKOFF_SECONDS, None):
            timestamp = str(int(self.clock.now().timestamp()))
            headers = {
                "content-type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign_bank_message(self.webhook_secret, timestamp, body),
            }
            try:
                response = await self.http.post(self.notify_url, content=body, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                log.warning("sandbox_bank.notify_failed", error=type(exc).__name__)
                status = 0
            if 0 < status < 500 or backoff is None:
                break
            await asyncio.sleep(backoff)
        return status

    def _notification(self, direction: str, amount: int, content: str, **extra: Any) -> dict[str, Any]:
        return {
            "transaction_id": self._transaction_id(),
            "bank_bin": self.bank_bin,
            "account_number": self.account_number,
            "direction": direction,
            "amount": amount,
            "currency": "VND",
            "content": content,
            "transaction_time": self.clock.now().isoformat(),
            **extra,
        }

    async def receive_transfer(self, transfer: IncomingTransfer) -> dict[str, Any]:
        if (transfer.to_bank_bin, transfer.to_account_number) != (self.bank_bin, self.account_number):
            return {"error": "unknown_account"}
        sent = self.sent_by_payer.get(transfer.payer_reference) if transfer.payer_reference else None
        if sent is not None:  # a retried send: the same transfer, its notification pushed again
            return {"transaction_id": sent["transaction_id"], "notified_status": await self.notify(sent)}
        extra: dict[str, Any] = {
            "counter_bank_bin": transfer.from_bank_bin,
            "counter_account_number": transfer.from_account_number,
            "counter_account_name": transfer.from_account_name,
        }
        if transfer.outcome == "failure":
            extra.update(status="failed", failure_reason="Payer's bank rejected the transfer")
        # Payers' banks prepend their own words to the purpose; the gateway must still find the code.
        notification = self._notification("credit", transfer.amount, f"IBFT {transfer.content.lower()}", **extra)
        if transfer.payer_reference:
            self.sent_by_payer[transfer.payer_reference] = notification
        status = await self.notify(notification)
        return {"transaction_id": notification["transaction_id"], "notified_status": status}

    async def execute_transfer(self, transfer: TransferRequest) -> None:
        record = self.transfers[transfer.request_id]
        extra: dict[str, Any] = {
            "request_id": transfer.request_id,
            "counter_bank_bin": transfer.to_bank_bin,
            "counter_account_number": transfer.to_account_number,
        }
        if record["status"] == "failed":
            extra.update(status="failed", failure_reason="Beneficiary account closed")
        else:
            record["status"] = "completed"
        if self.lose_next_notifications > 0:  # the bank executes the transfer but its notification is lost
            self.lose_next_notifications -= 1
            return
        await self.notify(self._notification("debit", transfer.amount, transfer.content, **extra))

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Sandbox bank (VietQR)", docs_url=None, redoc_url=None, openapi_url=None)

        @app.post("/transfers", status_code=202)
        async def create_transfer(
            transfer: TransferRequest, background: BackgroundTasks, authorization: str = Header(default="")
        ) -> JSONResponse:
            if not _authorized(authorization, self.api_key):
                return JSONResponse({"error": "unauthorized", "message": "bad API key"}, status_code=401)
            existing = self.transfers.get(transfer.request_id)
            if existing is not None:  # idempotent on request_id
                return JSONResponse({"transfer_id": existing["transfer_id"], "status": existing["status"]}, 202)
            failed = self.fail_next_transfers > 0
            self.fail_next_transfers = max(self.fail_next_transfers - 1, 0)
            record = {
                "transfer_id": f"TR{len(self.transfers) + 1:010d}",
                "status": "failed" if failed else "pending",
            }
            self.transfers[transfer.request_id] = record
            background.add_task(self.execute_transfer, transfer)
            return JSONResponse({"transfer_id": record["transfer_id"], "status": "pending"}, status_code=202)

        @app.get("/transfers/{request_id}")
        async def get_transfer(request_id: str, authorization: str = Header(default="")) -> JSONResponse:
            if not _authorized(authorization, self.api_key):
                return JSONResponse({"error": "unauthorized", "message": "bad API key"}, status_code=401)
            record = self.transfers.get(request_id)
            if record is None:
                return JSONResponse({"error": "not_found", "message": "no such transfer"}, status_code=404)
            return JSONResponse(record)

        @app.post("/_sandbox/lose-next-notifications")
        async def lose_next(request: Request) -> JSONResponse:
            body = await request.json() if await request.body() else {}
            self.lose_next_notifications = int(body.get("count", 1))
            return JSONResponse({"lose_next_notifications": self.lose_next_notifications})

        @app.post("/_sandbox/incoming-transfers")
        async def incoming(transfer: IncomingTransfer) -> JSONResponse:
            result = await self.receive_transfer(transfer)
            return JSONResponse(result, status_code=404 if "error" in result else 200)

        @app.post("/_sandbox/fail-next-transfers")
        async def fail_next(request: Request) -> JSONResponse:
            body = await request.json() if await request.body() else {}
            self.fail_next_transfers = int(body.get("count", 1))
            return JSONResponse({"fail_next_transfers": self.fail_next_transfers})

        return app


def create_simulator(ctx: SimulatorContext) -> FastAPI:
    bank = SandboxBank(
        bank_bin=ctx.settings["bank_bin"],
        account_number=ctx.settings["account_number"],
        account_name=ctx.settings["account_name"],
        webhook_secret=ctx.secrets["webhook_secret"],
        api_key=ctx.secrets["api_key"],
        notify_url=ctx.notification_url,
        http=ctx.http,
        clock=ctx.clock,
    )
    app = bank.build_app()
    app.state.bank = bank
    return app


async def send_transfer(
    http: httpx.AsyncClient,
    base_url: str,
    bank_bin: str,
    account_number: str,
    code: str,
    amount: int,
    outcome: str = "success",
    payer_reference: str | None = None,
) -> str:
    """A payer's banking app sends a transfer carrying `code`; the bank's transaction id. The same
    `payer_reference` again is a retry of that transfer, never a second one."""
    response = await http.post(
        f"{base_url}/_sandbox/incoming-transfers",
        json={
            "to_bank_bin": bank_bin,
            "to_account_number": account_number,
            "amount": amount,
            "content": f"{code} chuyen tien",
            "outcome": outcome,
            "payer_reference": payer_reference,
        },
    )
    if response.status_code != 200 or response.json().get("notified_status") != 200:
        raise SandboxPayerFailed(f"The sandbox bank could not deliver the transfer: {response.text[:200]}")
    return str(response.json()["transaction_id"])


async def pay_by_transfer(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    """The test helpers' payer: send the transfer the QR asks for from a banking app."""
    await send_transfer(
        http,
        base_url,
        provider_data["bank_bin"],
        provider_data["account_number"],
        provider_data["payment_code"],
        amount,
        outcome,
        provider_data.get("payer_reference"),
    )
