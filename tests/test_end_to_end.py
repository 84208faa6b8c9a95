"""Production profile over real sockets: `gateway serve` and a separate `gateway sandbox` process talk HTTP
both ways (the gateway calls the bank's transfer API; the bank pushes signed notifications)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import postgresql_only
from tests.processes import clean_env, free_port, gateway_process

SECRET = "end-to-end-secret-key-0123456789abcdef"
ADMIN = "adm_end_to_end"


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


# The production profile (several workers, a separate sandbox) on the production database; the README's quick start
# (SQLite) is served and paid through by CI's first step.
@postgresql_only
def test_payment_and_refund_over_real_http(database_url: str, tmp_path: Path) -> None:
    gateway_port, sandbox_port = free_port(), free_port()
    env = clean_env(
        GATEWAY_ENV="production",
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_SECRET_KEY=SECRET,
        GATEWAY_ADMIN_TOKEN=ADMIN,
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{gateway_port}",
        GATEWAY_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}",
        GATEWAY_LOG_LEVEL="WARNING",
    )
    assert _cli(["migrate"], env, tmp_path).returncode == 0
    with (
        gateway_process(["sandbox"], tmp_path, env, sandbox_port),
        gateway_process(["serve", "--workers", "2"], tmp_path, env, gateway_port) as url,
    ):
        with httpx.Client(base_url=url, timeout=10) as http:
            merchant = http.post(
                "/v1/merchants",
                json={"name": "Da Nang Water", "category": "water"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ).json()
            auth = {"Authorization": f"Bearer {merchant['api_key']['secret']}"}
            payment = http.post(
                "/v1/payments",
                headers={**auth, "Idempotency-Key": "bill-1"},
                json={"amount": 275000, "method": "vietqr", "reference": "DNW-11-2026-42", "confirm": True},
            ).json()
            assert payment["status"] == "requires_action"
            paid = http.post(
                f"/v1/test-helpers/payments/{payment['id']}/pay", headers=auth, json={"outcome": "success"}
            )
            assert paid.status_code == 200, paid.text
            assert paid.json()["status"] == "succeeded"
            refund = http.post(
                "/v1/refunds",
                headers={**auth, "Idempotency-Key": "refund-1"},
                json={"payment_id": payment["id"]},
            ).json()
            assert refund["status"] in {"pending", "succeeded"}
            # Over real sockets the bank confirms after answering: wait for its debit notification.
            deadline = time.monotonic() + 10
            while http.get(f"/v1/refunds/{refund['id']}", headers=auth).json()["status"] == "pending":
                assert time.monotonic() < deadline, "the bank never confirmed the refund"
                time.sleep(0.05)
            assert http.get(f"/v1/payments/{payment['id']}", headers=auth).json()["amount_refunded"] == 275000
            metrics = http.get("/metrics").text
            assert "gateway_http_requests_total" in metrics

    verified = _cli(["ledger", "verify"], env, tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "ledger balanced: 2 transactions" in verified.stdout


def test_merchant_create_command_prints_a_working_key(database_url: str, tmp_path: Path) -> None:
    env = clean_env(GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY=SECRET, GATEWAY_LOG_LEVEL="WARNING")
    created = _cli(["merchant", "create", "--name", "Hue Central School", "--category", "school"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    assert '"api_key": "sk_test_' in created.stdout
