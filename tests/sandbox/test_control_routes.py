"""The simulators mounted on the gateway's port: payer pages are public; the `_sandbox/` control routes answer the
network only in development, and the fault switches exist only there; the test helpers work in every profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.adapters.emvco import parse_vietqr
from gateway.app import create_app
from gateway.clock import ManualClock
from tests.conftest import BASE_URL, MerchantHandle, create_merchant, create_vietqr_payment, make_settings, pay

CONTROL_ROUTES = [
    ("POST", "/sandbox/vietqr/_sandbox/incoming-transfers", {"to_bank_bin": "970436", "amount": 1, "content": "x"}),
    ("POST", "/sandbox/vnpay/_sandbox/pay", {"payment_url": "http://x/", "outcome": "success"}),
    ("GET", "/sandbox/vnpay/_sandbox/transactions/pay_x", None),
]
FAULT_SWITCHES = [
    ("POST", "/sandbox/vietqr/_sandbox/lose-next-notifications", {"count": 1}),
    ("POST", "/sandbox/vietqr/_sandbox/fail-next-transfers", {"count": 1}),
    ("POST", "/sandbox/vnpay/_sandbox/faults", {"fault": "ipn_lost", "count": 1}),
    ("POST", "/sandbox/momo/_sandbox/faults", {"fault": "ipn_lost", "count": 1}),
]


@pytest.fixture
async def production_client(database_url: str, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(make_settings(database_url, env="production"), clock=clock, background=False)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


async def call(client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    return await client.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body"), CONTROL_ROUTES + FAULT_SWITCHES)
async def test_control_routes_do_not_exist_for_the_network_in_production(
    production_client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await call(production_client, method, path, body)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(("method", "path", "body"), FAULT_SWITCHES)
async def test_fault_switches_answer_in_development(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert (await call(client, method, path, body)).status_code == 200


async def test_an_outsider_cannot_pay_a_test_payment_in_production(production_client: httpx.AsyncClient) -> None:
    merchant = await create_merchant(production_client)
    payment = await create_vietqr_payment(production_client, merchant)
    qr = parse_vietqr(payment["next_action"]["qr_payload"])
    transfer = {"to_bank_bin": qr.bank_bin, "to_account_number": qr.account_number, "amount": 150000}
    response = await production_client.post(
        "/sandbox/vietqr/_sandbox/incoming-transfers", json={**transfer, "content": qr.purpose}
    )
    assert response.status_code == 404
    assert (await production_client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()[
        "status"
    ] == "requires_action"


@pytest.mark.parametrize("method", ["vietqr", "card", "ewallet"])
async def test_the_test_helpers_still_pay_in_production(production_client: httpx.AsyncClient, method: str) -> None:
    merchant: MerchantHandle = await create_merchant(production_client)
    extra = {"return_url": "https://his.example.vn/paid"} if method == "card" else {}
    response = await production_client.post(
        "/v1/payments",
        json={"amount": 150000, "method": method, "reference": "HIS-1", "confirm": True, **extra},
        headers=merchant.idem(),
    )
    assert response.status_code == 201, response.text
    paid = await pay(production_client, merchant, response.json()["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "succeeded"


async def test_payer_pages_stay_public_in_production(production_client: httpx.AsyncClient) -> None:
    merchant = await create_merchant(production_client)
    response = await production_client.post(
        "/v1/payments",
        json={"amount": 150000, "method": "card", "reference": "HIS-2", "confirm": True},
        headers=merchant.idem(),
    )
    page = await production_client.get(response.json()["next_action"]["url"])
    assert page.status_code == 200 and "<form" in page.text
