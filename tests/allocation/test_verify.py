"""`gateway ledger verify` proves customers' funds are all allocated, and fails loudly when a row says otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from gateway.runtime import Runtime
from tests.allocation.factories import execute, make_bill, make_customer
from tests.allocation.test_allocation import transfer
from tests.conftest import MerchantHandle
from tests.processes import clean_env

# Each corruption, its repair, and what `verify` must say of it.
CORRUPTIONS = [
    (
        "UPDATE bills SET amount_paid = amount_paid - 1",
        "UPDATE bills SET amount_paid = amount_paid + 1",
        "bill amount_paid vs its allocations",
    ),
    (
        "UPDATE customers SET balance = balance + 5",
        "UPDATE customers SET balance = balance - 5",
        "customer_credit account vs balances",
    ),
    (
        "UPDATE payments SET amount_received = amount_received + 7",
        "UPDATE payments SET amount_received = amount_received - 7",
        "customer's funds received vs allocations plus balance",
    ),
    (
        "UPDATE allocations SET amount = amount + 3 WHERE bill_id IS NULL",
        "UPDATE allocations SET amount = amount - 3 WHERE bill_id IS NULL",
        "customer balance vs its credit allocations",
    ),
]


async def test_verify_exits_non_zero_when_allocations_and_funds_disagree(
    client: httpx.AsyncClient, database_url: str, rt: Runtime, merchant: MerchantHandle, tmp_path: Path
) -> None:
    customer = await make_customer(rt, merchant)
    await make_bill(rt, merchant, customer, "HD-1", 100000)
    await transfer(client, merchant, customer, 130000)  # the bill, and 30,000 of credit
    env = clean_env(GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY="x" * 32, GATEWAY_LOG_LEVEL="WARNING")
    command = [sys.executable, "-m", "gateway.cli", "ledger", "verify"]
    clean = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert "fully allocated" in clean.stdout

    for corrupt, restore, says in CORRUPTIONS:  # one at a time, each repaired before the next
        await execute(rt, corrupt)
        broken = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        await execute(rt, restore)  # so the next one, and the suite's own check after the test, start clean
        assert broken.returncode == 1, (says, broken.stdout)
        assert f"ALLOCATION {says}" in broken.stderr, broken.stderr
