"""A new provider is one folder: `tests/adapters/example_provider/` is a package installed the way a third party's
would be (a distribution declaring the `gateway.adapters` entry point), and without an edit to any gateway module
it routes, gets test mode (account, secrets, simulator at /sandbox/examplepay, payer) and is paid end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import ADMIN, BASE_URL, create_merchant, make_settings, pay

DIST = Path(__file__).parent / "example_provider" / "installed"


@pytest.fixture
async def gateway(
    database_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    monkeypatch.syspath_prepend(str(DIST))  # as if `pip install gateway-example-provider` had run
    application = create_app(make_settings(database_url), clock=clock, background=False)
    async with LifespanManager(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url=BASE_URL) as client:
            yield client, application.state.runtime


async def test_an_installed_provider_is_paid_end_to_end_in_test_mode(
    gateway: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, rt = gateway
    assert "examplepay" in rt.registry.names()
    merchant = await create_merchant(client)
    # Built-in providers take mobile money too: the merchant prefers the installed one.
    preferred = await client.put(
        f"/v1/merchants/{merchant.id}/providers/examplepay", json={"priority": 1}, headers=ADMIN
    )
    assert preferred.status_code == 200, preferred.text
    body = {"amount": 42000, "method": "mobile_money", "reference": "HD-0001", "confirm": True}
    created = await client.post("/v1/payments", json=body, headers=merchant.idem())
    assert created.status_code == 201, created.text
    payment = created.json()
    assert (payment["provider"], payment["status"]) == ("examplepay", "requires_action")
    assert payment["next_action"]["url"] == f"{BASE_URL}/sandbox/examplepay/pay/{payment['id']}"

    paid = await pay(client, merchant, payment["id"])
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["amount_received"]) == ("succeeded", 42000)

    events = (await client.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert "payment.succeeded" in [e["type"] for e in events]
    # Nothing else to implement: no refunds, so the gateway says so rather than calling a stub.
    refund = await client.post("/v1/refunds", json={"payment_id": payment["id"]}, headers=merchant.idem())
    assert (refund.status_code, refund.json()["code"]) == (422, "refund_not_supported")
