"""Receipt numbers: sequential per merchant, template, series and Vietnam calendar year — never a gap, never a
duplicate, even when several server processes issue receipts at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.receipts.repository import take_next_number
from gateway.runtime import Runtime
from tests.conftest import BASE_URL, MerchantHandle, create_vietqr_payment, make_settings, paid_payment, pay, sql
from tests.receipts.support import enable_receipts, receipts_of, the_receipt


def move_to(clock: ManualClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


async def test_numbers_restart_on_the_first_of_january_in_vietnam_time(
    client: httpx.AsyncClient, merchant: MerchantHandle, clock: ManualClock
) -> None:
    await enable_receipts(client, merchant)
    november = await paid_payment(client, merchant)
    move_to(clock, datetime(2026, 12, 31, 16, 30, tzinfo=UTC))  # 31 December, 23:30 in Vietnam
    new_years_eve = await paid_payment(client, merchant)
    move_to(clock, datetime(2026, 12, 31, 17, 10, tzinfo=UTC))  # 1 January 2027, 00:10 in Vietnam (UTC: still 2026)
    new_year = await paid_payment(client, merchant)
    clock.advance(60)
    next_one = await paid_payment(client, merchant)

    numbered = [
        (r["issued_at"], r["number"])
        for r in [await the_receipt(client, merchant, p["id"]) for p in (november, new_years_eve, new_year, next_one)]
    ]
    assert numbered == [
        ("2026-11-22T10:00:00Z", "00000001"),
        ("2026-12-31T16:30:00Z", "00000002"),
        ("2026-12-31T17:10:00Z", "00000001"),
        ("2026-12-31T17:11:00Z", "00000002"),
    ]


async def test_concurrent_payments_on_two_server_processes_get_every_number_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, database_url: str, clock: ManualClock
) -> None:
    await enable_receipts(client, merchant)
    payments = [await create_vietqr_payment(client, merchant) for _ in range(20)]
    # A second process on the same database: its own runtime, engine, pool and in-process sandbox.
    other_app = create_app(make_settings(database_url), clock=clock, background=False)
    async with (
        LifespanManager(other_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url=BASE_URL) as other,
    ):
        answers = await asyncio.gather(
            *(pay((client, other)[i % 2], merchant, p["id"]) for i, p in enumerate(payments))
        )

    assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers if a.status_code != 200]
    receipts = await receipts_of(client, merchant)
    assert sorted(r["number"] for r in receipts) == [f"{n:08d}" for n in range(1, 21)]
    assert sorted(r["payment_id"] for r in receipts) == sorted(p["id"] for p in payments)
    counters = await sql(rt, "SELECT year, last_number FROM receipt_counters")
    assert counters == [{"year": 2026, "last_number": 20}]


async def test_a_rolled_back_transaction_gives_its_number_back(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime
) -> None:
    """The number is taken in the paying transaction: if that transaction fails, the next payment gets it."""
    await enable_receipts(client, merchant)
    first = await paid_payment(client, merchant)
    with pytest.raises(RuntimeError):
        async with rt.db.transaction() as session:
            taken = await take_next_number(
                session, merchant_id=merchant.id, livemode=False, template="01BLP0-001", series="AA-26E", year=2026
            )
            assert taken == 2
            raise RuntimeError("the paying transaction failed after taking its number")
    second = await paid_payment(client, merchant)

    assert [(await the_receipt(client, merchant, p["id"]))["number"] for p in (first, second)] == [
        "00000001",
        "00000002",
    ]
