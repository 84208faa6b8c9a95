"""Twenty payers pay one customer at once: no bill takes more than it owes, and no đồng is lost."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date

import httpx

from gateway.runtime import Runtime
from tests.allocation.factories import balance_of, make_bill, make_customer
from tests.allocation.test_allocation import transfer
from tests.conftest import MerchantHandle, sql


async def test_twenty_simultaneous_payments_to_one_customer_never_over_allocate(
    client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    customer = await make_customer(rt, merchant)
    bills = [
        await make_bill(rt, merchant, customer, f"HD-{month:02d}", 100000, due=date(2026, month, 15))
        for month in range(1, 6)
    ]
    # Ten static-QR transfers and ten cashier payments for the first bill, all at once.
    results = await asyncio.gather(
        *(transfer(client, merchant, customer, 30000) for _ in range(10)),
        *(cashier(client, merchant, bills[0]) for _ in range(10)),
    )
    transfers, counters = results[:10], results[10:]
    assert all(isinstance(t, dict) and t["status"] == "succeeded" for t in transfers)
    assert all(isinstance(c, httpx.Response) for c in counters)
    # The cashier's rule check and the money are one transaction under the customer's lock: once the first bill
    # has less than 30,000 left, a cashier asking for 30,000 is refused (partial rule), once paid, not payable.
    taken = [c for c in counters if c.status_code == 201]
    assert all(c.json()["status"] == "succeeded" for c in taken)
    refused = {c.json()["code"] for c in counters if c.status_code != 201}
    assert refused <= {"amount_not_allowed", "bill_not_payable"}, refused
    arrived = 300000 + 30000 * len(taken)
    rows = await sql(rt, "SELECT id, status, amount_paid, amount FROM bills ORDER BY due_date")
    assert all(r["amount_paid"] <= r["amount"] for r in rows), rows
    allocated = await sql(
        rt, "SELECT bill_id, SUM(amount) AS s FROM allocations WHERE bill_id IS NOT NULL GROUP BY bill_id"
    )
    assert {r["bill_id"]: r["s"] for r in allocated} == {r["id"]: r["amount_paid"] for r in rows if r["amount_paid"]}
    # Every đồng that arrived is on a bill or in the balance, and the transfers paid the bills oldest due first.
    assert sum(r["amount_paid"] for r in rows) + await balance_of(rt, customer) == arrived
    paid = [r["amount_paid"] for r in rows]
    assert all(a >= b for a, b in itertools.pairwise(paid)), rows
    assert sum(paid) >= 300000


async def cashier(client: httpx.AsyncClient, merchant: MerchantHandle, bill_id: str) -> httpx.Response:
    body = {
        "amount": 30000,
        "method": "counter",
        "bill_id": bill_id,
        "counter": {"instrument": "cash"},
        "confirm": True,
    }
    return await client.post("/v1/payments", json=body, headers=merchant.idem())
