"""The national public-service payment platform (PROVIDERS.md, "National public-service payment platform").

A payment starts with **Init** (LoaiBanTin 1, JSON to the platform's `INIT_PATH`), answered `MaLoi` 00 with the
platform's page `UrlThanhToan`, where the citizen picks a bank and pays. The platform's signed **result**
(LoaiBanTin 2) settles it; the gateway answers with a signed echo (`AcknowledgesRequest`). The platform's
**inquiry** by dossier code (`BillInquiry`) is answered from the open payment of that reference, or a payable bill
of that number (a payment is then created: its MaThamChieu is the one this gateway derives from its id).

`MaThamChieu` is the gateway's own reference (`wire.reference_for`: from the payment id alone, 20 characters), never
a cut of the dossier code, which travels in full as `ThongTinBienLai.MaHoSo`.

**Status query** (modelled: PROVIDERS.md has none): `POST {api_base_url}/api/thanh-toan/truy-van`
`{LoaiBanTin: "3", MaDoiTac, MaThamChieu, ThoiGianGD, MaXacThuc}`, MaXacThuc over
`LoaiBanTin|MaDoiTac|MaThamChieu|ThoiGianGD|hash_key`; answered with the result's ten fields (LoaiBanTin 3, MaLoi
00 paid, 09 not paid yet, 10 no such transaction, 01 bad MaXacThuc, another code the failure) plus `UrlBienLai`,
signed like a result. The protocol has no refund message: this adapter implements no `Refunds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.adapters.base import (
    Capabilities,
    FundsReceived,
    InboundRequest,
    InquiryAnswer,
    InquiryRequest,
    InquiryStatus,
    NotificationRejected,
    NotificationUnusable,
    OutboundResponse,
    PaymentDeclined,
    PaymentLookup,
    ProviderContext,
    ProviderCredentials,
    ProviderDeclinedError,
    ProviderEvent,
    ProviderStatus,
    ProviderTechnicalError,
    StartPayment,
    StartResult,
    StatusResult,
)
from gateway.adapters.emvco import to_qr_ascii
from gateway.adapters.http import send_provider_request
from gateway.adapters.national_platform import wire
from gateway.adapters.national_platform.simulator import create_simulator, pay_national_platform
from gateway.adapters.testmode import SandboxSpec
from gateway.domain import MAX_AMOUNT, NotificationOutcome, PaymentMethod

NAME = "national_platform"
# The payer's address is not the gateway's to know: the loopback, as server-started payments send.
_IP = "127.0.0.1"
# A result answer "00" tells the platform to stop sending it.
_STORED = frozenset(
    {
        NotificationOutcome.applied,
        NotificationOutcome.duplicate,
        NotificationOutcome.unmatched,
        NotificationOutcome.amount_mismatch,
    }
)
_INQUIRY_CODES = {
    InquiryStatus.payable: wire.INQUIRY_PAYABLE,
    InquiryStatus.not_payable: wire.INQUIRY_NOTHING_DUE,
    InquiryStatus.rejected: wire.INQUIRY_ERROR,
    InquiryStatus.error: wire.INQUIRY_ERROR,
}
SANDBOX_SETTINGS = {"partner_code": "000.00.00.GW1", "agency_code": "000.00.00.GW1.SANDBOX"}


class NationalPlatformCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_code: str = Field(min_length=1, max_length=40, description="MaDoiTac: the platform's code of the partner")
    agency_code: str = Field(min_length=1, max_length=40, description="MaDonVi: the collecting agency")
    hash_key: SecretStr = Field(min_length=1, description="Key of MaXacThuc (SHA-256 with the key appended)")
    api_base_url: str = Field(pattern=r"^https?://", description="The platform's API")


def _fields_of(request: InboundRequest) -> dict[str, str]:
    """The platform's JSON object, its scalar values as strings (SoTien may come as a number)."""
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise NotificationRejected("body is not JSON") from exc
    if not isinstance(data, dict):
        raise NotificationRejected("body is not a JSON object")
    return {str(k): _text(v) for k, v in data.items() if not isinstance(v, dict | list)}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else str(value)


def _amount(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    amount = int(value)
    return amount if 0 < amount <= MAX_AMOUNT else None


def wire_fees(fees: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The payment's fee lines ({kind, code, name, amount}) as PhiLePhi."""
    return [
        {
            "LoaiPhiLePhi": wire.FEE_KINDS.get(str(f.get("kind")), wire.FEE_KINDS["fee"]),
            "MaPhiLePhi": str(f.get("code") or ""),
            "TenPhiLePhi": str(f.get("name") or ""),
            "SoTien": int(f.get("amount") or 0),
        }
        for f in fees
    ]


def _given(fields: Mapping[str, str], reference: str) -> dict[str, Any]:
    """What the platform gave with a paid result, kept on the payment (provider_data["platform"])."""
    return {
        "platform": {
            "reference": reference,
            "transaction_id": fields.get("MaGiaoDich") or None,
            "bank_code": fields.get("MaNganHang") or None,
            "receipt_url": _receipt_url(fields.get("UrlBienLai")),
        }
    }


_MAX_RECEIPT_URL = 500


def _receipt_url(value: str | None) -> str | None:
    """The platform's receipt link as the gateway's receipt shows it: an http(s) URL of a sane length, else none (it
    is not among the signed fields, so nothing else is taken from it)."""
    if not value or len(value) > _MAX_RECEIPT_URL or not value.startswith(("https://", "http://")):
        return None
    return value


class NationalPlatformAdapter:
    name = NAME
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.national_platform}),
        currencies=frozenset({"VND"}),
        min_amount=1000,
        max_amount=MAX_AMOUNT,
        partial_refunds=False,  # the protocol has no refund message
        accepts_partial_funds=False,
        accumulates_funds=False,
        offline_start=False,  # Init is a network call
    )
    credentials_model = NationalPlatformCredentials
    sandbox = SandboxSpec(
        settings=SANDBOX_SETTINGS,
        secret_names=("hash_key",),
        simulator=create_simulator,
        pay=pay_national_platform,
    )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return settings["partner_code"]

    def payment_reference(self, payment_id: str) -> str:
        return wire.reference_for(payment_id)

    # --- calls to the platform -------------------------------------------------------------------------

    async def _call(self, ctx: ProviderContext, path: str, body: dict[str, Any]) -> dict[str, str]:
        url = f"{ctx.credentials.base_url.rstrip('/')}{path}"
        response = await send_provider_request(ctx.http, self.name, "POST", url, json=body)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("MaLoi"), str):
            raise ProviderTechnicalError(f"{self.name} answered HTTP {response.status_code} without a MaLoi")
        return {str(k): _text(v) for k, v in data.items() if not isinstance(v, dict | list)}

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        creds = ctx.credentials
        options = payment.options.get("national_platform")
        if not isinstance(options, Mapping):
            raise ProviderDeclinedError("invalid_request", "A national platform payment needs its fee list")
        reference = wire.reference_for(payment.payment_id)
        description = to_qr_ascii(payment.description or f"Thanh toan le phi ho so {payment.reference}")[:210]
        fields: dict[str, Any] = {
            "LoaiBanTin": wire.INIT_MESSAGE,
            "PhienBan": wire.VERSION,
            "MaDoiTac": creds.settings["partner_code"],
            "MaThamChieu": reference,
            "SoTien": str(payment.amount),
            "LoaiHinhThanhToan": "1",
            "MaKenhThanhToan": "1",
            "MaThietBi": "1",
            "NgonNgu": "vi",
            "MaTienTe": wire.CURRENCY_VND,
            "MaNganHang": "",
            "ThongTinGiaoDich": description,
            "ThoiGianGD": wire.timestamp(ctx.clock.now()),
            "Ip": _IP,
        }
        agency = creds.settings["agency_code"]
        fields["ThongTinBienLai"] = {
            "MaDichVu": wire.SERVICE_FEE,
            "MaDonVi": agency,
            "TenDonVi": str(options.get("agency_name") or agency),
            "MaHoSo": payment.reference,  # the dossier code, in full
            "MaTTHC": str(options.get("procedure_code") or ""),
            "MaDVC": str(options.get("service_code") or ""),
            "PhiLePhi": wire_fees(options.get("fees") or []),
            "HoTenNguoiNop": str((payment.customer or {}).get("name") or ""),
            "NoiDungThanhToan": payment.description or f"Thanh toán lệ phí hồ sơ {payment.reference}",
        }
        fields["MaXacThuc"] = wire.sign(fields, wire.INIT_SIGNED, creds.secrets["hash_key"])
        answer = await self._call(ctx, wire.INIT_PATH, fields)
        code = answer["MaLoi"]
        if code != wire.SUCCESS:
            raise ProviderDeclinedError(wire.failure_code(code), f"The platform refused the payment: MaLoi {code}")
        if not wire.signature_matches(answer, wire.INIT_ANSWER_SIGNED, creds.secrets["hash_key"]):
            raise ProviderTechnicalError(f"{self.name} answered with a MaXacThuc that does not hold")
        url = answer.get("UrlThanhToan", "")
        if answer.get("MaThamChieu") != reference or not url.startswith(("https://", "http://")):
            raise ProviderTechnicalError(f"{self.name} answered about another payment, or without its page")
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=reference,
            next_action={"type": "redirect", "url": url},
            provider_data={"platform": {"reference": reference}},
        )

    async def fetch_status(self, ctx: ProviderContext, payment: PaymentLookup) -> StatusResult:
        creds = ctx.credentials
        reference = payment.provider_reference or wire.reference_for(payment.payment_id)
        fields = {
            "LoaiBanTin": wire.STATUS_MESSAGE,
            "MaDoiTac": creds.settings["partner_code"],
            "MaThamChieu": reference,
            "ThoiGianGD": wire.timestamp(ctx.clock.now()),
        }
        fields["MaXacThuc"] = wire.sign(fields, wire.STATUS_SIGNED, creds.secrets["hash_key"])
        answer = await self._call(ctx, wire.STATUS_PATH, fields)
        code = answer["MaLoi"]
        if code in (wire.BAD_SIGNATURE, wire.INVALID_REQUEST):
            raise ProviderTechnicalError(f"{self.name} refused the status query: MaLoi {code}")
        if not wire.signature_matches(answer, wire.RESULT_SIGNED, creds.secrets["hash_key"]):
            raise ProviderTechnicalError(f"{self.name} answered with a MaXacThuc that does not hold")
        if answer.get("MaThamChieu") != reference:
            raise ProviderTechnicalError(f"{self.name} answered about another payment")
        if code in (wire.PENDING, wire.UNKNOWN_REFERENCE):
            # Not paid yet (or the citizen never opened the page): the payment expires on its own.
            return StatusResult(ProviderStatus.requires_action, 0, None)
        transaction = answer.get("MaGiaoDich") or None
        if code == wire.SUCCESS:
            amount = _amount(answer.get("SoTien"))
            if amount is None or transaction is None:
                raise ProviderTechnicalError(f"{self.name} reports a payment without its amount or transaction")
            return StatusResult(ProviderStatus.succeeded, amount, transaction, provider_data=_given(answer, reference))
        if code not in wire.TERMINAL_FAILURES:  # a code this gateway does not know: never fail a payment on a guess
            raise ProviderTechnicalError(f"{self.name} answered the status query with MaLoi {code}")
        return StatusResult(
            ProviderStatus.failed, 0, transaction, wire.failure_code(code), f"The platform reports MaLoi {code}"
        )

    # --- calls from the platform -----------------------------------------------------------------------

    def notification_account(self, request: InboundRequest) -> str | None:
        try:
            return _fields_of(request).get("MaDoiTac") or None
        except NotificationRejected:
            return None

    inquiry_account = notification_account

    def _authenticated(
        self, request: InboundRequest, credentials: ProviderCredentials, names: Sequence[str]
    ) -> dict[str, str]:
        fields = _fields_of(request)
        hash_key = credentials.secrets.get("hash_key")
        if not hash_key or not wire.signature_matches(fields, names, hash_key):
            raise NotificationRejected("invalid MaXacThuc")
        if fields.get("MaDoiTac") != credentials.settings.get("partner_code"):
            raise NotificationRejected("MaDoiTac is not this account's")
        return fields

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        fields = self._authenticated(request, credentials, wire.RESULT_SIGNED)
        if fields.get("LoaiBanTin") != wire.RESULT_MESSAGE:
            raise NotificationRejected("not a result (LoaiBanTin 2)")
        reference, code, transaction = fields.get("MaThamChieu", ""), fields.get("MaLoi", ""), fields.get("MaGiaoDich")
        if not reference:
            raise NotificationRejected("no MaThamChieu")
        amount = _amount(fields.get("SoTien"))
        if code == wire.PENDING or (code != wire.SUCCESS and code not in wire.TERMINAL_FAILURES):
            return []  # not final (or a code this gateway does not know): the janitor's status query decides
        if code == wire.SUCCESS:
            if amount is None:
                raise NotificationUnusable(
                    f"SoTien {fields.get('SoTien', '')[:40]} is no amount", NotificationOutcome.amount_mismatch
                )
            if not transaction:
                raise NotificationRejected("a payment without MaGiaoDich")
            return [
                FundsReceived(
                    provider_transaction_id=transaction,
                    payment_references=[reference],
                    amount=amount,
                    currency="VND" if fields.get("MaTienTe") == wire.CURRENCY_VND else fields.get("MaTienTe", ""),
                    account_key=fields["MaDoiTac"],
                    payer={"bank_code": fields["MaNganHang"]} if fields.get("MaNganHang") else {},
                    content=fields.get("ThongTinGiaoDich") or None,
                    provider_data=_given(fields, reference),
                )
            ]
        return [
            PaymentDeclined(
                provider_transaction_id=transaction or f"{reference}:{code}",
                payment_references=[reference],
                failure_code=wire.failure_code(code),
                failure_message=f"The platform reports MaLoi {code}",
                amount=amount or None,  # a cancel may carry no amount (or 0): it is still the payment's end
            )
        ]

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        raise NotificationRejected("the platform sends no browser return")

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        code = wire.SUCCESS if outcome in _STORED else wire.NOT_STORED
        return OutboundResponse(200, orjson.dumps({"MaLoi": code, "MoTaLoi": _description(code)}))

    def acknowledge_request(
        self, outcome: NotificationOutcome, request: InboundRequest, credentials: ProviderCredentials | None
    ) -> OutboundResponse:
        try:
            fields = _fields_of(request)
        except NotificationRejected:
            fields = {}
        code = wire.SUCCESS if outcome in _STORED else wire.NOT_STORED
        answer = {
            "MaLoi": code,
            "MoTaLoi": _description(code),
            "MaDoiTac": fields.get("MaDoiTac", "")[:40],
            "MaThamChieu": fields.get("MaThamChieu", "")[:40],
            "ThoiGianGD": fields.get("ThoiGianGD", "")[:14],
        }
        # Nothing is signed for a caller nobody authenticated.
        key = credentials.secrets.get("hash_key") if credentials else None
        answer["MaXacThuc"] = wire.sign(answer, wire.RESULT_ANSWER_SIGNED, key) if key else ""
        return OutboundResponse(200, orjson.dumps(answer))

    # --- the inquiry by dossier code (BillInquiry) -----------------------------------------------------

    def verify_bill_inquiry(self, request: InboundRequest, credentials: ProviderCredentials) -> InquiryRequest:
        fields = self._authenticated(request, credentials, wire.INQUIRY_SIGNED)
        dossier = fields.get("MaHoSo", "")
        if not dossier:
            raise NotificationRejected("MaHoSo is required")
        return InquiryRequest(code=dossier, order_id=None, amount=None)

    def answer_bill_inquiry(
        self, request: InboundRequest, credentials: ProviderCredentials | None, answer: InquiryAnswer
    ) -> OutboundResponse:
        try:
            fields = _fields_of(request)
        except NotificationRejected:
            fields = {}
        payable = answer.status is InquiryStatus.payable
        body: dict[str, Any] = {
            "error_code": _INQUIRY_CODES[answer.status],
            "MaHoSo": fields.get("MaHoSo", "")[:64],
            "MaDoiTac": fields.get("MaDoiTac", "")[:40],
            "SoTien": answer.amount if payable and answer.amount is not None else 0,
            "MaThamChieu": (answer.reference or "") if payable else "",
            "PhiLePhi": wire_fees(answer.fees) if payable else [],
        }
        key = credentials.secrets.get("hash_key") if credentials else None
        body["MaXacThuc"] = wire.sign(body, wire.INQUIRY_ANSWER_SIGNED, key) if key else ""
        return OutboundResponse(200, orjson.dumps(body))


def _description(code: str) -> str:
    return "Thành công" if code == wire.SUCCESS else "Không lưu được kết quả"
