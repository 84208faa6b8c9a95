"""`gateway serve --workers N`: /metrics is the whole server's, whichever worker answers the scrape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import clean_env, free_port, gateway_process

REQUESTS = 60


def healthz_count(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        if family.name == "gateway_http_requests":
            return sum(
                s.value for s in family.samples if s.name.endswith("_total") and s.labels.get("route") == "/healthz"
            )
    return 0.0


def test_metrics_add_up_every_worker(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        GATEWAY_ENV="production",
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        GATEWAY_SECRET_KEY="metrics-test-secret-key-0123456789abcdef",
        GATEWAY_ADMIN_TOKEN="adm_metrics",
        GATEWAY_ACCESS_LOG="false",
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "migrate"], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    with gateway_process(["serve", "--workers", "2"], tmp_path, env, port) as url:
        for _ in range(REQUESTS):
            # A fresh connection each time, so that both workers take some of them.
            with httpx.Client(base_url=url, timeout=5) as client:
                assert client.get("/healthz").status_code == 200
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=url, timeout=5) as client:
                scrapes.append(healthz_count(client.get("/metrics").text))
    # Every scrape sees every worker's requests (the readiness probe of gateway_process adds its own /healthz).
    assert all(count >= REQUESTS for count in scrapes), scrapes
    assert len(set(scrapes)) == 1, scrapes
