"""Migration 0009 backfills what the reports count for payments that succeeded before it: the moment of their
`payment.succeeded` event (not a later update, e.g. a refund's), its Vietnam day, and their customer's unit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.migrate import upgrade
from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES, _admin_execute, _postgres_available

ROWS = [
    "INSERT INTO merchants (id, name, category, created_at, updated_at) "
    "VALUES ('mch_1', 'EVN Hà Tĩnh', 'electricity', '2026-10-01 00:00:00', '2026-10-01 00:00:00')",
    "INSERT INTO customers (id, merchant_id, livemode, code, code_key, name, org_unit, metadata, payment_code, "
    "created_at, updated_at) VALUES ('cus_1', 'mch_1', false, 'PA01', 'PA01', 'Trần Thị Hoa', 'TH', '{}', 'PC1', "
    "'2026-10-01 00:00:00', '2026-10-01 00:00:00')",
    # Succeeded at 17:30 UTC on 31 October (00:30 on 1 November in Vietnam), refunded in part on 3 November.
    "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency, amount_received, amount_refunded, "
    "method, provider, reference, metadata, provider_data, customer_id, expires_at, created_at, updated_at) VALUES "
    "('pay_1', 'mch_1', false, 'succeeded', 100000, 'VND', 100000, 40000, 'vietqr', 'vietqr', 'HD-1', '{}', '{}', "
    "'cus_1', '2026-11-07 00:00:00', '2026-10-31 17:00:00', '2026-11-03 09:00:00')",
    "INSERT INTO events (id, merchant_id, livemode, type, payment_id, body, created_at) VALUES ('evt_1', 'mch_1', "
    "false, 'payment.succeeded', 'pay_1', '{}', '2026-10-31 17:30:00')",
    # Succeeded before events were kept for it: its last update stands in.
    "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency, amount_received, amount_refunded, "
    "method, provider, reference, metadata, provider_data, expires_at, created_at, updated_at) VALUES "
    "('pay_2', 'mch_1', false, 'succeeded', 5000, 'VND', 5000, 0, 'counter', 'counter', 'Q-2', '{}', '{}', "
    "'2026-11-07 00:00:00', '2026-11-02 03:00:00', '2026-11-02 03:00:00')",
    "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency, amount_received, amount_refunded, "
    "method, provider, reference, metadata, provider_data, expires_at, created_at, updated_at) VALUES "
    "('pay_3', 'mch_1', false, 'expired', 5000, 'VND', 0, 0, 'vietqr', 'vietqr', 'Q-3', '{}', '{}', "
    "'2026-11-07 00:00:00', '2026-11-02 03:00:00', '2026-11-07 00:00:00')",
]


async def _seed_and_read(url: str) -> list[tuple[str, str | None, str | None, str | None]]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for row in ROWS:
                await conn.execute(text(row))
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, CAST(succeeded_at AS VARCHAR(40)), CAST(succeeded_on AS VARCHAR(10)), org_unit "
                    "FROM payments ORDER BY id"
                )
            )
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


def _check(rows: list[tuple[str, str | None, str | None, str | None]]) -> None:
    assert [row[0] for row in rows] == ["pay_1", "pay_2", "pay_3"]
    (_, at1, on1, unit1), (_, at2, on2, unit2), (_, at3, on3, unit3) = rows
    assert at1 is not None and at1.startswith("2026-10-31 17:30:00") and (on1, unit1) == ("2026-11-01", "TH")
    assert at2 is not None and at2.startswith("2026-11-02 03:00:00") and (on2, unit2) == ("2026-11-02", None)
    assert (at3, on3, unit3) == (None, None, None)  # never succeeded: not counted


async def test_the_backfill_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(upgrade, url, "0008")
    _check(await _seed_and_read(url))


def test_the_backfill_on_postgresql() -> None:
    problem = _postgres_available()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required here but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    asyncio.run(_backfill_on_postgresql())


async def _backfill_on_postgresql() -> None:
    name = f"gateway_backfill_{uuid.uuid4().hex[:12]}"
    await _admin_execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, url, "0008")
        _check(await _seed_and_read(url))
    finally:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
