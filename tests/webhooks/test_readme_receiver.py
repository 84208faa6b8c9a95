"""The README's minimal receiver, run as written, verifies and dedupes real deliveries."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.runtime import Runtime
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import MerchantHandle, create_vietqr_payment, pay
from tests.webhooks.conftest import drain, subscribe
from tests.webhooks.receiver import bound_socket, serve

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_readme_receiver(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    dispatcher: Dispatcher,
    rt: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = re.search(r"```python\n(.*?)```", README.read_text().split("## Webhooks", 1)[1], re.S).group(1)  # type: ignore[union-attr]
    sock = bound_socket()
    port = sock.getsockname()[1]
    endpoint = await subscribe(client, merchant, f"http://127.0.0.1:{port}/gateway-webhooks")
    monkeypatch.setenv("GATEWAY_WEBHOOK_SECRET", endpoint["secret"])
    stored: set[str] = set()
    paid: list[str] = []
    namespace: dict[str, Any] = {
        "remember_once": lambda webhook_id: not (webhook_id in stored or stored.add(webhook_id)),
        "mark_bill_paid": paid.append,
    }
    exec(compile(source, "README.md", "exec"), namespace)  # noqa: S102 (our own README)

    async with serve(namespace["app"], sock):
        payment = await create_vietqr_payment(client, merchant, reference="EVN-QN-2026-11-0042")
        await pay(client, merchant, payment["id"])
        await drain(dispatcher)
        event_id = next(iter(stored))
        await client.post(f"/v1/events/{event_id}/redeliver", headers=merchant.headers)  # a duplicate
        await drain(dispatcher)
    assert paid == ["EVN-QN-2026-11-0042"]
    assert len(stored) == 2
    attempts = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert sorted(a["status_code"] for a in attempts) == [200, 204, 204]
