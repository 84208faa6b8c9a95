"""A small fake telco for the adapter's tests, speaking the wire the adapter assumes (wire.py): the payment page, the
API commands (USSD_PUSH, TRANS_INQUIRY, REFUND_PAYMENT) and the signed RESULT it posts to the gateway.

Mounted where the sandbox simulator would be (`install_fake_telco`), so test-mode payments reach it in-process;
the real sandbox telco (adapters/telco/simulator.py) is another helper's work.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.adapters.telco import adapter as telco_adapter
from gateway.adapters.telco import wire
from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext

_transactions = itertools.count(1)


@dataclass
class Order:
    order_id: str
    merchant_code: str
    billcode: str
    amount: int
    status: str = "open"  # open | paid | failed
    code: str = ""
    vt_transaction_id: str = ""
    msisdn: str = "84987654321"


@dataclass
class FakeTelco:
    profile: wire.TelcoProfile
    ctx: SimulatorContext
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, dict[str, str]] = field(default_factory=dict)
    received: list[dict[str, str]] = field(default_factory=list)  # every API command, as sent
    # Force the next answer of a command: cmd -> error_code.
    answer_codes: dict[str, str] = field(default_factory=dict)
    tamper_answers: bool = False

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route(self.profile.payment_page_path, self.page, methods=["GET"]),
                Route(self.profile.api_path, self.api, methods=["POST"]),
                Route("/_sandbox/pay", self.pay_route, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    @property
    def keys(self) -> tuple[str, str]:
        return self.ctx.secrets["hash_key"], self.ctx.secrets["access_code"]

    def sign(self, fields: dict[str, str], names: tuple[str, ...]) -> str:
        hash_key, access_code = self.keys
        return wire.sign(hash_key, access_code, fields, names, self.profile.encoding)

    def signed_by_gateway(self, fields: dict[str, str], names: tuple[str, ...]) -> bool:
        hash_key, access_code = self.keys
        return wire.check_sum_matches(hash_key, access_code, fields, names, self.profile.encoding)

    def answer(self, fields: dict[str, str], names: tuple[str, ...]) -> JSONResponse:
        body = {**fields, "check_sum": self.sign(fields, names)}
        if self.tamper_answers:
            body["check_sum"] = "AAAA" + body["check_sum"][4:]
        return JSONResponse(body)

    # --- the telco's side ----------------------------------------------------------------------------

    async def page(self, request: Request) -> PlainTextResponse:
        fields = dict(request.query_params)
        if not self.signed_by_gateway(fields, wire.PAYMENT_REDIRECT_SIGNED):
            return PlainTextResponse("bad check_sum", status_code=400)
        self.orders.setdefault(
            fields["order_id"],
            Order(fields["order_id"], fields["merchant_code"], fields["billcode"], int(fields["trans_amount"])),
        )
        return PlainTextResponse(f"Pay {fields['trans_amount']} VND")

    async def api(self, request: Request) -> JSONResponse:
        fields = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.received.append(fields)
        cmd = fields.get("cmd", "")
        names = {
            wire.PUSH_COMMAND: wire.PUSH_SIGNED,
            wire.INQUIRY_COMMAND: wire.INQUIRY_SIGNED,
            wire.REFUND_COMMAND: wire.REFUND_SIGNED,
        }.get(cmd)
        base = {"merchant_code": fields.get("merchant_code", ""), "order_id": fields.get("order_id", "")}
        if names is None or not self.signed_by_gateway(fields, names):
            bad = next(iter(self.profile.request_error_codes))
            return self.answer({**base, "error_code": bad}, wire.PUSH_ANSWER_SIGNED)
        forced = self.answer_codes.pop(cmd, None)
        if cmd == wire.PUSH_COMMAND:
            code = forced or wire.SUCCESS
            if code == wire.SUCCESS:
                self.orders[fields["order_id"]] = Order(
                    fields["order_id"],
                    fields["merchant_code"],
                    fields["billcode"],
                    int(fields["trans_amount"]),
                    msisdn=fields["msisdn"],
                )
            return self.answer({**base, "error_code": code}, wire.PUSH_ANSWER_SIGNED)
        if cmd == wire.INQUIRY_COMMAND:
            return self.inquiry(base, forced)
        return self.refund(fields, base, forced)

    def inquiry(self, base: dict[str, str], forced: str | None) -> JSONResponse:
        order = self.orders.get(base["order_id"])
        refund = self.refunds.get(base["order_id"])
        if forced is not None:
            code, status, amount, transaction = forced, wire.NOT_PAID, "0", ""
        elif refund is not None:
            code, status, amount, transaction = wire.SUCCESS, wire.PAID, refund["trans_amount"], refund["id"]
        elif order is None:
            code, status, amount, transaction = next(iter(self.profile.unknown_order_codes)), wire.NOT_PAID, "0", ""
        elif order.status == "paid":
            code, status, amount, transaction = wire.SUCCESS, wire.PAID, str(order.amount), order.vt_transaction_id
        elif order.status == "failed":
            code, status, amount, transaction = order.code, wire.NOT_PAID, str(order.amount), order.vt_transaction_id
        else:
            code, status, amount, transaction = next(iter(self.profile.pending_codes)), wire.NOT_PAID, "0", ""
        fields = {
            **base,
            "error_code": code,
            "payment_status": status,
            "trans_amount": amount,
            "vt_transaction_id": transaction,
        }
        return self.answer(fields, wire.INQUIRY_ANSWER_SIGNED)

    def refund(self, fields: dict[str, str], base: dict[str, str], forced: str | None) -> JSONResponse:
        original = self.orders.get(fields["originalRequestId"])
        code = forced or (wire.SUCCESS if original is not None and original.status == "paid" else "99")
        refund_id = ""
        if code == wire.SUCCESS:
            refund_id = f"RF{next(_transactions):09d}"
            self.refunds[fields["order_id"]] = {**fields, "id": refund_id}
        return self.answer({**base, "error_code": code, "refund_transaction_id": refund_id}, wire.REFUND_ANSWER_SIGNED)

    # --- playing the payer ---------------------------------------------------------------------------

    def result_fields(self, order: Order, amount: int | None = None) -> dict[str, str]:
        fields = {
            "billcode": order.billcode,
            "cust_msisdn": order.msisdn,
            "error_code": wire.SUCCESS if order.status == "paid" else order.code,
            "merchant_code": order.merchant_code,
            "order_id": order.order_id,
            "payment_status": wire.PAID if order.status == "paid" else wire.NOT_PAID,
            "trans_amount": str(order.amount if amount is None else amount),
            "vt_transaction_id": order.vt_transaction_id,
        }
        fields["check_sum"] = self.sign(fields, wire.RESULT_SIGNED)
        return fields

    def settle(self, order_id: str, outcome: str, code: str | None = None) -> Order:
        order = self.orders[order_id]
        order.vt_transaction_id = order.vt_transaction_id or f"VT{next(_transactions):09d}"
        if outcome == "success":
            order.status, order.code = "paid", wire.SUCCESS
        else:
            order.status, order.code = "failed", code or next(iter(self.profile.failure_codes))
        return order

    async def notify(self, order: Order, amount: int | None = None) -> httpx.Response:
        return await self.ctx.http.post(self.ctx.notification_url, data=self.result_fields(order, amount))

    async def pay_route(self, request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        order_id = body["order_id"]
        if order_id not in self.orders:
            return JSONResponse({"error": "no such order"}, status_code=404)
        order = self.settle(order_id, body["outcome"], body.get("code"))
        answer = await self.notify(order) if body.get("notify", True) else None
        return JSONResponse({"order_id": order_id, "answer": answer.json() if answer is not None else None})


def fake_simulator_factory(profile: wire.TelcoProfile) -> Callable[[SimulatorContext], ASGIApp]:
    def create(ctx: SimulatorContext) -> ASGIApp:
        return FakeTelco(profile, ctx)

    return create


async def pay_fake_telco(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    response = await http.post(
        f"{base_url}/_sandbox/pay", json={"order_id": provider_data["order_id"], "outcome": outcome}
    )
    if response.status_code != 200:
        raise SandboxPayerFailed(f"the fake telco answered {response.status_code}: {response.text[:200]}")


def install_fake_telco(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the app is built: the telco adapters declare the fake as their sandbox (simulator and payer)."""
    monkeypatch.setattr(telco_adapter, "simulator_factory", fake_simulator_factory)
    monkeypatch.setattr(telco_adapter, "pay_telco", pay_fake_telco)
