"""Routing: merchant priorities and limits, failover only when nothing was created, a shared circuit breaker."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from gateway.adapters.base import ProviderContext, ProviderTechnicalError, StartPayment, StartResult
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.clock import ManualClock
from gateway.runtime import Runtime
from tests.conftest import ADMIN, MerchantHandle

BODY = {"amount": 150000, "method": "vietqr", "reference": "ROUTE-1", "confirm": True}


class FlakyBank(VietQRAdapter):
    """A second QR rail reached over the network, whose failures the test chooses."""

    capabilities = replace(VietQRAdapter.capabilities, offline_start=False)

    def __init__(self, name: str) -> None:
        self.name = name
        self.failure: ProviderTechnicalError | None = None
        self.calls = 0

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return await super().start_payment(ctx, payment)


@pytest.fixture
def banks(rt: Runtime) -> tuple[FlakyBank, FlakyBank]:
    # Subclasses of VietQRAdapter inherit its sandbox declaration, so test mode works for them unchanged.
    registered = []
    for name in ("alphabank", "betabank"):
        bank = FlakyBank(name)
        rt.registry.register(bank)
        registered.append(bank)
    return registered[0], registered[1]


async def _route(client: httpx.AsyncClient, merchant: MerchantHandle, provider: str, **settings: object) -> None:
    response = await client.put(f"/v1/merchants/{merchant.id}/providers/{provider}", json=settings, headers=ADMIN)
    assert response.status_code == 200, response.text
    for key, value in settings.items():
        assert response.json()[key] == value


async def _pay(client: httpx.AsyncClient, merchant: MerchantHandle, **body: object) -> httpx.Response:
    return await client.post("/v1/payments", json={**BODY, **body}, headers=merchant.idem())


async def test_priority_enabled_and_limits_choose_the_provider(
    client: httpx.AsyncClient, merchant: MerchantHandle, banks: tuple[FlakyBank, FlakyBank]
) -> None:
    await _route(client, merchant, "vietqr", priority=50)
    await _route(client, merchant, "alphabank", priority=10)
    await _route(client, merchant, "betabank", priority=20, max_amount=100000)
    assert (await _pay(client, merchant)).json()["provider"] == "alphabank"

    await _route(client, merchant, "alphabank", enabled=False)
    assert (await _pay(client, merchant, amount=90000)).json()["provider"] == "betabank"
    assert (await _pay(client, merchant, amount=150000)).json()["provider"] == "vietqr"  # above betabank's limit

    too_big = await _pay(client, merchant, amount=10**12, provider=None)
    assert too_big.status_code == 201  # vietqr takes any amount
    await _route(client, merchant, "vietqr", enabled=False)
    refused = await _pay(client, merchant, amount=150000)
    assert refused.status_code == 422 and refused.json()["code"] == "amount_out_of_range"


async def test_failover_when_the_first_provider_certainly_created_nothing(
    client: httpx.AsyncClient, merchant: MerchantHandle, banks: tuple[FlakyBank, FlakyBank]
) -> None:
    alpha, beta = banks
    await _route(client, merchant, "alphabank", priority=1)
    await _route(client, merchant, "betabank", priority=2)
    alpha.failure = ProviderTechnicalError("connection refused", certainly_not_created=True)
    created = await _pay(client, merchant)
    assert created.status_code == 201, created.text
    assert created.json()["provider"] == "betabank" and created.json()["status"] == "requires_action"
    assert (alpha.calls, beta.calls) == (1, 1)


async def test_no_failover_after_a_timeout_once_the_request_was_sent(
    client: httpx.AsyncClient, merchant: MerchantHandle, banks: tuple[FlakyBank, FlakyBank]
) -> None:
    alpha, beta = banks
    await _route(client, merchant, "alphabank", priority=1)
    await _route(client, merchant, "betabank", priority=2)
    alpha.failure = ProviderTechnicalError("read timeout")
    created = await _pay(client, merchant)
    assert created.status_code == 201
    assert created.json()["provider"] == "alphabank" and created.json()["status"] == "processing"
    assert beta.calls == 0


async def test_a_provider_named_by_the_merchant_is_never_swapped(
    client: httpx.AsyncClient, merchant: MerchantHandle, banks: tuple[FlakyBank, FlakyBank]
) -> None:
    alpha, beta = banks
    alpha.failure = ProviderTechnicalError("connection refused", certainly_not_created=True)
    headers = merchant.idem()
    refused = await client.post("/v1/payments", json={**BODY, "provider": "alphabank"}, headers=headers)
    assert refused.status_code == 503 and refused.json()["code"] == "provider_unavailable"
    assert beta.calls == 0
    [payment] = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert payment["status"] == "requires_confirmation"
    alpha.failure = None
    retried = await client.post("/v1/payments", json={**BODY, "provider": "alphabank"}, headers=headers)
    assert retried.status_code == 201 and retried.json()["id"] == payment["id"]
    assert retried.json()["status"] == "requires_action"


async def test_circuit_breaker_skips_a_failing_provider_for_a_cool_down(
    client: httpx.AsyncClient, merchant: MerchantHandle, banks: tuple[FlakyBank, FlakyBank], clock: ManualClock
) -> None:
    alpha, _beta = banks
    await _route(client, merchant, "alphabank", priority=1)
    await _route(client, merchant, "betabank", priority=2)
    alpha.failure = ProviderTechnicalError("connection refused", certainly_not_created=True)
    for _ in range(3):
        assert (await _pay(client, merchant)).json()["provider"] == "betabank"
    assert alpha.calls == 3
    # Open: alphabank is not even tried now.
    assert (await _pay(client, merchant)).json()["provider"] == "betabank"
    assert alpha.calls == 3
    clock.advance(61)  # cool-down over: tried again, and a success closes the breaker
    alpha.failure = None
    assert (await _pay(client, merchant)).json()["provider"] == "alphabank"
    assert (await _pay(client, merchant)).json()["provider"] == "alphabank"


async def test_routing_settings_are_validated_and_credentials_kept(
    client: httpx.AsyncClient, merchant: MerchantHandle
) -> None:
    bad = await client.put(f"/v1/merchants/{merchant.id}/providers/vietqr", json={"priority": -1}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "priority"]
    await client.put(
        f"/v1/merchants/{merchant.id}/providers/vietqr",
        json={"bank_bin": "970436", "account_number": "1017595600", "account_name": "BV", "webhook_secret": "s1"},
        headers=ADMIN,
    )
    routed = await client.put(f"/v1/merchants/{merchant.id}/providers/vietqr", json={"priority": 7}, headers=ADMIN)
    assert routed.json()["settings"]["account_number"] == "1017595600"
    assert routed.json()["secrets_set"] == ["webhook_secret"] and routed.json()["priority"] == 7
