"""A simulated MoMo e-wallet speaking API v2 from MoMo's side (PROVIDERS.md, "MoMo e-wallet API v2").

It verifies the signature of every request it receives and signs every result it sends (IPN and browser
return) with `momo_signature`, keeps orders and refunds in memory, plays the payer (a small payment page, or
`POST /_sandbox/orders/{orderId}/complete` for the test helpers) and injects deliberate faults on demand.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson
import structlog
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from gateway.adapters.momo.wire import (
    CREATE_SIGNED,
    QUERY_SIGNED,
    REFUND_SIGNED,
    REQUEST_TYPE,
    RESULT_SIGNED,
    sign_fields,
    signature_matches,
)
from gateway.adapters.simulators import add_fault_route
from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext
from gateway.clock import Clock

log = structlog.get_logger("gateway.sandbox.momo")

MIN_AMOUNT, MAX_AMOUNT = 1000, 50_000_000
ORDER_ID = re.compile(r"^[0-9a-zA-Z]([-_.]*[0-9a-zA-Z]+)*$")
FAULTS = frozenset({"create_slow", "create_503", "create_500_after_create", "ipn_twice", "ipn_lost", "api_5xx"})
SLOW_CREATE_SECONDS = 2.0

MESSAGES = {
    0: "Thành công.",
    13: "Xác thực doanh nghiệp thất bại.",
    20: "Yêu cầu sai định dạng.",
    21: "Số tiền giao dịch không hợp lệ.",
    22: "Số tiền giao dịch nằm ngoài khoảng cho phép.",
    41: "Trùng orderId.",
    42: "orderId không tồn tại.",
    1000: "Giao dịch đã được khởi tạo, chờ người dùng xác nhận thanh toán.",
    1006: "Giao dịch bị từ chối bởi người dùng.",
    1080: "Giao dịch hoàn tiền bị từ chối: không tìm thấy giao dịch gốc.",
    1081: "Giao dịch hoàn tiền bị từ chối: đã hoàn tiền hoặc vượt quá số tiền thanh toán.",
}


@dataclass
class Order:
    order_id: str
    request_id: str
    amount: int
    order_info: str
    redirect_url: str
    ipn_url: str
    extra_data: str
    result_code: int = 1000
    trans_id: int = 0
    pay_type: str = ""
    refunded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)


class Completion(BaseModel):
    """What the payer does in the MoMo app (the test helpers' entry point)."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal["success", "failure"] = "success"
    amount: StrictInt | None = Field(default=None, gt=0, description="Report this amount (a wrong-amount IPN)")


@dataclass
class SandboxWallet:
    partner_code: str
    access_key: str
    secret_key: str
    public_base_url: str
    http: httpx.AsyncClient
    clock: Clock
    orders: dict[str, Order] = field(default_factory=dict)
    refunds_by_request: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)
    _trans_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(4_088_000_001))

    # --- helpers ---------------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def _take_fault(self, name: str) -> bool:
        if self.faults[name] > 0:
            self.faults[name] -= 1
            return True
        return False

    def _answer(self, code: int, **fields: Any) -> JSONResponse:
        return JSONResponse(
            {
                "partnerCode": self.partner_code,
                **fields,
                "resultCode": code,
                "message": MESSAGES.get(code, "Lỗi."),
                "responseTime": self._now_ms(),
            },
            # MoMo answers a refused request (codes 1-99) with HTTP 400, everything else with 200.
            status_code=400 if 0 < code < 1000 else 200,
        )

    def _authentic(self, body: dict[str, Any], names: tuple[str, ...]) -> bool:
        return body.get("partnerCode") == self.partner_code and signature_matches(
            self.secret_key, self.access_key, body, names
        )

    def result_fields(self, order: Order, amount: int | None = None) -> dict[str, Any]:
        """The signed result MoMo posts as IPN and appends to the browser return."""
        fields: dict[str, Any] = {
            "partnerCode": self.partner_code,
            "orderId": order.order_id,
            "requestId": order.request_id,
            "amount": order.amount if amount is None else amount,
            "orderInfo": order.order_info,
            "orderType": "momo_wallet",
            "transId": order.trans_id,
            "resultCode": order.result_code,
            "message": MESSAGES.get(order.result_code, ""),
            "payType": order.pay_type,
            "responseTime": self._now_ms(),
            "extraData": order.extra_data,
        }
        fields["signature"] = sign_fields(self.secret_key, self.access_key, fields, RESULT_SIGNED)
        return fields

    def return_url(self, order: Order, fields: dict[str, Any]) -> str:
        separator = "&" if urlsplit(order.redirect_url).query else "?"
        return f"{order.redirect_url}{separator}{urlencode({k: str(v) for k, v in fields.items()})}"

    async def send_ipn(self, order: Order, fields: dict[str, Any]) -> int | None:
        """POST the IPN; MoMo tries again while the merchant answers 5xx or cannot be reached."""
        body = orjson.dumps(fields)
        status: int | None = None
        for _ in range(3):
            try:
                response = await self.http.post(
                    order.ipn_url, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                log.warning("sandbox_momo.ipn_failed", error=type(exc).__name__)
                continue
            status = response.status_code
            if status < 500:
                break
        return status

    async def complete(self, order: Order, completion: Completion) -> dict[str, Any]:
        order.trans_id = next(self._trans_ids)
        order.pay_type = "qr"
        order.result_code = 0 if completion.outcome == "success" else 1006
        fields = self.result_fields(order, completion.amount)
        lost = self._take_fault("ipn_lost")
        status: int | None = None
        if not lost:
            status = await self.send_ipn(order, fields)
            if self._take_fault("ipn_twice"):
                status = await self.send_ipn(order, fields)
        return {
            "transId": order.trans_id,
            "resultCode": order.result_code,
            "ipn_status": status,
            "ipn_lost": lost,
            "return_url": self.return_url(order, fields),
        }

    # --- the API ---------------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> Response:
        if self._take_fault("create_503"):  # the front door refuses before MoMo sees anything
            return PlainTextResponse("503 Service Temporarily Unavailable", status_code=503)
        if not self._authentic(body, CREATE_SIGNED):
            return self._answer(13, orderId=body.get("orderId"), requestId=body.get("requestId"))
        order_id, amount = body.get("orderId"), body.get("amount")
        ids = {"orderId": order_id, "requestId": body.get("requestId")}
        if (
            not isinstance(order_id, str)
            or not ORDER_ID.match(order_id)
            or body.get("requestType") != REQUEST_TYPE
            or not all(isinstance(body.get(k), str) for k in ("orderInfo", "redirectUrl", "ipnUrl", "requestId"))
        ):
            return self._answer(20, **ids)
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return self._answer(21, **ids)
        if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            return self._answer(22, **ids, amount=amount)
        if order_id in self.orders:
            return self._answer(41, **ids, amount=amount)
        order = Order(
            order_id=order_id,
            request_id=str(body["requestId"]),
            amount=amount,
            order_info=str(body["orderInfo"]),
            redirect_url=str(body["redirectUrl"]),
            ipn_url=str(body["ipnUrl"]),
            extra_data=str(body.get("extraData") or ""),
        )
        self.orders[order_id] = order
        if self._take_fault("create_500_after_create"):
            return PlainTextResponse("Internal Server Error", status_code=500)
        if self._take_fault("create_slow"):  # the order exists; only the answer is late
            await asyncio.sleep(SLOW_CREATE_SECONDS)
        return self._answer(
            0,
            **ids,
            amount=amount,
            payUrl=f"{self.public_base_url}/pay/{order_id}",
            deeplink=f"momo://app?action=payWithApp&orderId={order_id}",
            qrCodeUrl=f"momo://qr/{order_id}",
        )

    def query(self, body: dict[str, Any]) -> Response:
        ids = {"orderId": body.get("orderId"), "requestId": body.get("requestId")}
        if not self._authentic(body, QUERY_SIGNED):
            return self._answer(13, **ids)
        order = self.orders.get(str(body.get("orderId")))
        if order is None:
            return self._answer(42, **ids)
        return self._answer(
            order.result_code,
            **ids,
            extraData=order.extra_data,
            amount=order.amount,
            transId=order.trans_id,
            payType=order.pay_type,
            refundTrans=order.refunds,
        )

    def refund(self, body: dict[str, Any]) -> Response:
        ids = {"orderId": body.get("orderId"), "requestId": body.get("requestId")}
        if not self._authentic(body, REFUND_SIGNED):
            return self._answer(13, **ids)
        request_id, amount = str(body.get("requestId")), body.get("amount")
        previous = self.refunds_by_request.get(request_id)
        if previous is not None:  # idempotent on requestId
            return self._answer(previous["resultCode"], **ids, amount=previous["amount"], transId=previous["transId"])
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return self._answer(21, **ids)
        if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
            return self._answer(22, **ids, amount=amount)
        if str(body.get("orderId")) in self.orders:  # a refund takes a new orderId
            return self._answer(41, **ids, amount=amount)
        original = next(
            (o for o in self.orders.values() if o.trans_id == body.get("transId") and o.result_code == 0), None
        )
        if original is None:
            return self._answer(1080, **ids, amount=amount, transId=body.get("transId"))
        if original.refunded + amount > original.amount:
            return self._answer(1081, **ids, amount=amount, transId=body.get("transId"))
        trans_id = next(self._trans_ids)
        original.refunded += amount
        entry = {
            "orderId": str(body.get("orderId")),
            "amount": amount,
            "resultCode": 0,
            "transId": trans_id,
            "createdTime": self._now_ms(),
        }
        original.refunds.append(entry)
        self.refunds_by_request[request_id] = entry
        return self._answer(0, **ids, amount=amount, transId=trans_id)

    def refund_query(self, body: dict[str, Any]) -> Response:
        ids = {"orderId": body.get("orderId"), "requestId": body.get("requestId")}
        if not self._authentic(body, QUERY_SIGNED):
            return self._answer(13, **ids)
        order = self.orders.get(str(body.get("orderId")))
        if order is None:
            return self._answer(42, **ids)
        return self._answer(0, **ids, refundTrans=order.refunds)

    def payment_page(self, order: Order) -> str:
        action = html.escape(f"{self.public_base_url}/_sandbox/orders/{order.order_id}/complete")
        state = "" if order.result_code == 1000 else f"<p>Đơn hàng đã kết thúc (resultCode {order.result_code}).</p>"
        return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>MoMo sandbox</title></head>
<body>
<h1>Thanh toán bằng Ví MoMo (sandbox)</h1>
<p>Đơn hàng: <code>{html.escape(order.order_id)}</code></p>
<p>Nội dung: {html.escape(order.order_info)}</p>
<p>Số tiền: <strong>{order.amount:,} VND</strong></p>
{state}
<form method="post" action="{action}"><input type="hidden" name="outcome" value="success">
<button type="submit">Xác nhận thanh toán</button></form>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="cancel">
<button type="submit">Hủy</button></form>
</body></html>"""

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Sandbox MoMo e-wallet", docs_url=None, redoc_url=None, openapi_url=None)

        async def json_body(request: Request) -> dict[str, Any] | None:
            try:
                data = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None

        def bad_format() -> JSONResponse:
            return self._answer(20)

        @app.post("/v2/gateway/api/create")
        async def create(request: Request) -> Response:
            body = await json_body(request)
            return bad_format() if body is None else await self.create(body)

        async def answer_api(request: Request, operation: Callable[[dict[str, Any]], Response]) -> Response:
            if self._take_fault("api_5xx"):
                return PlainTextResponse("503 Service Temporarily Unavailable", status_code=503)
            body = await json_body(request)
            return bad_format() if body is None else operation(body)

        @app.post("/v2/gateway/api/query")
        async def query(request: Request) -> Response:
            return await answer_api(request, self.query)

        @app.post("/v2/gateway/api/refund")
        async def refund(request: Request) -> Response:
            return await answer_api(request, self.refund)

        @app.post("/v2/gateway/api/refund/query")
        async def refund_query(request: Request) -> Response:
            return await answer_api(request, self.refund_query)

        @app.get("/pay/{order_id}")
        async def pay_page(order_id: str) -> Response:
            order = self.orders.get(order_id)
            if order is None:
                return HTMLResponse("<!doctype html><p>Không tìm thấy đơn hàng.</p>", status_code=404)
            return HTMLResponse(self.payment_page(order))

        @app.post("/_sandbox/orders/{order_id}/complete")
        async def complete(order_id: str, request: Request) -> Response:
            order = self.orders.get(order_id)
            if order is None:
                return JSONResponse({"error": "order_not_found"}, status_code=404)
            if order.result_code != 1000:
                return JSONResponse({"error": "order_already_completed"}, status_code=409)
            if request.headers.get("content-type", "").startswith("application/json"):
                try:
                    completion = Completion.model_validate_json(await request.body())
                except ValidationError as exc:
                    return JSONResponse({"error": "invalid_request", "detail": exc.errors()}, status_code=422)
                return JSONResponse(await self.complete(order, completion))
            # The payment page's buttons: finish, then send the browser back to the merchant.
            # (parsed here: an urlencoded form needs no multipart parser)
            form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
            outcome = "success" if form.get("outcome") == ["success"] else "failure"
            result = await self.complete(order, Completion(outcome=outcome))
            return RedirectResponse(str(result["return_url"]), status_code=303)

        add_fault_route(app, self.faults, FAULTS)

        return app


def create_simulator(ctx: SimulatorContext) -> FastAPI:
    wallet = SandboxWallet(
        partner_code=ctx.settings["partner_code"],
        access_key=ctx.secrets["access_key"],
        secret_key=ctx.secrets["secret_key"],
        public_base_url=ctx.public_base_url.rstrip("/"),
        http=ctx.http,
        clock=ctx.clock,
    )
    app = wallet.build_app()
    app.state.wallet = wallet
    return app


async def pay_momo(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    """The test helper's payer: approve (or deny) the order in the app; MoMo then sends the IPN."""
    response = await http.post(
        f"{base_url}/_sandbox/orders/{provider_data['order_id']}/complete",
        json={"outcome": outcome, "amount": amount},
    )
    if response.status_code != 200:
        raise SandboxPayerFailed(f"The MoMo sandbox could not complete the order: {response.text[:200]}")
    result = response.json()
    if result.get("ipn_status") != 204 and not result.get("ipn_lost"):
        raise SandboxPayerFailed(f"The MoMo sandbox's IPN was not accepted (HTTP {result.get('ipn_status')})")
