from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.runtime import Runtime
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import MerchantHandle
from tests.webhooks.receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def dispatcher(rt: Runtime) -> AsyncIterator[Dispatcher]:
    d = Dispatcher(rt, timeout=2.0)
    yield d
    await d.aclose()


async def subscribe(
    client: httpx.AsyncClient, merchant: MerchantHandle, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": url, "events": events or ["*"]}, headers=merchant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def drain(dispatcher: Dispatcher, rounds: int = 20) -> int:
    total = 0
    for _ in range(rounds):
        attempted = await dispatcher.run_once()
        total += attempted
        if attempted == 0:
            break
    return total
