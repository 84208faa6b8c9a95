"""A simulated VNPAY payment gateway speaking VNPAY's protocol (version 2.1.0) from VNPAY's side.

- `GET /paymentv2/vpcpay.html?<signed params>`: the payment page a payer is redirected to. Its buttons
  post to `POST /_sandbox/checkout`, which records the transaction, sends the signed IPN (a GET to the
  gateway) and 302-redirects the browser to `vnp_ReturnUrl` with the same signed fields.
- `POST /_sandbox/pay`: the same checkout driven by the test helpers, answering what happened as JSON.
- `POST /merchant_webapi/api/transaction`: `querydr` and `refund`, with VNPAY's |-joined checksums.
- `POST /_sandbox/faults`: deliberate faults (`ipn_twice`, `ipn_lost`, `api_slow`, `api_5xx`), each
  consumed per use.
- `GET /_sandbox/transactions/{txn_ref}`: what the simulator holds for an order (for tests).

Refunds are idempotent on `vnp_RequestId`: a repeat while the first is still being processed answers `94`;
a repeat of a completed refund answers the stored answer again (`00` with the same refund number).
Every signature received is verified and everything sent is signed with the adapter's own functions.
State lives in memory: it is a sandbox.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import orjson
import structlog
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext
from gateway.adapters.vnpay.wire import (
    HASH_FIELD,
    QUERYDR_REQUEST_FIELDS,
    QUERYDR_RESPONSE_FIELDS,
    REFUND_REQUEST_FIELDS,
    REFUND_RESPONSE_FIELDS,
    TRANSACTION_TYPE_FULL,
    TRANSACTION_TYPE_PARTIAL,
    VERSION,
    hash_data,
    hashes_equal,
    parse_vnpay_date,
    pipe_hash,
    query_of,
    secure_hash,
    vnd_from_wire,
    vnpay_date,
)
from gateway.clock import Clock

log = structlog.get_logger("gateway.sandbox.vnpay")

Fault = Literal["ipn_twice", "ipn_lost", "api_slow", "api_5xx"]
Outcome = Literal["pay", "cancel", "insufficient"]
API_SLOW_SECONDS = 2.0
BANK_CODE = "NCB"
CARD_TYPE = "ATM"
# Payer's outcome -> (vnp_ResponseCode, vnp_TransactionStatus)
_CODES: dict[str, tuple[str, str]] = {
    "pay": ("00", "00"),
    "cancel": ("24", "02"),
    "insufficient": ("51", "02"),
    "expired": ("11", "02"),
}
_OUTCOMES: dict[str, Outcome] = {"pay": "pay", "cancel": "cancel", "insufficient": "insufficient"}
_MESSAGES = {
    "00": "Success",
    "02": "Invalid merchant",
    "03": "Invalid data format",
    "91": "Transaction not found",
    "94": "Duplicate request",
    "95": "Transaction refused",
    "97": "Invalid checksum",
    "99": "Unknown error",
}


class PayRequest(BaseModel):
    """What the test helpers send: the payer opened `payment_url` and chose an outcome."""

    model_config = ConfigDict(extra="forbid")
    payment_url: str = Field(min_length=1)
    outcome: Literal["success", "failure"] = "success"
    amount: StrictInt | None = Field(default=None, gt=0)


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fault: Fault
    count: StrictInt = Field(default=1, ge=0)


class CheckoutRefused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass
class SimulatedRefund:
    request_id: str
    transaction_type: str
    amount: int
    transaction_no: str
    answer: dict[str, str]


@dataclass
class SimulatedTransaction:
    txn_ref: str
    amount: int  # VND actually charged
    order_info: str
    transaction_no: str
    bank_tran_no: str
    pay_date: str
    response_code: str
    status: str  # vnp_TransactionStatus: 00 paid, 02 failed
    refunded: int = 0
    refunds: list[SimulatedRefund] = field(default_factory=list)


@dataclass
class VNPaySimulator:
    tmn_code: str
    hash_secret: str
    ipn_url: str
    http: httpx.AsyncClient
    clock: Clock
    # txn_ref -> the signed order parameters (the payer opened the payment page)
    orders: dict[str, dict[str, str]] = field(default_factory=dict)
    transactions: dict[str, SimulatedTransaction] = field(default_factory=dict)
    refunds: dict[str, SimulatedRefund] = field(default_factory=dict)
    refunds_in_progress: set[str] = field(default_factory=set)
    query_request_ids: set[str] = field(default_factory=set)
    faults: dict[str, int] = field(default_factory=dict)
    _numbers: set[str] = field(default_factory=set)

    # --- helpers ------------------------------------------------------------------------------------

    def _take_fault(self, fault: Fault) -> bool:
        remaining = self.faults.get(fault, 0)
        if remaining <= 0:
            return False
        self.faults[fault] = remaining - 1
        return True

    def _new_number(self) -> str:
        """A fresh numeric VNPAY transaction number (random: unique across simulator restarts too)."""
        while True:
            number = str(10**13 + secrets.randbelow(9 * 10**13))
            if number not in self._numbers:
                self._numbers.add(number)
                return number

    def _now(self) -> str:
        return vnpay_date(self.clock.now())

    def verify_order(self, params: dict[str, str]) -> str | None:
        """Why a payment URL's parameters are not acceptable, or None."""
        given = params.get(HASH_FIELD, "")
        if not given or not hashes_equal(secure_hash(self.hash_secret, params), given):
            return "invalid signature"
        if params.get("vnp_TmnCode") != self.tmn_code:
            return "unknown terminal (vnp_TmnCode)"
        if params.get("vnp_Version") != VERSION or params.get("vnp_Command") != "pay":
            return "unsupported vnp_Version or vnp_Command"
        if params.get("vnp_CurrCode") != "VND":
            return "vnp_CurrCode must be VND"
        amount = vnd_from_wire(params.get("vnp_Amount", ""))
        if amount is None or amount <= 0:
            return "vnp_Amount must be a positive multiple of 100"
        txn_ref = params.get("vnp_TxnRef", "")
        if not txn_ref or len(txn_ref) > 100:
            return "vnp_TxnRef is required (at most 100 characters)"
        info = params.get("vnp_OrderInfo", "")
        if not info or len(info) > 255 or not info.isascii():
            return "vnp_OrderInfo is required, ASCII, at most 255 characters"
        if not params.get("vnp_ReturnUrl") or not params.get("vnp_IpAddr"):
            return "vnp_ReturnUrl and vnp_IpAddr are required"
        try:
            parse_vnpay_date(params.get("vnp_CreateDate", ""))
            parse_vnpay_date(params.get("vnp_ExpireDate", ""))
        except ValueError:
            return "vnp_CreateDate and vnp_ExpireDate must be yyyyMMddHHmmss"
        return None

    def open_order(self, params: dict[str, str]) -> dict[str, str]:
        reason = self.verify_order(params)
        if reason is not None:
            raise CheckoutRefused(400, "invalid_request", reason)
        txn_ref = params["vnp_TxnRef"]
        known = self.orders.get(txn_ref)
        if known is not None and known.get("vnp_CreateDate") != params.get("vnp_CreateDate"):
            raise CheckoutRefused(400, "duplicate_txn_ref", "vnp_TxnRef was already used for another order")
        self.orders[txn_ref] = params
        return params

    # --- the payer ----------------------------------------------------------------------------------

    async def checkout(self, params: dict[str, str], outcome: Outcome, amount: int | None = None) -> dict[str, Any]:
        """The payer finished on the payment page: record, notify (IPN), and give the browser's return URL."""
        order = self.open_order(params)
        txn_ref = order["vnp_TxnRef"]
        existing = self.transactions.get(txn_ref)
        if existing is not None and existing.status == "00":
            raise CheckoutRefused(409, "already_paid", "This order was already paid")
        expired = self.clock.now() > parse_vnpay_date(order["vnp_ExpireDate"])
        response_code, status = _CODES["expired" if expired else outcome]
        charged = amount if amount is not None else int(order["vnp_Amount"]) // 100
        transaction_no = self._new_number()
        transaction = SimulatedTransaction(
            txn_ref=txn_ref,
            amount=charged,
            order_info=order["vnp_OrderInfo"],
            transaction_no=transaction_no,
            bank_tran_no=f"VNP{transaction_no}",
            pay_date=self._now(),
            response_code=response_code,
            status=status,
        )
        self.transactions[txn_ref] = transaction
        fields = {
            "vnp_Amount": str(charged * 100),
            "vnp_BankCode": BANK_CODE,
            "vnp_BankTranNo": transaction.bank_tran_no,
            "vnp_CardType": CARD_TYPE,
            "vnp_OrderInfo": transaction.order_info,
            "vnp_PayDate": transaction.pay_date,
            "vnp_ResponseCode": response_code,
            "vnp_TmnCode": self.tmn_code,
            "vnp_TransactionNo": transaction_no,
            "vnp_TransactionStatus": status,
            "vnp_TxnRef": txn_ref,
        }
        signed = f"{hash_data(fields)}&{HASH_FIELD}={secure_hash(self.hash_secret, fields)}"
        result: dict[str, Any] = {
            "transaction_no": transaction_no,
            "response_code": response_code,
            "transaction_status": status,
            "ipn_status": None,
            "ipn_response": None,
            "ipn_responses": [],
            "ipn_lost": False,
        }
        if self._take_fault("ipn_lost"):
            result["ipn_lost"] = True
        else:
            for _ in range(2 if self._take_fault("ipn_twice") else 1):
                ipn_status, ipn_response = await self._send_ipn(signed)
                result["ipn_status"], result["ipn_response"] = ipn_status, ipn_response
                result["ipn_responses"].append(ipn_response)
        return_url = order["vnp_ReturnUrl"]
        result["return_url"] = f"{return_url}{'&' if '?' in return_url else '?'}{signed}"
        log.info("sandbox_vnpay.checkout", txn_ref=txn_ref, code=response_code, ipn=result["ipn_status"])
        return result

    async def _send_ipn(self, signed_query: str) -> tuple[int, Any]:
        separator = "&" if "?" in self.ipn_url else "?"
        try:
            response = await self.http.get(f"{self.ipn_url}{separator}{signed_query}")
        except httpx.HTTPError as exc:
            log.warning("sandbox_vnpay.ipn_failed", error=type(exc).__name__)
            return 0, None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        return response.status_code, body

    # --- the merchant API ---------------------------------------------------------------------------

    def _answer(self, fields: tuple[str, ...], values: dict[str, str]) -> JSONResponse:
        answer = {name: values.get(name, "") for name in fields}
        answer[HASH_FIELD] = pipe_hash(self.hash_secret, fields, answer)
        return JSONResponse(answer)

    def _api_error(self, command: str, request: dict[str, str], code: str) -> JSONResponse:
        fields = QUERYDR_RESPONSE_FIELDS if command == "querydr" else REFUND_RESPONSE_FIELDS
        return self._answer(
            fields,
            {
                "vnp_ResponseId": uuid.uuid4().hex,
                "vnp_Command": command,
                "vnp_ResponseCode": code,
                "vnp_Message": _MESSAGES.get(code, "Error"),
                "vnp_TmnCode": self.tmn_code,
                "vnp_TxnRef": request.get("vnp_TxnRef", ""),
            },
        )

    def _check_request(self, fields: tuple[str, ...], values: dict[str, str]) -> str | None:
        """The response code for a malformed or unsigned request, or None."""
        given = values.get(HASH_FIELD, "")
        if not given or not hashes_equal(pipe_hash(self.hash_secret, fields, values), given):
            return "97"
        if values.get("vnp_TmnCode") != self.tmn_code:
            return "02"
        request_id = values.get("vnp_RequestId", "")
        if not request_id or len(request_id) > 32 or values.get("vnp_Version") != VERSION:
            return "03"
        for name in ("vnp_TransactionDate", "vnp_CreateDate"):
            try:
                parse_vnpay_date(values.get(name, ""))
            except ValueError:
                return "03"
        if not values.get("vnp_TxnRef") or not values.get("vnp_IpAddr") or not values.get("vnp_OrderInfo"):
            return "03"
        return None

    def _find(self, values: dict[str, str]) -> tuple[dict[str, str] | None, SimulatedTransaction | None]:
        txn_ref = values.get("vnp_TxnRef", "")
        order = self.orders.get(txn_ref)
        if order is None or order.get("vnp_CreateDate") != values.get("vnp_TransactionDate"):
            return None, None
        return order, self.transactions.get(txn_ref)

    def querydr(self, values: dict[str, str]) -> JSONResponse:
        code = self._check_request(QUERYDR_REQUEST_FIELDS, values)
        if code is None and values["vnp_RequestId"] in self.query_request_ids:
            code = "94"
        if code is not None:
            return self._api_error("querydr", values, code)
        self.query_request_ids.add(values["vnp_RequestId"])
        order, transaction = self._find(values)
        if order is None:
            return self._api_error("querydr", values, "91")
        answer = {
            "vnp_ResponseId": uuid.uuid4().hex,
            "vnp_Command": "querydr",
            "vnp_ResponseCode": "00",
            "vnp_Message": "Query success",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": order["vnp_TxnRef"],
            "vnp_Amount": order["vnp_Amount"],
            "vnp_OrderInfo": order["vnp_OrderInfo"],
            "vnp_TransactionType": "01",
            "vnp_TransactionStatus": "01",  # the order page was opened, nothing paid yet
        }
        if transaction is not None:
            answer.update(
                vnp_Amount=str(transaction.amount * 100),
                vnp_BankCode=BANK_CODE,
                vnp_PayDate=transaction.pay_date,
                vnp_TransactionNo=transaction.transaction_no,
                vnp_TransactionStatus=transaction.status,
            )
        return self._answer(QUERYDR_RESPONSE_FIELDS, answer)

    def refund(self, values: dict[str, str]) -> JSONResponse:
        request_id = values["vnp_RequestId"]
        done = self.refunds.get(request_id)
        if done is not None:  # idempotent on vnp_RequestId: a completed refund answers the same again
            if done.answer.get("vnp_TxnRef") != values.get("vnp_TxnRef") or done.amount != vnd_from_wire(
                values.get("vnp_Amount", "")
            ):
                return self._api_error("refund", values, "03")
            return self._answer(REFUND_RESPONSE_FIELDS, done.answer)
        transaction_type = values.get("vnp_TransactionType", "")
        amount = vnd_from_wire(values.get("vnp_Amount", ""))
        if (
            transaction_type not in (TRANSACTION_TYPE_FULL, TRANSACTION_TYPE_PARTIAL)
            or amount is None
            or amount <= 0
            or not values.get("vnp_CreateBy")
        ):
            return self._api_error("refund", values, "03")
        order, transaction = self._find(values)
        if order is None or transaction is None:
            return self._api_error("refund", values, "91")
        if values.get("vnp_TransactionNo") not in ("", transaction.transaction_no):
            return self._api_error("refund", values, "91")
        if transaction.status != "00" or amount > transaction.amount - transaction.refunded:
            return self._api_error("refund", values, "95")
        if transaction_type == TRANSACTION_TYPE_FULL and (amount != transaction.amount or transaction.refunded):
            return self._api_error("refund", values, "03")
        transaction.refunded += amount
        refund_no = self._new_number()
        answer = {
            "vnp_ResponseId": uuid.uuid4().hex,
            "vnp_Command": "refund",
            "vnp_ResponseCode": "00",
            "vnp_Message": "Refund success",
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": transaction.txn_ref,
            "vnp_Amount": str(amount * 100),
            "vnp_BankCode": BANK_CODE,
            "vnp_PayDate": self._now(),
            "vnp_TransactionNo": refund_no,
            "vnp_TransactionType": transaction_type,
            "vnp_TransactionStatus": "00",
            "vnp_OrderInfo": values.get("vnp_OrderInfo", ""),
        }
        record = SimulatedRefund(request_id, transaction_type, amount, refund_no, answer)
        self.refunds[request_id] = record
        transaction.refunds.append(record)
        return self._answer(REFUND_RESPONSE_FIELDS, answer)

    async def merchant_api(self, raw: bytes) -> Response:
        slow = self._take_fault("api_slow")
        if self._take_fault("api_5xx"):
            return JSONResponse({"error": "service_unavailable"}, status_code=503)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return self._api_error("", {}, "03")
        values = {str(k): "" if v is None else str(v) for k, v in data.items()}
        command = values.get("vnp_Command", "")
        if command == "querydr":
            if slow:
                await asyncio.sleep(API_SLOW_SECONDS)
            return self.querydr(values)
        if command != "refund":
            return self._api_error(command, values, "03")
        code = self._check_request(REFUND_REQUEST_FIELDS, values)
        if code is None and values["vnp_RequestId"] in self.refunds_in_progress:
            code = "94"
        if code is not None:
            return self._api_error("refund", values, code)
        request_id = values["vnp_RequestId"]
        self.refunds_in_progress.add(request_id)
        try:
            if slow:
                await asyncio.sleep(API_SLOW_SECONDS)
            return self.refund(values)
        finally:
            self.refunds_in_progress.discard(request_id)

    # --- the app ------------------------------------------------------------------------------------

    def transaction_view(self, txn_ref: str) -> dict[str, Any] | None:
        order, transaction = self.orders.get(txn_ref), self.transactions.get(txn_ref)
        if order is None:
            return None
        view: dict[str, Any] = {"txn_ref": txn_ref, "order_amount": int(order["vnp_Amount"]) // 100}
        if transaction is not None:
            view.update(
                transaction_no=transaction.transaction_no,
                amount=transaction.amount,
                status=transaction.status,
                response_code=transaction.response_code,
                refunded=transaction.refunded,
                refunds=[
                    {
                        "request_id": r.request_id,
                        "transaction_type": r.transaction_type,
                        "amount": r.amount,
                        "transaction_no": r.transaction_no,
                    }
                    for r in transaction.refunds
                ],
            )
        return view

    def build_app(self) -> FastAPI:
        app = FastAPI(title="Sandbox VNPAY", docs_url=None, redoc_url=None, openapi_url=None)
        app.state.simulator = self

        @app.get("/paymentv2/vpcpay.html")
        async def payment_page(request: Request) -> Response:
            params = dict(request.query_params)
            try:
                self.open_order(params)
            except CheckoutRefused as exc:
                return HTMLResponse(_page("Giao dich khong hop le", f"<p>{html.escape(exc.message)}</p>"), 400)
            action = str(request.url_for("sandbox_vnpay_checkout"))
            return HTMLResponse(_checkout_page(params, str(request.url.query), action))

        @app.post("/_sandbox/checkout", name="sandbox_vnpay_checkout")
        async def checkout_form(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))
            outcome = _OUTCOMES.get(form.get("outcome", ""))
            if outcome is None:
                return HTMLResponse(_page("Giao dich khong hop le", "<p>Unknown outcome</p>"), 400)
            params = dict(parse_qsl(form.get("query", ""), keep_blank_values=True))
            try:
                result = await self.checkout(params, outcome)
            except CheckoutRefused as exc:
                return HTMLResponse(_page("Giao dich khong hop le", f"<p>{html.escape(exc.message)}</p>"), exc.status)
            return RedirectResponse(result["return_url"], status_code=302)

        @app.post("/_sandbox/pay")
        async def pay(request: Request) -> JSONResponse:
            try:
                body = PayRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                return JSONResponse({"error": "invalid_request", "message": str(exc)[:500]}, status_code=422)
            try:
                result = await self.checkout(
                    query_of(body.payment_url), "pay" if body.outcome == "success" else "cancel", body.amount
                )
            except CheckoutRefused as exc:
                return JSONResponse({"error": exc.error, "message": exc.message}, status_code=exc.status)
            return JSONResponse(result)

        @app.post("/_sandbox/faults")
        async def set_fault(request: Request) -> JSONResponse:
            try:
                body = FaultRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                return JSONResponse({"error": "invalid_request", "message": str(exc)[:500]}, status_code=422)
            self.faults[body.fault] = body.count
            return JSONResponse({"faults": self.faults})

        @app.get("/_sandbox/transactions/{txn_ref}")
        async def transaction(txn_ref: str) -> JSONResponse:
            view = self.transaction_view(txn_ref)
            if view is None:
                return JSONResponse({"error": "not_found", "message": "no such order"}, status_code=404)
            return JSONResponse(view)

        @app.post("/merchant_webapi/api/transaction")
        async def merchant_api(request: Request) -> Response:
            return await self.merchant_api(await request.body())

        return app


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - VNPAY sandbox</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _checkout_page(params: dict[str, str], query: str, action: str) -> str:
    amount = f"{int(params['vnp_Amount']) // 100:,}".replace(",", ".")
    hidden = f'<input type="hidden" name="query" value="{html.escape(query, quote=True)}">'
    buttons = "".join(
        f'<button type="submit" name="outcome" value="{value}">{label}</button> '
        for value, label in (
            ("pay", "Thanh toan (pay)"),
            ("cancel", "Huy giao dich (cancel)"),
            ("insufficient", "Khong du so du (insufficient funds)"),
        )
    )
    body = (
        f"<p>Merchant: {html.escape(params['vnp_TmnCode'])}</p>"
        f'<p>Amount: <strong class="amount">{amount} VND</strong></p>'
        f"<p>Order: {html.escape(params.get('vnp_OrderInfo', ''))}</p>"
        f"<p>Reference: {html.escape(params['vnp_TxnRef'])}</p>"
        f'<form method="post" action="{html.escape(action, quote=True)}">{hidden}{buttons}</form>'
    )
    return _page("Cong thanh toan VNPAY (sandbox)", body)


def create_simulator(ctx: SimulatorContext) -> FastAPI:
    return VNPaySimulator(
        tmn_code=ctx.settings["tmn_code"],
        hash_secret=ctx.secrets["hash_secret"],
        ipn_url=ctx.notification_url,
        http=ctx.http,
        clock=ctx.clock,
    ).build_app()


async def pay_vnpay(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    """The test helpers' payer: open the payment URL at the simulator and finish with `outcome`."""
    payment_url = provider_data.get("payment_url")
    if not isinstance(payment_url, str) or not payment_url:
        raise SandboxPayerFailed("The payment carries no VNPAY payment URL.")
    try:
        response = await http.post(
            f"{base_url}/_sandbox/pay",
            json={"payment_url": payment_url, "outcome": outcome, "amount": amount},
        )
    except httpx.HTTPError as exc:
        raise SandboxPayerFailed(f"The VNPAY sandbox is unreachable: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise SandboxPayerFailed(f"The VNPAY sandbox refused the payment: {response.text[:200]}")
    answer = response.json()
    if answer.get("ipn_lost"):
        return  # a deliberate fault: VNPAY has the payment, only a querydr reveals it
    if answer.get("ipn_status") != 200:
        raise SandboxPayerFailed(f"The VNPAY sandbox could not deliver its IPN (status {answer.get('ipn_status')}).")
