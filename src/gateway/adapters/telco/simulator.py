"""A simulated telco mobile-money service (Viettel Money, VNPT Money, MobiFone Money) from the telco's side, one app
for every telco, configured by its `TelcoProfile` (PROVIDERS.md, "Telco mobile money").

- `GET {profile.payment_page_path}?<the signed redirect>`: the payment page (phone and PIN); it posts to
  `POST /_sandbox/checkout`, which verifies the order with the gateway (with its amount), debits the wallet, posts
  the signed result to the gateway and sends the browser to `return_url` (or `cancel_url`).
- `POST {profile.api_path}`: `TRANS_INQUIRY`, `REFUND_PAYMENT` and `USSD_PUSH` (sandbox_api.py).
- `POST /ussd`: the USSD menu a feature phone sees (ussd.py); `gateway phone` plays it in a terminal.
- `POST /_sandbox/orders/{order_id}/pay`: the test helpers' payer of a gateway-started order.
- `POST /_sandbox/faults` (`result_twice`, `result_lost`, `verify_timeout`), `GET|POST /_sandbox/wallets/{phone}`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from gateway.adapters.simulators import add_fault_route, invalid_request
from gateway.adapters.telco import wire
from gateway.adapters.telco.sandbox_api import answer_command
from gateway.adapters.telco.sandbox_telco import (
    FAULTS,
    GatewayCallFailed,
    OrderStatus,
    SandboxTelco,
    TelcoOrder,
    msisdn_of,
)
from gateway.adapters.telco.ussd import MAX_PIN_ATTEMPTS, UssdMenu, vnd
from gateway.adapters.telco.wire import TelcoProfile
from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext

MAX_TEXT = 2000


class UssdRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(min_length=1, max_length=100)
    service_code: str = Field(max_length=20)
    phone: str = Field(max_length=20)
    text: str = Field(default="", max_length=MAX_TEXT)


class PayerRequest(BaseModel):
    """What the test helpers' payer does with a gateway-started order."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal["success", "failure"] = "success"
    amount: StrictInt = Field(gt=0)
    billcode: str | None = None
    merchant_code: str | None = None
    msisdn: str | None = None


class WalletUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    balance: StrictInt = Field(ge=0)


def _form(body: bytes) -> dict[str, str]:
    # parsed here: an urlencoded form needs no multipart parser
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _with_query(url: str, fields: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(fields)}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
label{{display:block;margin-top:1rem}}input{{font-size:1.1rem;padding:.4rem;width:100%;box-sizing:border-box}}
button{{font-size:1.1rem;margin:1rem .5rem 0 0;padding:.5rem 1rem}}.error{{color:#a00;font-weight:bold}}
.amount{{font-size:1.5rem}}</style></head>
<body><main>{body}</main></body></html>"""
    return HTMLResponse(document, status_code=status)


class TelcoSimulator:
    def __init__(self, telco: SandboxTelco) -> None:
        self.telco = telco
        self.ussd = UssdMenu(telco)

    # --- the payment page --------------------------------------------------------------------------------

    def open_page(self, query: dict[str, str]) -> Response:
        telco, profile = self.telco, self.telco.profile
        title = f"{profile.display_name} (sandbox)"
        amount = query.get("trans_amount", "")
        if (
            not telco.authentic(query, wire.PAYMENT_REDIRECT_SIGNED)
            or query.get("command") != wire.PAYMENT_COMMAND
            or query.get("version") != wire.VERSION
        ):
            return _page(
                title,
                "<h1>Yêu cầu không hợp lệ</h1><p role='alert'>Chữ ký (check_sum) không đúng. "
                "<span lang='en'>Invalid request: the check_sum does not match.</span></p>",
                400,
            )
        if not amount.isdigit() or int(amount) <= 0 or not query.get("order_id") or not query.get("return_url"):
            return _page(title, "<h1>Yêu cầu không hợp lệ</h1><p lang='en'>Invalid order fields.</p>", 400)
        order = telco.open_order(
            query["order_id"],
            query.get("billcode", ""),
            query.get("merchant_code", ""),
            int(amount),
            return_url=query["return_url"],
            cancel_url=query.get("cancel_url", ""),
            msisdn=msisdn_of(query.get("login_msisdn", "")) or "",
        )
        if order.status is not OrderStatus.pending:
            return _page(title, "<h1>Đơn hàng đã kết thúc</h1><p lang='en'>This order is already finished.</p>", 409)
        return self.checkout_form(order, query.get("desc", ""))

    def checkout_form(self, order: TelcoOrder, description: str = "", error: str = "", status: int = 200) -> Response:
        profile = self.telco.profile
        action = html.escape(f"{self.telco.public_base_url}/_sandbox/checkout")
        phone = order.msisdn and "0" + order.msisdn[2:]
        alert = f'<p class="error" role="alert">{error}</p>' if error else ""
        body = f"""<h1>Thanh toán bằng {html.escape(profile.display_name)}
<span lang="en">(Pay with {html.escape(profile.display_name)})</span> — sandbox</h1>
<p>Đơn hàng <span lang="en">(Order)</span>: <code>{html.escape(order.order_id)}</code></p>
{f"<p>{html.escape(description)}</p>" if description else ""}
<p>Số tiền <span lang="en">(Amount)</span>: <strong class="amount">{html.escape(vnd(order.amount))}</strong></p>
{alert}
<form method="post" action="{action}">
<input type="hidden" name="order_id" value="{html.escape(order.order_id)}">
<label for="phone">Số điện thoại <span lang="en">(Phone number)</span></label>
<input id="phone" name="phone" type="tel" inputmode="numeric" autocomplete="tel" value="{html.escape(phone)}" required>
<label for="pin">Mã PIN <span lang="en">(PIN)</span></label>
<input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="6">
<button type="submit" name="action" value="pay">Thanh toán <span lang="en">(Pay)</span></button>
<button type="submit" name="action" value="cancel" formnovalidate>Hủy <span lang="en">(Cancel)</span></button>
</form>
<p><small>Sandbox: mỗi số điện thoại có 5.000.000 VND, mã PIN 1234.
<span lang="en">Every sandbox phone holds 5,000,000 VND; the PIN is 1234.</span></small></p>"""
        return _page(f"{profile.display_name} (sandbox)", body, status)

    async def checkout(self, form: dict[str, str]) -> Response:
        telco = self.telco
        order = telco.orders.get(form.get("order_id", ""))
        title = f"{telco.profile.display_name} (sandbox)"
        if order is None:
            return _page(title, "<h1>Không tìm thấy đơn hàng</h1><p lang='en'>Order not found.</p>", 404)
        if order.status is not OrderStatus.pending:
            return _page(title, "<h1>Đơn hàng đã kết thúc</h1><p lang='en'>This order is already finished.</p>", 409)
        msisdn = msisdn_of(form.get("phone", "")) or order.msisdn
        if form.get("action") == "cancel":
            await telco.fail(order, telco.code("payer_canceled"), msisdn)
            return self._back(order, order.cancel_url or order.return_url)
        if not msisdn:
            return self.checkout_form(order, error="Số điện thoại không hợp lệ (Invalid phone number).", status=400)
        if form.get("pin", "") != telco.wallet(msisdn).pin:
            order.pin_failures += 1
            if order.pin_failures >= MAX_PIN_ATTEMPTS:
                await telco.fail(order, telco.code("wrong_pin"), msisdn)
                return self._back(order, order.return_url)
            return self.checkout_form(order, error="Sai mã PIN (Wrong PIN).", status=400)
        try:
            await telco.verify(order, with_amount=True)
        except GatewayCallFailed:
            return _page(
                title,
                "<h1>Không thể thanh toán</h1><p role='alert'>Đơn vị thu không xác nhận đơn hàng. "
                "<span lang='en'>The biller did not confirm this order.</span></p>",
                502,
            )
        await telco.complete(order, msisdn)
        return self._back(order, order.return_url)

    def _back(self, order: TelcoOrder, url: str) -> Response:
        """The browser goes back to the merchant with the signed result, as the telco's redirect carries it."""
        return RedirectResponse(_with_query(url, self.telco.result_fields(order)), status_code=303)

    # --- the test helpers' payer -------------------------------------------------------------------------

    async def play_payer(self, order_id: str, request: PayerRequest) -> Response:
        telco = self.telco
        order = telco.open_order(
            order_id, request.billcode or order_id, request.merchant_code or telco.merchant_code, request.amount
        )
        if order.status is not OrderStatus.pending:
            return JSONResponse({"error": "order_already_completed"}, status_code=409)
        given = msisdn_of(request.msisdn) if request.msisdn else None
        msisdn = given or order.msisdn or telco.helper_payer(request.amount)
        order.amount = request.amount
        if request.outcome == "success":
            try:
                await telco.verify(order, with_amount=True)
            except GatewayCallFailed as exc:
                return JSONResponse({"error": "verify_refused", "error_code": exc.error_code, "detail": str(exc)}, 502)
            code, delivery = await telco.complete(order, msisdn)
        else:
            code = telco.code("insufficient_funds")
            delivery = await telco.fail(order, code, msisdn)
        return JSONResponse(
            {
                "order_id": order.order_id,
                "error_code": code,
                "vt_transaction_id": order.vt_transaction_id,
                "result_stored": delivery.stored,
                "result_lost": delivery.lost,
            }
        )

    # --- the app -----------------------------------------------------------------------------------------

    def build_app(self) -> FastAPI:
        telco, profile = self.telco, self.telco.profile
        app = FastAPI(title=f"Sandbox {profile.display_name}", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get(profile.payment_page_path)
        async def payment_page(request: Request) -> Response:
            return self.open_page(dict(request.query_params))

        @app.post("/_sandbox/checkout")
        async def checkout(request: Request) -> Response:
            return await self.checkout(_form(await request.body()))

        @app.post(profile.api_path)
        async def api(request: Request) -> JSONResponse:
            body = await request.body()
            fields: dict[str, Any]
            if request.headers.get("content-type", "").startswith("application/json"):
                try:
                    decoded = orjson.loads(body)
                except orjson.JSONDecodeError:
                    decoded = None
                fields = decoded if isinstance(decoded, dict) else {}
            else:
                fields = dict(_form(body))
            return JSONResponse(answer_command(telco, fields))

        @app.post("/ussd")
        async def ussd(request: Request) -> PlainTextResponse:
            try:
                wanted = UssdRequest.model_validate_json(await request.body())
            except ValidationError:
                return PlainTextResponse("END Yeu cau khong hop le.", status_code=400)
            screen = await self.ussd.answer(wanted.session_id, wanted.service_code, wanted.phone, wanted.text)
            return PlainTextResponse(screen)

        @app.post("/_sandbox/orders/{order_id}/pay")
        async def pay(order_id: str, request: Request) -> Response:
            try:
                wanted = PayerRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                return invalid_request(exc)
            return await self.play_payer(order_id, wanted)

        @app.get("/_sandbox/orders/{order_id}")
        async def order_state(order_id: str) -> JSONResponse:
            order = telco.orders.get(order_id)
            if order is None:
                return JSONResponse({"error": "order_not_found"}, status_code=404)
            return JSONResponse({**telco.result_fields(order), "status": order.status, "refunded": order.refunded})

        @app.get("/_sandbox/wallets/{phone}")
        async def wallet(phone: str) -> JSONResponse:
            msisdn = msisdn_of(phone)
            if msisdn is None:
                return JSONResponse({"error": "invalid_phone"}, status_code=422)
            held = telco.wallet(msisdn)
            spent = telco.spent_this_month(msisdn)
            return JSONResponse({"msisdn": msisdn, "balance": held.balance, "spent_this_month": spent})

        @app.post("/_sandbox/wallets/{phone}")
        async def set_wallet(phone: str, request: Request) -> JSONResponse:
            msisdn = msisdn_of(phone)
            if msisdn is None:
                return JSONResponse({"error": "invalid_phone"}, status_code=422)
            try:
                update = WalletUpdate.model_validate_json(await request.body())
            except ValidationError as exc:
                return invalid_request(exc)
            telco.wallet(msisdn).balance = update.balance
            return JSONResponse({"msisdn": msisdn, "balance": update.balance})

        add_fault_route(app, telco.faults, FAULTS)

        return app


def simulator_factory(profile: TelcoProfile) -> Callable[[SimulatorContext], FastAPI]:
    def create_simulator(ctx: SimulatorContext) -> FastAPI:
        simulator = TelcoSimulator(SandboxTelco.from_context(profile, ctx))
        app = simulator.build_app()
        app.state.simulator = simulator
        app.state.telco = simulator.telco
        return app

    return create_simulator


async def pay_telco(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    """The test helper's payer: the subscriber pays (or cannot pay) a gateway-started order; the telco then posts
    its result. provider_data: `order_id`, and when the adapter keeps them `billcode` (else the order id),
    `merchant_code` (else the sandbox account's) and `msisdn` (a pushed phone; else a fresh sandbox subscriber)."""
    order_id = provider_data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise SandboxPayerFailed("The payment carries no telco order_id to pay.")
    body: dict[str, Any] = {"outcome": "success" if outcome == "success" else "failure", "amount": amount}
    for name in ("billcode", "merchant_code", "msisdn"):
        value = provider_data.get(name)
        if isinstance(value, str) and value:
            body[name] = value
    response = await http.post(f"{base_url}/_sandbox/orders/{quote(order_id, safe='')}/pay", json=body)
    if response.status_code != 200:
        raise SandboxPayerFailed(f"The telco sandbox could not pay the order: {response.text[:200]}")
    result = response.json()
    if not result.get("result_stored") and not result.get("result_lost"):
        raise SandboxPayerFailed("The telco sandbox's result was not stored by the gateway (it will retry).")
