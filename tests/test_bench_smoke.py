"""The benchmark harness runs end to end: `python bench/run.py --smoke` runs every scenario (S0-S8) for a few
seconds on tiny data against a real PostgreSQL, real `gateway serve` / `gateway worker` processes and a real
load generator, and prints its table.

This checks that the harness works — exit status 0 and a row for each scenario — never how fast anything is:
timings on a shared CI machine mean nothing. Skipped only when PostgreSQL is unreachable, and in CI (CI=true or
GATEWAY_TEST_REQUIRE_POSTGRES=1) it fails instead of skipping.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES, _postgres_available

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 180


def test_smoke_run_prints_a_row_for_every_scenario() -> None:
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["BENCH_POSTGRES_URL"] = POSTGRES_ADMIN_URL
    process = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "run.py"), "--smoke"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the harness then stops its servers and drops its database.
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"bench/run.py --smoke did not finish within {TIMEOUT} s:\n{output.decode()[-5000:]}")
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-5000:]
    rows = re.findall(r"^\| (S\d)\w* \|", text, flags=re.MULTILINE)
    for scenario in ("S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8"):
        assert scenario in rows, f"no table row for {scenario}:\n{text[-5000:]}"
