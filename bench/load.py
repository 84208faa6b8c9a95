"""The load generator used when wrk is not installed (and always for S4's lifecycles): asyncio + httpx, N
connections each sending its next request as soon as the previous answered, for a fixed duration.

Run as its own process: reads {"mode": "fixed" | "lifecycle", "spec": {...}} as JSON on stdin and writes its
result as JSON on stdout (see loadgen.LoadSpec / LoadResult and LifecycleSpec / LifecycleResult).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from typing import Any

import httpx

from loadgen import LifecycleSpec, LoadResult, LoadSpec, percentile

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None  # type: ignore[assignment]


def _client(base_url: str, connections: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(timeout),
        trust_env=False,
    )


async def run_fixed(spec: LoadSpec) -> LoadResult:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    body = spec.body.encode() if spec.body is not None else None
    async with _client(spec.base_url, spec.connections, spec.timeout) as client:
        cpu_before = time.process_time()
        started = time.perf_counter()
        deadline = started + spec.duration

        async def connection(index: int) -> None:
            offset = index * 7919  # each connection walks the paths from its own place
            for n in itertools.count(1):
                if time.perf_counter() >= deadline:
                    return
                path = spec.paths[(offset + n) % len(spec.paths)]
                headers = dict(spec.headers)
                if spec.idempotency == "fresh":
                    headers["Idempotency-Key"] = f"{spec.idempotency_prefix}{index}-{n}"
                elif spec.idempotency == "pool":
                    headers["Idempotency-Key"] = f"{spec.idempotency_prefix}{(offset + n) % spec.idempotency_pool}"
                sent = time.perf_counter()
                try:
                    response = await client.request(spec.method, path, content=body, headers=headers)
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[str(response.status_code)] += 1
                if response.status_code >= 400:
                    errors["status"] += 1

        await asyncio.gather(*(connection(i) for i in range(spec.connections)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    latencies.sort()
    return LoadResult(
        generator="httpx",
        requests=len(latencies),
        errors=sum(errors.values()),
        duration=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else 0.0,
        error_kinds=dict(errors),
        statuses=dict(statuses),
        cpu_seconds=cpu,
    )


async def run_lifecycles(spec: LifecycleSpec) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {spec.api_key}"}
    paid_at: dict[str, float] = {}
    pay_sent_at: dict[str, float] = {}
    errors: Counter[str] = Counter()
    create_latency: list[float] = []
    pay_latency: list[float] = []
    started_count = 0
    async with _client(spec.base_url, spec.connections, spec.timeout) as client:
        cpu_before = time.process_time()
        started = time.monotonic()
        deadline = started + spec.duration

        async def connection(index: int) -> None:
            nonlocal started_count
            for n in itertools.count(1):
                if time.monotonic() >= deadline:
                    return
                started_count += 1
                body = {"amount": 150000, "method": "vietqr", "reference": f"LC-{index}-{n}", "confirm": True}
                headers = {**auth, "Idempotency-Key": f"{spec.key_prefix}{index}-{n}"}
                try:
                    sent = time.monotonic()
                    created = await client.post("/v1/payments", json=body, headers=headers)
                    create_latency.append(time.monotonic() - sent)
                    if created.status_code != 201:
                        errors[f"create_{created.status_code}"] += 1
                        continue
                    payment_id = created.json()["id"]
                    sent = time.monotonic()
                    paid = await client.post(
                        f"/v1/test-helpers/payments/{payment_id}/pay", json={"outcome": "success"}, headers=auth
                    )
                    returned = time.monotonic()
                    pay_latency.append(returned - sent)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if paid.status_code != 200 or paid.json().get("status") != "succeeded":
                    errors[f"pay_{paid.status_code}"] += 1
                    continue
                paid_at[payment_id] = returned
                pay_sent_at[payment_id] = sent

        await asyncio.gather(*(connection(i) for i in range(spec.connections)))
        ended = time.monotonic()
        cpu = time.process_time() - cpu_before
    create_latency.sort()
    pay_latency.sort()
    return {
        "started_at": started,
        "ended_at": ended,
        "lifecycles_started": started_count,
        "paid_at": paid_at,
        "pay_sent_at": pay_sent_at,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "create_p50_ms": percentile(create_latency, 50) * 1000,
        "create_p99_ms": percentile(create_latency, 99) * 1000,
        "pay_p50_ms": percentile(pay_latency, 50) * 1000,
        "pay_p99_ms": percentile(pay_latency, 99) * 1000,
        "cpu_seconds": cpu,
    }


def main() -> None:
    request = json.loads(sys.stdin.read())
    run = uvloop.run if uvloop is not None else asyncio.run
    if request["mode"] == "fixed":
        result: dict[str, Any] = run(run_fixed(LoadSpec(**request["spec"]))).to_json()
    elif request["mode"] == "lifecycle":
        result = run(run_lifecycles(LifecycleSpec(**request["spec"])))
    else:
        raise SystemExit(f"unknown mode {request['mode']!r}")
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
