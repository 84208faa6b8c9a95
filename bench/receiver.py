"""The benchmark's webhook receiver (a billing backend), in its own process: HTTPS on 127.0.0.1, every delivery's
Standard Webhooks signature verified with the `standardwebhooks` library, the first receipt of each payment's
payment.succeeded recorded with time.monotonic() (CLOCK_MONOTONIC, the same clock in every process here).

    BENCH_WEBHOOK_SECRET=whsec_... python bench/receiver.py --port 8200 --cert c.pem --key k.pem

POST /hooks answers 204 (400 on a bad signature); GET /_stats the counters; GET /_times {payment id: time};
GET /healthz 200. A raw ASGI app, so that the receiver costs as little as possible next to the gateway.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Receiver:
    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.first_seen: dict[str, float] = {}  # payment id → first payment.succeeded receipt
        self.received = 0
        self.duplicates = 0
        self.bad_signatures = 0
        self.other_types = 0

    def stats(self) -> dict[str, int]:
        return {
            "received": self.received,
            "succeeded_payments": len(self.first_seen),
            "duplicates": self.duplicates,
            "bad_signatures": self.bad_signatures,
            "other_types": self.other_types,
        }

    def handle(self, body: bytes, headers: dict[str, str], at: float) -> int:
        self.received += 1
        try:
            event = self.webhook.verify(body, headers)
        except WebhookVerificationError:
            self.bad_signatures += 1
            return 400
        if event.get("type") != "payment.succeeded":
            self.other_types += 1
            return 204
        payment_id = event["data"]["object"]["id"]
        if payment_id in self.first_seen:
            self.duplicates += 1
        else:
            self.first_seen[payment_id] = at
        return 204

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        at = time.monotonic()
        path, method = scope["path"], scope["method"]
        body: bytes = b""
        if method == "POST" and path == "/hooks":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            status = self.handle(b"".join(chunks), headers, at)
        elif path == "/_stats":
            status, body = 200, orjson.dumps(self.stats())
        elif path == "/_times":
            status, body = 200, orjson.dumps(self.first_seen)
        elif path == "/healthz":
            status, body = 200, b'{"status":"ok"}'
        else:
            status = 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    receiver = Receiver(os.environ["BENCH_WEBHOOK_SECRET"])
    uvicorn.run(
        receiver,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
