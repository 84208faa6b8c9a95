"""Telco mobile money (PROVIDERS.md, "Telco mobile money"): one adapter, configured by a `TelcoProfile`.

Gateway-started payments redirect the payer to the telco's page (a signed URL: no network call) or push a USSD
prompt to a feature phone; subscriber-started ones begin with the telco's verify-order call (`BillInquiry`). Both
end in the telco's signed result, answered with a signed echo (`AcknowledgesRequest`). Status query
(TRANS_INQUIRY) and refund (REFUND_PAYMENT) are form posts to the profile's API path, answered in signed JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
    RefundLookup,
    RefundOutcome,
    RefundResult,
    StartPayment,
    StartRefund,
    StartResult,
    StatusResult,
)
from gateway.adapters.emvco import to_qr_ascii
from gateway.adapters.http import send_provider_request
from gateway.adapters.telco import wire
from gateway.adapters.telco.simulator import pay_telco, simulator_factory
from gateway.adapters.testmode import SandboxSpec
from gateway.domain import NotificationOutcome, PaymentMethod
from gateway.masking import mask_number

# What a result answer says: stored (the telco stops sending it), or not (it sends it again).
_STORED = frozenset(
    {
        NotificationOutcome.applied,
        NotificationOutcome.duplicate,
        NotificationOutcome.unmatched,
        NotificationOutcome.amount_mismatch,
    }
)
_INQUIRY_CODES = {
    InquiryStatus.payable: wire.VERIFY_OPEN,
    InquiryStatus.not_payable: wire.VERIFY_NOT_PAYABLE,
    InquiryStatus.rejected: wire.VERIFY_BAD_CHECKSUM,
    InquiryStatus.error: wire.VERIFY_OTHER,
}


class TelcoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_code: str = Field(min_length=1, max_length=32, description="The telco's code of the merchant")
    access_code: SecretStr
    hash_key: SecretStr = Field(description="Key of the check_sum (HMAC-SHA1)")
    api_base_url: str = Field(pattern=r"^https?://", description="The telco's merchant gateway")


def _fields_of(request: InboundRequest) -> dict[str, str]:
    """The telco's call: a JSON object or a form body (both occur), or the query string of a GET."""
    body = request.body.strip()
    if not body:
        return dict(request.query)
    if body.startswith(b"{"):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise NotificationRejected("body is not JSON") from exc
        if not isinstance(data, dict):
            raise NotificationRejected("body is not a JSON object")
        return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotificationRejected("body is neither JSON nor a form") from exc


def _amount(value: str | None) -> int | None:
    """A whole number of đồng as the telco writes it, or None."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    return int(value)


class TelcoAdapter:
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.mobile_money}),
        currencies=frozenset({"VND"}),
        min_amount=1000,
        max_amount=wire.MONTHLY_LIMIT,
        partial_refunds=True,
        accepts_partial_funds=False,
        accumulates_funds=False,
        # A redirect is only a signed URL, but a USSD push calls the telco: starting goes through the checkpoint.
        offline_start=False,
    )
    credentials_model = TelcoCredentials

    def __init__(self, profile: wire.TelcoProfile) -> None:
        self.profile = profile
        self.name = profile.provider
        self.sandbox = SandboxSpec(
            settings={"merchant_code": profile.sandbox_merchant_code},
            secret_names=("access_code", "hash_key"),
            simulator=simulator_factory(profile),
            pay=pay_telco,
        )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return settings["merchant_code"]

    # --- signing ---------------------------------------------------------------------------------------

    def _sign(self, credentials: ProviderCredentials, fields: Mapping[str, object], names: Sequence[str]) -> str:
        secrets = credentials.secrets
        return wire.sign(secrets["hash_key"], secrets["access_code"], fields, names, self.profile.encoding)

    def _signed_by(self, credentials: ProviderCredentials, fields: Mapping[str, object], names: Sequence[str]) -> bool:
        hash_key, access_code = credentials.secrets.get("hash_key"), credentials.secrets.get("access_code")
        if not hash_key or not access_code:
            return False
        return wire.check_sum_matches(hash_key, access_code, fields, names, self.profile.encoding)

    # --- calls to the telco ----------------------------------------------------------------------------

    @staticmethod
    def _merchant_code(credentials: ProviderCredentials, provider_data: Mapping[str, Any]) -> str:
        # A subscriber-started payment keeps the merchant_code the telco named it by (in test mode, a biller code).
        return str(provider_data.get("merchant_code") or credentials.settings["merchant_code"])

    async def _command(
        self, ctx: ProviderContext, fields: dict[str, str], signed: Sequence[str], answer_signed: Sequence[str]
    ) -> dict[str, str]:
        """POST one command to the telco's API, form-encoded and signed; its signed JSON answer."""
        form = {**fields, "check_sum": self._sign(ctx.credentials, fields, signed)}
        url = f"{ctx.credentials.base_url.rstrip('/')}{self.profile.api_path}"
        response = await send_provider_request(ctx.http, self.name, "POST", url, data=form)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("error_code"), str):
            raise ProviderTechnicalError(f"{self.name} answered HTTP {response.status_code} without an error_code")
        answer = {str(k): v if isinstance(v, str) else str(v) for k, v in data.items() if v is not None}
        if not self._signed_by(ctx.credentials, answer, answer_signed):
            raise ProviderTechnicalError(f"{self.name} answered with a check_sum that does not hold")
        if answer.get("order_id") != fields["order_id"]:
            raise ProviderTechnicalError(f"{self.name} answered about another order")
        return answer

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        merchant_code = ctx.credentials.settings["merchant_code"]
        order_id = payment.payment_id  # billcode = order_id = the payment: a retry names the same order
        phone = (payment.customer or {}).get("phone")
        msisdn = wire.normalise_msisdn(phone) if phone else None
        provider_data = {"order_id": order_id, "merchant_code": merchant_code}
        if payment.options.get("mobile_money", {}).get("push"):
            if msisdn is None:
                raise ProviderDeclinedError("invalid_msisdn", "A USSD push needs the customer's Vietnamese mobile")
            return await self._push(ctx, payment, merchant_code, msisdn, provider_data)
        fields = {
            "version": wire.VERSION,
            "command": wire.PAYMENT_COMMAND,
            "billcode": order_id,
            "merchant_code": merchant_code,
            "order_id": order_id,
            "trans_amount": str(payment.amount),
            "desc": to_qr_ascii(payment.description or f"Thanh toan {payment.reference}")[:255],
            "locale": "vi",
            "return_url": ctx.return_url,
            "cancel_url": ctx.return_url,
            "login_msisdn": msisdn or "",
        }
        fields["check_sum"] = self._sign(ctx.credentials, fields, wire.PAYMENT_REDIRECT_SIGNED)
        url = f"{ctx.credentials.base_url.rstrip('/')}{self.profile.payment_page_path}?{urlencode(fields)}"
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=order_id,
            next_action={"type": "redirect", "url": url},
            provider_data=provider_data,
        )

    async def _push(
        self,
        ctx: ProviderContext,
        payment: StartPayment,
        merchant_code: str,
        msisdn: str,
        provider_data: dict[str, str],
    ) -> StartResult:
        fields = {
            "billcode": payment.payment_id,
            "cmd": wire.PUSH_COMMAND,
            "merchant_code": merchant_code,
            "msisdn": msisdn,
            "order_id": payment.payment_id,
            "trans_amount": str(payment.amount),
            "version": wire.VERSION,
        }
        answer = await self._command(ctx, fields, wire.PUSH_SIGNED, wire.PUSH_ANSWER_SIGNED)
        code = answer["error_code"]
        if code in self.profile.request_error_codes:
            raise ProviderTechnicalError(f"{self.name}_{code}: the telco refused the request")
        if code != wire.SUCCESS:
            raise ProviderDeclinedError(self.profile.failure_code(code), f"{self.profile.display_name} code {code}")
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=payment.payment_id,
            next_action={
                "type": "await_customer",
                "channel": "ussd",
                "message": f"{self.profile.display_name} đã gửi yêu cầu thanh toán tới số {mask_number(msisdn)}: "
                "nhập mã PIN trên điện thoại để xác nhận.",
            },
            provider_data={**provider_data, "msisdn": mask_number(msisdn)},
        )

    async def _inquire(self, ctx: ProviderContext, merchant_code: str, order_id: str) -> dict[str, str]:
        fields = {
            "cmd": wire.INQUIRY_COMMAND,
            "merchant_code": merchant_code,
            "order_id": order_id,
            "version": wire.VERSION,
        }
        return await self._command(ctx, fields, wire.INQUIRY_SIGNED, wire.INQUIRY_ANSWER_SIGNED)

    async def fetch_status(self, ctx: ProviderContext, payment: PaymentLookup) -> StatusResult:
        order_id = str(payment.provider_data.get("order_id") or payment.provider_reference or payment.payment_id)
        answer = await self._inquire(ctx, self._merchant_code(ctx.credentials, payment.provider_data), order_id)
        code, profile = answer["error_code"], self.profile
        if code == wire.SUCCESS and answer.get("payment_status") == wire.PAID:
            amount = _amount(answer.get("trans_amount"))
            transaction = answer.get("vt_transaction_id")
            if amount is None or not transaction:
                raise ProviderTechnicalError(f"{self.name} reports a payment without its amount or transaction")
            return StatusResult(ProviderStatus.succeeded, amount, transaction)
        if code in profile.pending_codes or code in profile.unknown_order_codes or code == wire.SUCCESS:
            # Not paid yet. A redirect's order exists at the telco only once the payer opens its page, so "no such
            # order" is no failure either: the payment expires on its own.
            return StatusResult(ProviderStatus.requires_action, 0, None)
        if code in profile.request_error_codes:
            raise ProviderTechnicalError(f"{self.name}_{code}: the telco refused the query")
        return StatusResult(
            ProviderStatus.failed,
            0,
            answer.get("vt_transaction_id") or None,
            profile.failure_code(code),
            f"{profile.display_name} code {code}",
        )

    async def refund(self, ctx: ProviderContext, refund: StartRefund) -> RefundResult:
        original = str(
            refund.payment_provider_data.get("order_id") or refund.payment_provider_reference or refund.payment_id
        )
        full = refund.amount >= refund.payment_amount_received
        fields = {
            "cmd": wire.REFUND_COMMAND,
            "merchant_code": self._merchant_code(ctx.credentials, refund.payment_provider_data),
            "order_id": refund.refund_id,  # the refund's own request: a retry names the same one
            "originalRequestId": original,
            "refundType": wire.REFUND_FULL if full else wire.REFUND_PARTIAL,
            "trans_amount": str(refund.amount),
            "trans_content": to_qr_ascii(refund.reason or f"Hoan tien {refund.payment_id}")[:255],
            "version": wire.VERSION,
        }
        answer = await self._command(ctx, fields, wire.REFUND_SIGNED, wire.REFUND_ANSWER_SIGNED)
        code, profile = answer["error_code"], self.profile
        reference = answer.get("refund_transaction_id") or None
        if code == wire.SUCCESS:
            return RefundResult(RefundOutcome.succeeded, reference)
        if code in profile.pending_codes:
            return RefundResult(RefundOutcome.pending, reference)
        if code in profile.request_error_codes:
            raise ProviderTechnicalError(f"{self.name}_{code}: the telco refused the refund request")
        raise ProviderDeclinedError(f"{self.name}_{code}", f"{profile.display_name} refused the refund")

    async def fetch_refund_status(self, ctx: ProviderContext, refund: RefundLookup) -> RefundResult:
        # A refund is an order of its own at the telco (its order_id is the refund's id): TRANS_INQUIRY finds it.
        answer = await self._inquire(
            ctx, self._merchant_code(ctx.credentials, refund.payment_provider_data), refund.refund_id
        )
        code, profile = answer["error_code"], self.profile
        reference = answer.get("vt_transaction_id") or refund.provider_reference
        if code == wire.SUCCESS and answer.get("payment_status") == wire.PAID:
            return RefundResult(RefundOutcome.succeeded, reference)
        if code in profile.unknown_order_codes:
            return RefundResult(
                RefundOutcome.failed, None, "refund_not_found", f"{profile.display_name} has no such refund"
            )
        if code in profile.pending_codes or code == wire.SUCCESS:
            return RefundResult(RefundOutcome.pending, reference)
        if code in profile.request_error_codes:
            raise ProviderTechnicalError(f"{self.name}_{code}: the telco refused the query")
        return RefundResult(
            RefundOutcome.failed, reference, f"{self.name}_{code}", f"{profile.display_name} refused the refund"
        )

    # --- calls from the telco --------------------------------------------------------------------------

    def notification_account(self, request: InboundRequest) -> str | None:
        try:
            return _fields_of(request).get("merchant_code")
        except NotificationRejected:
            return None

    inquiry_account = notification_account

    def _authenticated(
        self, request: InboundRequest, credentials: ProviderCredentials, names: Sequence[str]
    ) -> dict[str, str]:
        fields = _fields_of(request)
        if not self._signed_by(credentials, fields, names):
            raise NotificationRejected("invalid check_sum")
        if fields.get("merchant_code") != credentials.settings.get("merchant_code"):
            raise NotificationRejected("merchant_code is not this account's")
        return fields

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        fields = self._authenticated(request, credentials, wire.RESULT_SIGNED)
        missing = [name for name in wire.RESULT_SIGNED if name not in fields]
        if missing:
            raise NotificationRejected(f"missing {', '.join(missing)}")
        amount = _amount(fields["trans_amount"])
        if amount is None:
            raise NotificationUnusable(
                f"trans_amount {fields['trans_amount'][:40]} is not a whole number", NotificationOutcome.amount_mismatch
            )
        code, order_id, transaction = fields["error_code"], fields["order_id"], fields["vt_transaction_id"]
        if code == wire.SUCCESS and fields["payment_status"] == wire.PAID:
            if not transaction:
                raise NotificationRejected("a payment without vt_transaction_id")
            return [
                FundsReceived(
                    provider_transaction_id=transaction,
                    payment_references=[order_id],
                    amount=amount,
                    currency="VND",
                    payer={"msisdn": mask_number(fields["cust_msisdn"])} if fields["cust_msisdn"] else {},
                )
            ]
        if code in self.profile.pending_codes:
            return []  # the payer has not finished
        return [
            PaymentDeclined(
                provider_transaction_id=transaction or f"{order_id}:{code}",
                payment_references=[order_id],
                failure_code=self.profile.failure_code(code),
                failure_message=f"{self.profile.display_name} code {code}",
                amount=amount,
            )
        ]

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        # The telco sends the browser back with the result's fields and check_sum.
        fields = self._authenticated(request, credentials, wire.RESULT_SIGNED)
        if not fields.get("order_id"):
            raise NotificationRejected("no order_id")
        return [fields["order_id"]]

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        code = wire.RESULT_STORED if outcome in _STORED else wire.RESULT_NOT_STORED
        return OutboundResponse(200, orjson.dumps({"error_code": code}))

    def acknowledge_request(
        self, outcome: NotificationOutcome, request: InboundRequest, credentials: ProviderCredentials | None
    ) -> OutboundResponse:
        try:
            fields = _fields_of(request)
        except NotificationRejected:
            fields = {}
        answer = {
            "error_code": wire.RESULT_STORED if outcome in _STORED else wire.RESULT_NOT_STORED,
            "merchant_code": fields.get("merchant_code", ""),
            "order_id": fields.get("order_id", ""),
            "return_url": "",
            "return_bill_code": fields.get("billcode", ""),
            "return_other_info": "",
        }
        # Only a genuine result is answered with a signature: nothing is signed for a caller nobody authenticated.
        answer["check_sum"] = self._sign(credentials, answer, wire.RESULT_ANSWER_SIGNED) if credentials else ""
        return OutboundResponse(200, orjson.dumps(answer))

    # --- verify order (BillInquiry) --------------------------------------------------------------------

    def verify_bill_inquiry(self, request: InboundRequest, credentials: ProviderCredentials) -> InquiryRequest:
        fields = self._authenticated(request, credentials, wire.VERIFY_SIGNED)
        code, order_id = fields.get("billcode", ""), fields.get("order_id", "")
        if not code or not order_id:
            raise NotificationRejected("billcode and order_id are required")
        amount: int | None = None
        if "trans_amount" in fields:
            amount = _amount(fields["trans_amount"])
            if amount is None:
                raise NotificationRejected("trans_amount is not a whole number")
        return InquiryRequest(code=code, order_id=order_id, amount=amount)

    def answer_bill_inquiry(
        self, request: InboundRequest, credentials: ProviderCredentials | None, answer: InquiryAnswer
    ) -> OutboundResponse:
        try:
            fields = _fields_of(request)
        except NotificationRejected:
            fields = {}
        body: dict[str, str] = {
            "billcode": fields.get("billcode", ""),
            "error_code": _INQUIRY_CODES[answer.status],
            "merchant_code": fields.get("merchant_code", ""),
            "order_id": fields.get("order_id", ""),
            "trans_amount": str(answer.amount) if answer.amount is not None else "0",
        }
        body["check_sum"] = self._sign(credentials, body, wire.VERIFY_ANSWER_SIGNED) if credentials else ""
        if answer.customer_name:
            body["customer_name"] = answer.customer_name  # unsigned: for the telco's screen only
        return OutboundResponse(200, orjson.dumps(body))

    # --- the sandbox's biller list (SandboxBillers) ----------------------------------------------------

    def verify_biller_list_request(self, request: InboundRequest, credentials: ProviderCredentials) -> None:
        fields = dict(request.query)
        if fields.get("cmd") != wire.BILLERS_COMMAND or not self._signed_by(credentials, fields, wire.BILLERS_SIGNED):
            raise NotificationRejected("invalid check_sum")
