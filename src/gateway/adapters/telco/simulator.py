"""The sandbox telco (to be built): see the issue-12 helper's task. Placeholder so the adapter can declare it."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp

from gateway.adapters.telco.wire import TelcoProfile
from gateway.adapters.testmode import SimulatorContext


def simulator_factory(profile: TelcoProfile) -> Any:
    def create_simulator(ctx: SimulatorContext) -> ASGIApp:
        raise NotImplementedError

    return create_simulator


async def pay_telco(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    raise NotImplementedError
