"""A partner's side of §12: signs and sends inquiry, payment, status and reversal requests to a gateway.

What `gateway partner-sim`, the tests and the benchmark use to act as a bank's bill-payment system. The signature
covers the exact bytes sent and the request's full path, as the gateway checks them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.partners.signing import signed_headers


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def new_transaction_id() -> str:
    return f"TXN-{uuid.uuid4().hex[:20].upper()}"


class PartnerClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        partner_id: str,
        secret: str,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.http, self.partner_id, self.secret, self.now = http, partner_id, secret, now

    async def send(self, method: str, path: str, document: Any = None, *, body: bytes | None = None) -> httpx.Response:
        """Sign and send; `body` sends these exact bytes instead of `document` as JSON."""
        content = body if body is not None else (_json(document) if document is not None else b"")
        headers = {"Content-Type": "application/json"} if content else {}
        request = self.http.build_request(method, path, content=content, headers=headers)
        stamp = int(self.now())
        request.headers.update(signed_headers(self.partner_id, self.secret, stamp, method, request.url.path, content))
        return await self.http.send(request)

    async def inquiry(self, biller_code: str, customer_code: str) -> httpx.Response:
        return await self.send(
            "POST", "/v1/collect/inquiry", {"biller_code": biller_code, "customer_code": customer_code}
        )

    async def pay(
        self,
        biller_code: str,
        customer_code: str,
        amount: int,
        *,
        transaction_id: str | None = None,
        bill_numbers: Sequence[str] | None = None,
        channel: str = "app",
        paid_at: str | None = None,
        payer: dict[str, str] | None = None,
    ) -> httpx.Response:
        document: dict[str, Any] = {
            "biller_code": biller_code,
            "customer_code": customer_code,
            "amount": amount,
            "partner_transaction_id": transaction_id or new_transaction_id(),
            "paid_at": paid_at or datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "channel": channel,
        }
        if bill_numbers:
            document["bill_numbers"] = list(bill_numbers)
        if payer:
            document["payer"] = payer
        return await self.send("POST", "/v1/collect/payments", document)

    async def status(self, transaction_id: str) -> httpx.Response:
        return await self.send("GET", f"/v1/collect/payments/{transaction_id}")

    async def reverse(self, transaction_id: str, reason: str) -> httpx.Response:
        return await self.send(
            "POST", "/v1/collect/reversals", {"partner_transaction_id": transaction_id, "reason": reason}
        )
