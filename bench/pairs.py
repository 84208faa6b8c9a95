"""S7's load generator: collection partners' inquiry + payment pairs (CONTRACT.md §12), each signed as a partner
signs it, on N keep-alive connections for a fixed duration.

Every connection repeats: take the next customer, ask what it owes (POST /v1/collect/inquiry), then pay its bill
(POST /v1/collect/payments) — the pair a bank's app makes when a payer types a customer code and pays. Latency is
kept per route, so each route's p99 can be checked against its own target.

HTTP/1.1 is spoken over raw asyncio streams (requests pre-formatted, answers read by Content-Length): the generator
costs a few tens of microseconds per request, so the figures measure the gateway, not the generator (the httpx
generator of the other scenarios saturates a core at ~150 req/s).

Run as its own process: reads a JSON spec on stdin, writes a JSON result on stdout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

INQUIRY_PATH = "/v1/collect/inquiry"
PAYMENT_PATH = "/v1/collect/payments"


@dataclass(frozen=True)
class PairsSpec:
    base_url: str
    partner_id: str
    secret: str
    biller_code: str
    connections: int
    duration: float
    first_customer: int  # customers first_customer .. first_customer + customers - 1 (bench/run.py's bill CSV)
    customers: int
    transaction_prefix: str
    timeout: float = 30.0


@dataclass
class PairsResult:
    pairs: int
    duration: float
    inquiry_ms: dict[str, float]
    payment_ms: dict[str, float]
    errors: int
    statuses: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    examples: list[str] = field(default_factory=list)


def customer_code(i: int) -> str:
    return f"KH{i:010d}"


def bill_number(i: int) -> str:
    return f"HD-2026-11-{i:07d}"


def bill_amount(i: int) -> int:
    return 120_000 + (i * 37) % 400_000


def _signature(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.{method}.{path}.".encode() + body, hashlib.sha256).hexdigest()


class Connection:
    def __init__(self, host: str, port: int, spec: PairsSpec) -> None:
        self.host, self.port, self.spec = host, port, spec
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def post(self, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        stamp = str(int(time.time()))
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Partner-Id: {self.spec.partner_id}\r\nX-Timestamp: {stamp}\r\n"
            f"X-Signature: {_signature(self.spec.secret, stamp, 'POST', path, body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        answer = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, answer


def _percentiles(values: list[float]) -> dict[str, float]:
    values.sort()

    def at(q: float) -> float:
        if not values:
            return 0.0
        rank = max(1, min(len(values), int(-(-q * len(values) // 100))))
        return values[rank - 1] * 1000

    return {"p50": at(50), "p95": at(95), "p99": at(99), "max": values[-1] * 1000 if values else 0.0}


async def run_pairs(spec: PairsSpec) -> PairsResult:
    parts = urlsplit(spec.base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    inquiries: list[float] = []
    payments: list[float] = []
    statuses: Counter[str] = Counter()
    error_kinds: Counter[str] = Counter()
    examples: list[str] = []
    next_customer = itertools.count()
    cpu_before = time.process_time()
    started = time.perf_counter()
    deadline = started + spec.duration
    paid_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pairs = 0

    def note(kind: str, status: int, answer: bytes) -> None:
        statuses[f"{kind} {status}"] += 1
        if status >= 400 and len(examples) < 5:
            examples.append(f"{kind} {status}: {answer[:300].decode(errors='replace')}")

    async def connection() -> None:
        nonlocal pairs
        conn = Connection(host, port, spec)
        try:
            while time.perf_counter() < deadline:
                n = next(next_customer)
                if n >= spec.customers:
                    return
                i = spec.first_customer + n
                try:
                    sent = time.perf_counter()
                    status, answer = await asyncio.wait_for(
                        conn.post(INQUIRY_PATH, {"biller_code": spec.biller_code, "customer_code": customer_code(i)}),
                        spec.timeout,
                    )
                    inquiries.append(time.perf_counter() - sent)
                    note("inquiry", status, answer)
                    if status != 200:
                        continue
                    payment = {
                        "biller_code": spec.biller_code,
                        "customer_code": customer_code(i),
                        "bill_numbers": [bill_number(i)],
                        "amount": bill_amount(i),
                        "partner_transaction_id": f"{spec.transaction_prefix}{i}",
                        "paid_at": paid_at,
                        "channel": "app",
                    }
                    sent = time.perf_counter()
                    status, answer = await asyncio.wait_for(conn.post(PAYMENT_PATH, payment), spec.timeout)
                    payments.append(time.perf_counter() - sent)
                    note("payment", status, answer)
                    if status == 201:
                        pairs += 1
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    error_kinds[type(exc).__name__] += 1
                    await conn.close()
        finally:
            await conn.close()

    await asyncio.gather(*(connection() for _ in range(spec.connections)))
    duration = time.perf_counter() - started
    errors = sum(error_kinds.values()) + sum(n for s, n in statuses.items() if not s.split()[1].startswith("2"))
    return PairsResult(
        pairs=pairs,
        duration=duration,
        inquiry_ms=_percentiles(inquiries),
        payment_ms=_percentiles(payments),
        errors=errors,
        statuses=dict(statuses),
        error_kinds=dict(error_kinds),
        cpu_seconds=time.process_time() - cpu_before,
        examples=examples,
    )


def main() -> None:
    spec = PairsSpec(**json.loads(sys.stdin.read()))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        pass
    result = asyncio.run(run_pairs(spec))
    sys.stdout.write(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
