"""A simulated national public-service payment platform, from the platform's side (PROVIDERS.md).

- `POST /api/thanh-toan/khoi-tao`: Init, checked (MaXacThuc, fields, fees summing to SoTien) and answered MaLoi 00
  with `UrlThanhToan`, or 01 (bad MaXacThuc) / 02 (invalid request). The same MaThamChieu again is a retry.
- `GET /thanh-toan/{MaThamChieu}`: the citizen's page (dossier, fees, a bank to pick), posting to
  `POST /_sandbox/checkout` (pay or cancel): the platform then pushes its signed result to the gateway.
- `GET /receipts/{number}`: the platform's receipt (`UrlBienLai`).
- `POST /api/thanh-toan/truy-van`: the status query this project models (adapter.py's docstring).
- `POST /_sandbox/transactions/{MaThamChieu}/pay`: the test helpers' payer; `GET /_sandbox/transactions/{ref}`.
- `POST /_sandbox/inquiry` `{"MaHoSo"}`: the platform asks the gateway what a dossier owes (the citizen looking it
  up on the portal), signed; answers the gateway's answer and whether its MaXacThuc held.
- `POST /_sandbox/faults` `{"fault": "result_twice" | "result_lost" | "result_tampered", "count"}`.

A result the gateway does not store is not sent again: the gateway's status query settles it.
"""

from __future__ import annotations

import html
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

import httpx
import orjson
import structlog
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, Response

from gateway.adapters.national_platform import wire
from gateway.adapters.simulators import add_fault_route, invalid_request
from gateway.adapters.testmode import SandboxPayerFailed, SimulatorContext
from gateway.clock import Clock

log = structlog.get_logger("gateway.sandbox.national_platform")

FAULTS = frozenset({"result_twice", "result_lost", "result_tampered"})
# The banks the sandbox page offers (NAPAS BINs).
BANKS = {
    "970436": "Vietcombank",
    "970415": "VietinBank",
    "970418": "BIDV",
    "970405": "Agribank",
    "970422": "MB Bank",
    "970407": "Techcombank",
}
RESULT_TIMEOUT_SECONDS = 10.0
MAX_TRANSACTIONS = 100_000


@dataclass
class Transaction:
    reference: str  # MaThamChieu
    amount: int
    dossier: str = ""
    description: str = ""
    receipt_info: dict[str, Any] = field(default_factory=dict)  # ThongTinBienLai as Init sent it
    status: Literal["pending", "paid", "failed"] = "pending"
    code: str = wire.PENDING
    transaction_id: str = ""
    bank_code: str = ""
    receipt_number: str = ""
    paid_at: str = ""


@dataclass(frozen=True)
class Delivery:
    stored: bool
    lost: bool


class PayerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["success", "failure"] = "success"
    amount: StrictInt = Field(gt=0)
    dossier: str | None = Field(default=None, max_length=64)
    bank_code: str = "970436"


class InquiryPlay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    MaHoSo: str = Field(min_length=1, max_length=64)


@dataclass
class SandboxPlatform:
    partner_code: str
    hash_key: str
    gateway_url: str  # the gateway's /v1/providers/national_platform
    public_base_url: str
    http: httpx.AsyncClient
    clock: Clock
    transactions: dict[str, Transaction] = field(default_factory=dict)
    receipts: dict[str, str] = field(default_factory=dict)  # receipt number → MaThamChieu
    faults: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_context(cls, ctx: SimulatorContext) -> SandboxPlatform:
        return cls(
            partner_code=ctx.settings["partner_code"],
            hash_key=ctx.secrets["hash_key"],
            gateway_url=ctx.notification_url.rstrip("/").removesuffix("/notifications"),
            public_base_url=ctx.public_base_url.rstrip("/"),
            http=ctx.http,
            clock=ctx.clock,
        )

    def signed(self, fields: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        return {**fields, "MaXacThuc": wire.sign(fields, names, self.hash_key)}

    def authentic(self, fields: dict[str, Any], names: tuple[str, ...]) -> bool:
        return wire.signature_matches(fields, names, self.hash_key)

    def take_fault(self, fault: str) -> bool:
        if self.faults[fault] > 0:
            self.faults[fault] -= 1
            return True
        return False

    def now(self) -> str:
        return wire.timestamp(self.clock.now())

    def open(self, reference: str, amount: int, **details: Any) -> Transaction:
        found = self.transactions.get(reference)
        if found is None:
            while len(self.transactions) >= MAX_TRANSACTIONS:
                self.transactions.pop(next(iter(self.transactions)))
            found = self.transactions[reference] = Transaction(reference, amount, **details)
        return found

    # --- Init ----------------------------------------------------------------------------------------

    def init(self, body: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in body.items() if not isinstance(v, dict | list)}
        reference = str(values.get("MaThamChieu", ""))

        def answer(code: str, url: str = "") -> dict[str, Any]:
            fields = {"MaLoi": code, "MaDoiTac": self.partner_code, "MaThamChieu": reference, "UrlThanhToan": url}
            return self.signed(fields, wire.INIT_ANSWER_SIGNED)

        if not self.authentic(values, wire.INIT_SIGNED) or values.get("MaDoiTac") != self.partner_code:
            return answer(wire.BAD_SIGNATURE)
        info = body.get("ThongTinBienLai")
        amount = str(values.get("SoTien", ""))
        fees = info.get("PhiLePhi") if isinstance(info, dict) else None
        if (
            not reference
            or len(reference) > wire.REFERENCE_MAX
            or not amount.isdigit()
            or int(amount) <= 0
            or values.get("MaTienTe") != wire.CURRENCY_VND
            or not isinstance(info, dict)
            or not isinstance(fees, list)
            or sum(int(f.get("SoTien", 0)) for f in fees if isinstance(f, dict)) != int(amount)
        ):
            return answer(wire.INVALID_REQUEST)
        known = self.transactions.get(reference)
        if known is not None and known.amount != int(amount):
            return answer(wire.INVALID_REQUEST)  # a MaThamChieu names one transaction, once
        self.open(
            reference,
            int(amount),
            dossier=str(info.get("MaHoSo", "")),
            description=str(values.get("ThongTinGiaoDich", "")),
            receipt_info=info,
        )
        return answer(wire.SUCCESS, f"{self.public_base_url}/thanh-toan/{quote(reference, safe='')}")

    # --- paying --------------------------------------------------------------------------------------

    async def settle(self, tx: Transaction, outcome: Literal["success", "failure", "cancel"], bank: str) -> Delivery:
        tx.bank_code = bank if bank in BANKS else "970436"
        tx.transaction_id = tx.transaction_id or f"GD{secrets.randbelow(10**12):012d}"
        tx.paid_at = self.now()
        if outcome == "success":
            tx.status, tx.code = "paid", wire.SUCCESS
            tx.receipt_number = f"{secrets.randbelow(10**10):010d}"
            self.receipts[tx.receipt_number] = tx.reference
        else:
            tx.status = "failed"
            tx.code = wire.PAYER_CANCELED if outcome == "cancel" else wire.BANK_DECLINED
        log.info("sandbox_platform.settled", reference=tx.reference, code=tx.code)
        return await self.deliver_result(tx)

    def result_fields(self, tx: Transaction, message: str = wire.RESULT_MESSAGE) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "LoaiBanTin": message,
            "MaLoi": tx.code,
            "MaDoiTac": self.partner_code,
            "MaThamChieu": tx.reference,
            "SoTien": str(tx.amount),
            "MaTienTe": wire.CURRENCY_VND,
            "MaGiaoDich": tx.transaction_id,
            "MaNganHang": tx.bank_code,
            "ThoiGianGD": tx.paid_at or self.now(),
            "ThongTinGiaoDich": tx.description,
        }
        signed = self.signed(fields, wire.RESULT_SIGNED)
        if tx.receipt_number:
            signed["UrlBienLai"] = f"{self.public_base_url}/receipts/{tx.receipt_number}"
        return signed

    async def deliver_result(self, tx: Transaction) -> Delivery:
        if self.take_fault("result_lost"):
            log.info("sandbox_platform.result_lost", reference=tx.reference)
            return Delivery(stored=False, lost=True)
        fields = self.result_fields(tx)
        if self.take_fault("result_tampered"):  # changed after signing: the gateway must refuse it
            fields = {**fields, "SoTien": str(tx.amount * 10)}
        stored = await self._send_result(fields)
        if self.take_fault("result_twice"):
            stored = await self._send_result(fields) or stored
        return Delivery(stored=stored, lost=False)

    async def _send_result(self, fields: dict[str, Any]) -> bool:
        try:
            response = await self.http.post(
                f"{self.gateway_url}/notifications", json=fields, timeout=RESULT_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            log.warning("sandbox_platform.result_failed", error=type(exc).__name__)
            return False
        answer = _json_object(response)
        if response.status_code != 200 or answer is None or answer.get("MaLoi") != wire.SUCCESS:
            return False
        return self.authentic(answer, wire.RESULT_ANSWER_SIGNED)

    # --- status and inquiry --------------------------------------------------------------------------

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        reference = str(body.get("MaThamChieu", ""))
        if not self.authentic(body, wire.STATUS_SIGNED) or body.get("MaDoiTac") != self.partner_code:
            blank = Transaction(reference, 0, code=wire.BAD_SIGNATURE)
            return self.result_fields(blank, wire.STATUS_MESSAGE)
        tx = self.transactions.get(reference) or Transaction(reference, 0, code=wire.UNKNOWN_REFERENCE)
        return self.result_fields(tx, wire.STATUS_MESSAGE)

    async def inquire(self, dossier: str) -> dict[str, Any]:
        """The platform asks the gateway what `dossier` owes; a payable answer opens its transaction here."""
        fields = self.signed(
            {"MaHoSo": dossier, "MaDoiTac": self.partner_code, "ThoiGianGD": self.now()}, wire.INQUIRY_SIGNED
        )
        response = await self.http.post(f"{self.gateway_url}/inquiry", json=fields, timeout=RESULT_TIMEOUT_SECONDS)
        answer = _json_object(response) or {}
        authentic = self.authentic(answer, wire.INQUIRY_ANSWER_SIGNED)
        amount = answer.get("SoTien")
        if authentic and answer.get("error_code") == wire.INQUIRY_PAYABLE and isinstance(amount, int) and amount > 0:
            info = {"MaHoSo": dossier, "PhiLePhi": answer.get("PhiLePhi") or []}
            tx = self.open(str(answer.get("MaThamChieu", "")), amount, dossier=dossier, receipt_info=info)
            answer = {**answer, "UrlThanhToan": f"{self.public_base_url}/thanh-toan/{quote(tx.reference, safe='')}"}
        return {"answer": answer, "authentic": authentic}


# --- pages -------------------------------------------------------------------------------------------


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}}
button{{font-size:1.1rem;margin:1rem .5rem 0 0;padding:.5rem 1rem}}.amount{{font-size:1.4rem}}</style></head>
<body><main>{body}</main></body></html>"""
    return HTMLResponse(document, status_code=status)


def _vnd(amount: object) -> str:
    return f"{int(str(amount) or 0):,}".replace(",", ".") + " ₫" if str(amount).isdigit() else html.escape(str(amount))


TITLE = "Cổng Dịch vụ công Quốc gia — thanh toán (sandbox)"


def payment_page(platform: SandboxPlatform, tx: Transaction) -> Response:
    if tx.status != "pending":
        return _page(TITLE, "<h1>Giao dịch đã kết thúc</h1><p lang='en'>This payment is already finished.</p>", 409)
    info = tx.receipt_info
    fees = "".join(
        f"<tr><td>{'Phí' if str(f.get('LoaiPhiLePhi')) == '1' else 'Lệ phí'}</td>"
        f"<td>{html.escape(str(f.get('TenPhiLePhi', '')))}</td><td>{_vnd(f.get('SoTien', 0))}</td></tr>"
        for f in info.get("PhiLePhi", [])
        if isinstance(f, dict)
    )
    banks = "".join(f'<option value="{bin_}">{html.escape(name)} ({bin_})</option>' for bin_, name in BANKS.items())
    action = html.escape(f"{platform.public_base_url}/_sandbox/checkout")
    body = f"""<h1>Thanh toán lệ phí hồ sơ <span lang="en">(Pay the dossier's fees)</span></h1>
<p>Hồ sơ <span lang="en">(Dossier)</span>: <code>{html.escape(tx.dossier)}</code></p>
<p>Đơn vị <span lang="en">(Agency)</span>: {html.escape(str(info.get("TenDonVi", "")))}</p>
<p>Thủ tục <span lang="en">(Procedure)</span>: {html.escape(str(info.get("MaTTHC", "")))}</p>
<p>Người nộp <span lang="en">(Payer)</span>: {html.escape(str(info.get("HoTenNguoiNop", "")))}</p>
<table><tr><th>Loại</th><th>Khoản thu</th><th>Số tiền</th></tr>{fees}</table>
<p>Tổng <span lang="en">(Total)</span>: <strong class="amount">{_vnd(tx.amount)}</strong></p>
<form method="post" action="{action}">
<input type="hidden" name="MaThamChieu" value="{html.escape(tx.reference)}">
<label for="bank">Ngân hàng <span lang="en">(Bank)</span></label>
<select id="bank" name="bank">{banks}</select>
<button type="submit" name="action" value="pay">Thanh toán <span lang="en">(Pay)</span></button>
<button type="submit" name="action" value="cancel">Hủy <span lang="en">(Cancel)</span></button>
</form>"""
    return _page(TITLE, body)


def receipt_page(platform: SandboxPlatform, number: str) -> Response:
    tx = platform.transactions.get(platform.receipts.get(number, ""))
    if tx is None:
        return _page(TITLE, "<h1>Không tìm thấy biên lai</h1><p lang='en'>No such receipt.</p>", 404)
    bank = BANKS.get(tx.bank_code, tx.bank_code)
    body = f"""<h1>BIÊN LAI THU PHÍ, LỆ PHÍ <span lang="en">(Receipt)</span></h1>
<p>Số biên lai <span lang="en">(Receipt number)</span>: <strong>{html.escape(number)}</strong></p>
<p>Hồ sơ: <code>{html.escape(tx.dossier)}</code></p>
<p>Mã giao dịch: <code>{html.escape(tx.transaction_id)}</code> — {html.escape(bank)}</p>
<p>Số tiền: <strong>{_vnd(tx.amount)}</strong></p>
<p><small>Sandbox: biên lai thử nghiệm, không có giá trị.</small></p>"""
    return _page(f"Biên lai {number}", body)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


async def _body_object(request: Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def create_simulator(ctx: SimulatorContext) -> FastAPI:
    platform = SandboxPlatform.from_context(ctx)
    app = FastAPI(title="Sandbox national platform", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.platform = platform

    @app.post(wire.INIT_PATH)
    async def init(request: Request) -> JSONResponse:
        return JSONResponse(platform.init(await _body_object(request)))

    @app.post(wire.STATUS_PATH)
    async def status(request: Request) -> JSONResponse:
        return JSONResponse(platform.status(await _body_object(request)))

    @app.get("/thanh-toan/{reference}")
    async def page(reference: str) -> Response:
        tx = platform.transactions.get(reference)
        if tx is None:
            return _page(TITLE, "<h1>Không tìm thấy giao dịch</h1><p lang='en'>No such payment.</p>", 404)
        return payment_page(platform, tx)

    @app.post("/_sandbox/checkout")
    async def checkout(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        tx = platform.transactions.get(form.get("MaThamChieu", ""))
        if tx is None:
            return _page(TITLE, "<h1>Không tìm thấy giao dịch</h1><p lang='en'>No such payment.</p>", 404)
        if tx.status != "pending":
            return payment_page(platform, tx)
        outcome: Literal["success", "cancel"] = "cancel" if form.get("action") == "cancel" else "success"
        await platform.settle(tx, outcome, form.get("bank", ""))
        if outcome == "cancel":
            return _page(TITLE, "<h1>Đã hủy thanh toán</h1><p lang='en'>Payment canceled.</p>")
        receipt = f"{platform.public_base_url}/receipts/{tx.receipt_number}"
        return _page(
            TITLE,
            f"<h1>Thanh toán thành công <span lang='en'>(Paid)</span></h1>"
            f"<p>Mã giao dịch: <code>{html.escape(tx.transaction_id)}</code></p>"
            f'<p><a href="{html.escape(receipt)}">Biên lai điện tử (receipt)</a></p>',
        )

    @app.get("/receipts/{number}")
    async def receipt(number: str) -> Response:
        return receipt_page(platform, number)

    @app.post("/_sandbox/transactions/{reference}/pay")
    async def pay(reference: str, request: Request) -> Response:
        try:
            wanted = PayerRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(exc)
        tx = platform.open(reference, wanted.amount, dossier=wanted.dossier or "")
        if tx.status != "pending":
            return JSONResponse({"error": "already_settled"}, status_code=409)
        tx.amount = wanted.amount
        delivery = await platform.settle(tx, wanted.outcome, wanted.bank_code)
        return JSONResponse(
            {
                "MaThamChieu": tx.reference,
                "MaLoi": tx.code,
                "MaGiaoDich": tx.transaction_id,
                "result_stored": delivery.stored,
                "result_lost": delivery.lost,
            }
        )

    @app.get("/_sandbox/transactions/{reference}")
    async def transaction(reference: str) -> JSONResponse:
        tx = platform.transactions.get(reference)
        if tx is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse({**platform.result_fields(tx), "status": tx.status, "MaHoSo": tx.dossier})

    @app.post("/_sandbox/inquiry")
    async def inquiry(request: Request) -> JSONResponse:
        try:
            wanted = InquiryPlay.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(exc)
        try:
            return JSONResponse(await platform.inquire(wanted.MaHoSo))
        except httpx.HTTPError as exc:
            return JSONResponse({"error": "gateway_unreachable", "detail": type(exc).__name__}, status_code=502)

    add_fault_route(app, platform.faults, FAULTS)

    return app


async def pay_national_platform(
    http: httpx.AsyncClient, base_url: str, provider_data: dict[str, Any], outcome: str, amount: int
) -> None:
    """The test helper's payer: the citizen pays (or the bank declines) on the platform, which then pushes its
    result. provider_data carries the payment's MaThamChieu (`platform.reference`)."""
    reference = (provider_data.get("platform") or {}).get("reference")
    if not isinstance(reference, str) or not reference:
        raise SandboxPayerFailed("The payment carries no MaThamChieu to pay.")
    dossier = (provider_data.get("national_platform") or {}).get("dossier")
    body: dict[str, Any] = {"outcome": "success" if outcome == "success" else "failure", "amount": amount}
    if isinstance(dossier, str) and dossier:
        body["dossier"] = dossier
    response = await http.post(f"{base_url}/_sandbox/transactions/{quote(reference, safe='')}/pay", json=body)
    if response.status_code != 200:
        raise SandboxPayerFailed(f"The platform sandbox could not pay: {response.text[:200]}")
    result = response.json()
    if not result.get("result_stored") and not result.get("result_lost"):
        raise SandboxPayerFailed("The platform sandbox's result was not stored by the gateway.")
