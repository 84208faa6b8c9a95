"""PostgreSQL restarts under a running gateway: while it is down (and while it starts up) the API answers a 503
problem with Retry-After and /readyz a 503; once it is back both recover by themselves, with no restart of the
gateway, and the request that got the 503 runs again with its Idempotency-Key. A throw-away cluster of this
test's own: the shared server is never restarted."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.processes import free_port
from tests.resilience.harness import ADMIN_TOKEN, Gateway, gateway_env, require_postgres, run_cli, throwaway_cluster


async def _create_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


def _until(deadline: float, what: str) -> None:
    assert time.monotonic() < deadline, f"{what} did not happen in time"
    time.sleep(0.1)


def test_readyz_and_the_api_recover_when_postgresql_restarts(tmp_path: Path) -> None:
    require_postgres()
    with throwaway_cluster() as cluster:
        asyncio.run(_create_database(cluster.url, "gateway"))
        env = gateway_env(cluster.url.rsplit("/", 1)[0] + "/gateway", GATEWAY_ENV="production")
        assert run_cli(["migrate"], env, tmp_path).returncode == 0
        port = free_port()
        server = Gateway(
            ["serve", "--workers", "1"], {**env, "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}, tmp_path, port
        )
        server.start()
        try:
            with httpx.Client(base_url=server.url, timeout=15) as http:
                merchant = http.post(
                    "/v1/merchants",
                    json={"name": "Hai Phong Water", "category": "water"},
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert merchant.status_code == 201, merchant.text
                auth = {"Authorization": f"Bearer {merchant.json()['api_key']['secret']}"}
                body = {"amount": 99000, "method": "vietqr", "reference": "HPW-2026-11-7", "confirm": True}
                before = http.post("/v1/payments", json=body, headers={**auth, "Idempotency-Key": "before"})
                assert before.status_code == 201, before.text
                assert http.get("/readyz").status_code == 200

                cluster.ctl("stop", "-m", "fast")
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.headers["content-type"].startswith("application/problem+json")
                assert ready.headers["retry-after"] == "1"
                during = http.post("/v1/payments", json=body, headers={**auth, "Idempotency-Key": "during"})
                assert during.status_code == 503, during.text
                assert during.headers["content-type"].startswith("application/problem+json")
                assert during.json()["code"] == "database_unavailable" and int(during.headers["retry-after"]) >= 1
                assert http.get("/healthz").status_code == 200  # the process itself is fine

                cluster.ctl("start")
                deadline = time.monotonic() + 30
                while (ready := http.get("/readyz")).status_code != 200:
                    assert ready.status_code == 503, ready.text
                    _until(deadline, "/readyz recovering")
                while True:  # the request that got the 503, retried as its Retry-After says
                    retried = http.post("/v1/payments", json=body, headers={**auth, "Idempotency-Key": "during"})
                    if retried.status_code != 503:
                        break
                    assert retried.json()["code"] == "database_unavailable" and retried.headers["retry-after"]
                    _until(deadline, "the API recovering")
                assert retried.status_code == 201, retried.text
                assert "idempotent-replayed" not in retried.headers  # it ran now, once
                replay = http.post("/v1/payments", json=body, headers={**auth, "Idempotency-Key": "before"})
                assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == before.json()
                listed = http.get("/v1/payments", headers=auth).json()["data"]
                assert sorted(p["id"] for p in listed) == sorted([before.json()["id"], retried.json()["id"]])
            assert server.popen is not None and server.popen.poll() is None, "the gateway was never restarted"
            assert "Traceback" not in server.log_tail(100_000)
        finally:
            server.stop()
