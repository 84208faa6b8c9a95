"""`gateway partner-sim`: a bank's bill-payment system, over real HTTP, against a served gateway."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.allocation.factories import bill_row, make_bill, make_customer
from tests.collections.factories import BILLER, biller_with_partner
from tests.conftest import MerchantHandle
from tests.processes import free_port


@pytest.fixture
async def served(app: FastAPI, clock: ManualClock) -> AsyncIterator[str]:
    """The test app on a loopback port, its clock on the wall clock the command signs with."""
    clock.advance(time.time() - clock.now().timestamp())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_partner_sim_inquires_pays_asks_and_reverses(
    served: str, client: httpx.AsyncClient, rt: Runtime, merchant: MerchantHandle
) -> None:
    partner = await biller_with_partner(rt, merchant)
    customer = await make_customer(rt, merchant)
    bill = await make_bill(rt, merchant, customer, "HD-2026-11", 150000)
    signing = ["--url", served, "--partner-id", partner.id, "--secret", partner.secret]

    async def run(*args: str) -> tuple[int, object]:
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["partner-sim", *args, *signing])
        return result.exit_code, json.loads(result.stdout)

    code, inquiry = await run("inquiry", "--biller", BILLER, "--customer", "PA01000123456")
    assert code == 0
    assert inquiry["total_due"] == 150000  # type: ignore[index]

    code, collection = await run(
        "pay",
        "--biller",
        BILLER,
        "--customer",
        "PA01000123456",
        "--bill",
        "HD-2026-11",
        "--amount",
        "150000",
        "--transaction-id",
        "SIM-1",
        "--channel",
        "internet_banking",
    )
    assert code == 0, collection
    assert collection["allocations"] == [{"bill_number": "HD-2026-11", "amount": 150000}]  # type: ignore[index]
    assert await bill_row(rt, bill) == {"status": "paid", "amount_paid": 150000}

    code, status = await run("status", "--transaction-id", "SIM-1")
    assert (code, status) == (0, collection)
    code, refused = await run(
        "pay", "--biller", BILLER, "--customer", "PA01000123456", "--bill", "HD-2026-11", "--amount", "1000"
    )
    assert (code, refused["code"]) == (1, "bill_not_payable")  # type: ignore[index]
    code, reversed_ = await run("reverse", "--transaction-id", "SIM-1", "--reason", "test")
    assert (code, reversed_["status"]) == (0, "reversed")  # type: ignore[index]
    code, missing = await run("status", "--transaction-id", "SIM-404")
    assert (code, missing["code"]) == (1, "not_found")  # type: ignore[index]
