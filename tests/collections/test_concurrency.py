"""Partners paying at once: no bill takes more than it owes, and one transaction id is one collection."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date

import httpx

from gateway.runtime import Runtime
from tests.allocation.factories import balance_of, make_bill, make_customer
from tests.collections.factories import BILLER, biller_with_partner
from tests.conftest import MerchantHandle, sql


async def test_twenty_simultaneous_collections_for_one_customer_never_over_allocate(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    customer = await make_customer(rt, merchant)
    for month in range(1, 6):
        await make_bill(rt, merchant, customer, f"HD-{month:02d}", 100000, due=date(2026, month, 15))
    # Ten by customer code, ten naming the first bill for 30,000 (partial rule) — all at once.
    results = await asyncio.gather(
        *(partner.pay(BILLER, "PA01000123456", 30000, transaction_id=f"CODE-{i}") for i in range(10)),
        *(
            partner.pay(BILLER, "PA01000123456", 30000, transaction_id=f"BILL-{i}", bill_numbers=["HD-01"])
            for i in range(10)
        ),
    )
    by_code, by_bill = results[:10], results[10:]
    assert all(r.status_code == 201 for r in by_code), [r.text for r in by_code]
    taken = [r for r in by_bill if r.status_code == 201]
    refused = {r.json()["code"] for r in by_bill if r.status_code != 201}
    assert refused <= {"amount_not_allowed", "bill_not_payable"}, refused
    arrived = 30000 * (10 + len(taken))
    rows = await sql(rt, "SELECT id, amount_paid, amount FROM bills ORDER BY due_date")
    assert all(r["amount_paid"] <= r["amount"] for r in rows), rows
    assert sum(r["amount_paid"] for r in rows) + await balance_of(rt, customer) == arrived
    paid = [r["amount_paid"] for r in rows]
    assert all(a >= b for a, b in itertools.pairwise(paid)), rows
    # Each collection says what it did, and together they say what the bills hold.
    said = sum(a["amount"] for r in (*by_code, *taken) for a in r.json()["allocations"])
    added = sum(r.json()["balance_added"] for r in (*by_code, *taken))
    assert (said, added) == (sum(paid), await balance_of(rt, customer))
    assert (await sql(rt, "SELECT COUNT(*) AS n FROM collections"))[0]["n"] == 10 + len(taken)


async def test_the_same_transaction_sent_five_times_at_once_is_one_collection(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = (await biller_with_partner(rt, merchant)).client(client, rt)
    await make_customer(rt, merchant)
    await make_customer(rt, merchant, code="PA-OTHER")
    paid_at = "2026-11-22T09:59:00Z"
    same = [partner.pay(BILLER, "PA01000123456", 40000, transaction_id="DUP-1", paid_at=paid_at) for _ in range(5)]
    # The same id for another customer at the same moment: a different body, whichever wins.
    other = partner.pay(BILLER, "PA-OTHER", 40000, transaction_id="DUP-1", paid_at=paid_at)
    *answers, clash = await asyncio.gather(*same, other)
    collections = await sql(rt, "SELECT id, customer_id FROM collections")
    assert len(collections) == 1
    assert (await sql(rt, "SELECT COUNT(*) AS n FROM payments"))[0]["n"] == 1
    if clash.status_code == 201:  # the other customer's request won: every identical one is a duplicate
        assert {a.status_code for a in answers} == {409}
    else:
        assert clash.status_code == 409 and clash.json()["code"] == "duplicate_transaction"
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
        assert len({a.json()["id"] for a in answers}) == 1
