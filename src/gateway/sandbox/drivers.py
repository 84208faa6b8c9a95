"""How the test helpers play the payer at each provider's simulator (over HTTP, like a real payer's app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gateway.adapters.momo.simulator import pay_momo
from gateway.adapters.vnpay.simulator import pay_vnpay
from gateway.errors import SandboxFailed


async def _pay_vietqr(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    response = await http.post(
        f"{base_url}/vietqr/_sandbox/incoming-transfers",
        json={
            "to_bank_bin": provider_data["bank_bin"],
            "to_account_number": provider_data["account_number"],
            "amount": amount,
            "content": f"{provider_data['payment_code']} chuyen tien",
            "outcome": outcome,
        },
    )
    if response.status_code != 200 or response.json().get("notified_status") != 200:
        raise SandboxFailed(f"The sandbox bank could not deliver the transfer: {response.text[:200]}")


PayerDriver = Callable[[httpx.AsyncClient, str, dict[str, Any], str, int], Awaitable[None]]

DRIVERS: dict[str, PayerDriver] = {"vietqr": _pay_vietqr, "vnpay": pay_vnpay, "momo": pay_momo}
