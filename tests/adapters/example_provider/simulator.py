"""ExamplePay's side in test mode: a payer who completes an order, and the signed notification that follows."""

from __future__ import annotations

import itertools
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.responses import JSONResponse

from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext
from tests.adapters.example_provider.wire import PaymentNotification, sign


class Completion(BaseModel):
    outcome: Literal["success", "failure"] = "success"
    amount: int


def create_simulator(ctx: SimulatorContext) -> FastAPI:
    app = FastAPI(title="ExamplePay sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    numbers = itertools.count(1)

    @app.post("/_sandbox/orders/{order_id}/complete")
    async def complete(order_id: str, completion: Completion) -> JSONResponse:
        notification = PaymentNotification(
            merchant_code=ctx.settings["merchant_code"],
            order_id=order_id,
            transaction_id=f"EX{next(numbers):08d}",
            amount=completion.amount,
            status="paid" if completion.outcome == "success" else "declined",
        )
        notification.signature = sign(ctx.secrets["notification_key"], notification)
        response = await ctx.http.post(ctx.notification_url, json=notification.model_dump())
        return JSONResponse({"notified_status": response.status_code})

    return app


async def pay(http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int) -> None:
    response = await http.post(
        f"{base_url}/_sandbox/orders/{provider_data['order_id']}/complete", json={"outcome": outcome, "amount": amount}
    )
    if response.status_code != 200 or response.json().get("notified_status") != 200:
        raise SandboxPayerFailed(f"ExamplePay could not notify the gateway: {response.text[:200]}")
