"""CONTRACT §8: balanced, append-only, posted once per (kind, source); `gateway ledger verify` catches drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.ledger.service import (
    Direction,
    LedgerImbalance,
    LedgerKind,
    Posting,
    check_balanced,
    post_transaction,
    provider_clearing,
    receipt_postings,
)
from gateway.runtime import Runtime
from tests.conftest import MerchantHandle, create_vietqr_payment, pay
from tests.processes import clean_env


@pytest.mark.parametrize(
    "postings",
    [
        [Posting("a", Direction.debit, 10)],
        [Posting("a", Direction.debit, 10), Posting("b", Direction.credit, 9)],
        [Posting("a", Direction.debit, 0), Posting("b", Direction.credit, 0)],
        [Posting("a", Direction.debit, -5), Posting("b", Direction.credit, -5)],
    ],
)
def test_unbalanced_postings_are_refused(postings: list[Posting]) -> None:
    with pytest.raises(LedgerImbalance):
        check_balanced(postings)


async def test_a_source_posts_once(rt: Runtime, merchant: MerchantHandle) -> None:
    async with rt.db.transaction() as session:
        for _ in range(3):
            await post_transaction(
                session,
                rt,
                kind=LedgerKind.payment_received,
                source="vietqr:970436:FT1",
                merchant_id=merchant.id,
                livemode=False,
                currency="VND",
                postings=receipt_postings(provider_clearing("vietqr"), merchant.id, 1000),
            )
    async with rt.db.transaction() as session:
        count = (await session.execute(text("SELECT count(*) FROM ledger_transactions"))).scalar_one()
        entries = (await session.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
    assert (count, entries) == (1, 2)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = amount + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transactions SET kind = 'x'",
        "DELETE FROM ledger_transactions",
    ],
)
async def test_ledger_rows_are_append_only(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, statement: str
) -> None:
    payment = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, payment["id"])
    with pytest.raises(DBAPIError, match="append-only"):
        async with rt.db.transaction() as session:
            await session.execute(text(statement))


async def test_verify_command_exits_non_zero_on_an_imbalance(
    database_url: str, rt: Runtime, merchant: MerchantHandle, tmp_path: Path
) -> None:
    env = clean_env(GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY="x" * 32, GATEWAY_LOG_LEVEL="WARNING")
    command = [sys.executable, "-m", "gateway.cli", "ledger", "verify"]
    clean = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr
    async with rt.db.transaction() as session:  # what a buggy release or a manual edit could leave behind
        await session.execute(
            text(
                "INSERT INTO ledger_transactions (id, merchant_id, livemode, kind, source, currency, created_at) "
                "VALUES ('ltx_bad', :m, false, 'payment_received', 'manual:1', 'VND', :now)"
            ),
            {"m": merchant.id, "now": rt.clock.now()},
        )
        await session.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account, direction, amount, currency) "
                "VALUES ('ltx_bad', 'provider_clearing:vietqr', 'debit', 100, 'VND')"
            )
        )
    broken = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert "UNBALANCED ltx_bad" in broken.stderr
    async with rt.db.transaction() as session:  # balance it again, by a new entry, so the suite's check passes
        await session.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account, direction, amount, currency) "
                "VALUES ('ltx_bad', 'merchant_payable:x', 'credit', 100, 'VND')"
            )
        )
