"""VNPAY payment gateway (cards, ATM/Napas, VNPAY-QR): a signed redirect URL to VNPAY's payment page, the
signed server-to-server IPN to confirm, and the merchant API (querydr, refund) to ask and to refund
(PROVIDERS.md, "VNPAY payment gateway", version 2.1.0).

Amounts: VNPAY carries VND x 100 on the wire; the conversion happens only in this module.
Times: every VNPAY date is yyyyMMddHHmmss in GMT+7, whatever the server's own zone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.adapters.base import (
    Capabilities,
    FundsReceived,
    InboundRequest,
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
from gateway.adapters.testmode import SandboxSpec
from gateway.adapters.vnpay.simulator import create_simulator, pay_vnpay
from gateway.adapters.vnpay.wire import (
    API_PATH,
    CODE_MAX,
    CREATED_BY,
    CURRENCY,
    HASH_FIELD,
    IP_ADDR,
    ORDER_INFO_MAX,
    PAY_PATH,
    QUERYDR_REQUEST_FIELDS,
    QUERYDR_RESPONSE_FIELDS,
    REFUND_REQUEST_FIELDS,
    REFUND_RESPONSE_FIELDS,
    REQUEST_ID_MAX,
    TRANSACTION_NO_MAX,
    TRANSACTION_TYPE_FULL,
    TRANSACTION_TYPE_PARTIAL,
    TXN_REF_MAX,
    VERSION,
    MerchantApiAnswer,
    hash_data,
    hashes_equal,
    pipe_hash,
    query_of,
    request_id_of,
    secure_hash,
    txn_ref_of,
    vnd_from_wire,
    vnpay_date,
)
from gateway.domain import NotificationOutcome, PaymentMethod

# vnp_ResponseCode of a payment (IPN, return) -> the gateway's failure_code.
FAILURE_CODES: dict[str, str] = {"24": "payer_canceled", "11": "expired", "51": "insufficient_funds"}
RESPONSE_MESSAGES: dict[str, str] = {
    "07": "Funds debited but the transaction is suspected of fraud",
    "09": "The card or account is not registered for internet banking",
    "10": "The payer failed card or account authentication more than 3 times",
    "11": "The payment window expired",
    "12": "The card or account is locked",
    "13": "The payer entered a wrong one-time password",
    "24": "The payer canceled the payment",
    "51": "Insufficient funds",
    "65": "The account exceeded its daily limit",
    "75": "The paying bank is under maintenance",
    "79": "The payer entered a wrong payment password too many times",
    "99": "Other error",
}

# Refund answers that judge the refund itself (not found, refused), as opposed to the request's form.
_REFUND_REFUSALS = frozenset({"vnpay_91", "vnpay_95"})

_ACK: dict[NotificationOutcome, tuple[str, str]] = {
    NotificationOutcome.rejected: ("97", "Invalid signature"),
    NotificationOutcome.unmatched: ("01", "Order not found"),
    NotificationOutcome.amount_mismatch: ("04", "Invalid amount"),
    NotificationOutcome.duplicate: ("02", "Order already confirmed"),
    NotificationOutcome.applied: ("00", "Confirm Success"),
    NotificationOutcome.error: ("99", "Unknown error"),
}


# --- the adapter ---------------------------------------------------------------------------------------


class VNPayCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tmn_code: str = Field(pattern=r"^[0-9A-Za-z]{8}$", description="The terminal code VNPAY assigned (vnp_TmnCode)")
    hash_secret: SecretStr = Field(description="The key of vnp_SecureHash (HMAC-SHA512)")
    api_base_url: str = Field(
        pattern=r"^https?://",
        description="VNPAY's host serving /paymentv2/vpcpay.html and /merchant_webapi/api/transaction, "
        "e.g. https://sandbox.vnpayment.vn",
    )
    bank_code: str | None = Field(
        default=None,
        pattern=r"^(VNPAYQR|VNBANK|INTCARD)$",
        description="Skip VNPAY's method choice: VNPAYQR, VNBANK (domestic ATM card) or INTCARD",
    )


class VNPayAdapter:
    name = "vnpay"
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.card}),
        currencies=frozenset({CURRENCY}),
        min_amount=5000,
        max_amount=999_999_999,
        partial_refunds=True,
        accepts_partial_funds=False,
        accumulates_funds=False,
        offline_start=True,
    )
    credentials_model = VNPayCredentials
    sandbox = SandboxSpec(
        settings={"tmn_code": "GWSANDBX"}, secret_names=("hash_secret",), simulator=create_simulator, pay=pay_vnpay
    )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return settings["tmn_code"]

    # --- payments ---------------------------------------------------------------------------------------

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        if payment.currency != CURRENCY:
            raise ProviderDeclinedError("currency_not_supported", "VNPAY charges VND only")
        credentials = ctx.credentials
        txn_ref = txn_ref_of(payment.payment_id)
        if not txn_ref or len(txn_ref) > TXN_REF_MAX:
            raise ProviderDeclinedError("invalid_reference", "The payment id does not fit vnp_TxnRef")
        create_date = vnpay_date(payment.created_at)
        params: dict[str, str] = {
            "vnp_Version": VERSION,
            "vnp_Command": "pay",
            "vnp_TmnCode": credentials.settings["tmn_code"],
            "vnp_Amount": str(payment.amount * 100),
            "vnp_CurrCode": CURRENCY,
            "vnp_TxnRef": txn_ref,
            "vnp_OrderInfo": to_qr_ascii(f"Thanh toan {payment.reference}")[:ORDER_INFO_MAX],
            "vnp_OrderType": "billpayment",
            "vnp_Locale": "vn",
            "vnp_ReturnUrl": ctx.return_url,
            "vnp_IpAddr": IP_ADDR,
            "vnp_CreateDate": create_date,
            "vnp_ExpireDate": vnpay_date(payment.expires_at),
        }
        bank_code = credentials.settings.get("bank_code")
        if bank_code:
            params["vnp_BankCode"] = bank_code
        signature = secure_hash(_secret(credentials), params)
        url = f"{_base(credentials)}{PAY_PATH}?{hash_data(params)}&{HASH_FIELD}={signature}"
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=txn_ref,
            next_action={"type": "redirect", "url": url},
            provider_data={"txn_ref": txn_ref, "create_date": create_date, "payment_url": url},
        )

    async def fetch_status(self, ctx: ProviderContext, payment: PaymentLookup) -> StatusResult:
        credentials = ctx.credentials
        txn_ref = str(
            payment.provider_data.get("txn_ref") or payment.provider_reference or txn_ref_of(payment.payment_id)
        )
        body: dict[str, Any] = {
            "vnp_RequestId": uuid.uuid4().hex,
            "vnp_Version": VERSION,
            "vnp_Command": "querydr",
            "vnp_TmnCode": credentials.settings["tmn_code"],
            "vnp_TxnRef": txn_ref,
            "vnp_TransactionDate": str(payment.provider_data.get("create_date") or vnpay_date(payment.created_at)),
            "vnp_CreateDate": vnpay_date(ctx.clock.now()),
            "vnp_IpAddr": IP_ADDR,
            "vnp_OrderInfo": f"Truy van giao dich {txn_ref}",
        }
        body[HASH_FIELD] = pipe_hash(_secret(credentials), QUERYDR_REQUEST_FIELDS, body)
        answer = await _call_api(ctx, body, QUERYDR_RESPONSE_FIELDS)
        code = answer.vnp_ResponseCode
        if code == "91":  # VNPAY has no such transaction: the payer never paid
            return StatusResult(ProviderStatus.requires_action, 0, None)
        if code != "00":
            raise ProviderTechnicalError(f"VNPAY querydr answered {code}: {answer.vnp_Message}")
        if answer.vnp_TxnRef not in ("", txn_ref):
            raise ProviderTechnicalError("VNPAY querydr answered about another transaction")
        status = answer.vnp_TransactionStatus
        if status == "00":
            amount = vnd_from_wire(answer.vnp_Amount)
            transaction_no = answer.vnp_TransactionNo
            if amount is None or transaction_no in ("", "0"):
                raise ProviderTechnicalError("VNPAY querydr reported a success without an amount or number")
            return StatusResult(ProviderStatus.succeeded, amount, transaction_no)
        if status in ("01", "05", "06"):
            return StatusResult(ProviderStatus.requires_action, 0, None)
        if status == "02":
            return StatusResult(
                ProviderStatus.failed,
                0,
                None,
                failure_code="vnpay_02",
                failure_message="VNPAY reports the transaction failed",
            )
        raise ProviderTechnicalError(f"VNPAY querydr reported transaction status {status!r}")

    # --- refunds ----------------------------------------------------------------------------------------

    async def refund(self, ctx: ProviderContext, refund: StartRefund) -> RefundResult:
        full = refund.amount == refund.payment_amount_received
        body = self._refund_body(
            ctx,
            request_id=request_id_of(refund.refund_id),
            transaction_type=TRANSACTION_TYPE_FULL if full else TRANSACTION_TYPE_PARTIAL,
            payment_provider_data=refund.payment_provider_data,
            payment_provider_reference=refund.payment_provider_reference,
            amount=refund.amount,
            transaction_no=refund.provider_transaction_id,
            create_date=vnpay_date(ctx.clock.now()),
        )
        return await self._send_refund(ctx, body)

    async def fetch_refund_status(self, ctx: ProviderContext, refund: RefundLookup) -> RefundResult:
        """VNPAY has no refund lookup: re-send the same refund request (same vnp_RequestId). VNPAY answers
        94 while the first is in progress and 00 once it is done; a refund it never received is made now."""
        # A card payment is charged exactly its amount, which the payment URL carries (VND x 100).
        charged = vnd_from_wire(query_of(str(refund.payment_provider_data.get("payment_url", ""))).get("vnp_Amount"))
        body = self._refund_body(
            ctx,
            request_id=request_id_of(refund.refund_id),
            transaction_type=TRANSACTION_TYPE_FULL if refund.amount == charged else TRANSACTION_TYPE_PARTIAL,
            payment_provider_data=refund.payment_provider_data,
            payment_provider_reference=refund.payment_provider_reference,
            amount=refund.amount,
            transaction_no=refund.provider_transaction_id,
            create_date=vnpay_date(refund.created_at),
        )
        try:
            return await self._send_refund(ctx, body)
        except ProviderDeclinedError as exc:
            if exc.code in _REFUND_REFUSALS:
                return RefundResult(RefundOutcome.failed, None, exc.code, exc.message)
            # A checksum, terminal or format error says nothing about the first request: it may have been
            # refunded, so the refund is not failed on a guess.
            raise ProviderTechnicalError(f"VNPAY answered the refund re-send with {exc.code}") from exc

    def _refund_body(
        self,
        ctx: ProviderContext,
        *,
        request_id: str,
        transaction_type: str,
        payment_provider_data: Mapping[str, Any],
        payment_provider_reference: str | None,
        amount: int,
        transaction_no: str | None,
        create_date: str,
    ) -> dict[str, Any]:
        if not request_id or len(request_id) > REQUEST_ID_MAX:
            raise ProviderDeclinedError("invalid_request_id", "The refund id does not fit vnp_RequestId")
        txn_ref = str(payment_provider_data.get("txn_ref") or payment_provider_reference or "")
        transaction_date = str(payment_provider_data.get("create_date") or "")
        if not txn_ref or not transaction_date:
            raise ProviderDeclinedError("payment_unknown", "The payment's VNPAY reference is not known")
        body: dict[str, Any] = {
            "vnp_RequestId": request_id,
            "vnp_Version": VERSION,
            "vnp_Command": "refund",
            "vnp_TmnCode": ctx.credentials.settings["tmn_code"],
            "vnp_TransactionType": transaction_type,
            "vnp_TxnRef": txn_ref,
            "vnp_Amount": amount * 100,
            "vnp_TransactionNo": transaction_no or "",
            "vnp_TransactionDate": transaction_date,
            "vnp_CreateBy": CREATED_BY,
            "vnp_CreateDate": create_date,
            "vnp_IpAddr": IP_ADDR,
            "vnp_OrderInfo": f"Hoan tien giao dich {txn_ref}",
        }
        body[HASH_FIELD] = pipe_hash(_secret(ctx.credentials), REFUND_REQUEST_FIELDS, body)
        return body

    async def _send_refund(self, ctx: ProviderContext, body: Mapping[str, Any]) -> RefundResult:
        answer = await _call_api(ctx, body, REFUND_RESPONSE_FIELDS)
        code = answer.vnp_ResponseCode
        request_id = str(body["vnp_RequestId"])
        if code == "00":
            transaction_no = answer.vnp_TransactionNo
            return RefundResult(
                RefundOutcome.succeeded, transaction_no if transaction_no not in ("", "0") else request_id
            )
        if code == "94":  # the same request is already being processed at VNPAY
            return RefundResult(RefundOutcome.pending, request_id)
        if code in ("99", ""):
            raise ProviderTechnicalError(f"VNPAY refund answered {code or 'no code'}: {answer.vnp_Message}")
        raise ProviderDeclinedError(f"vnpay_{code}", answer.vnp_Message or "VNPAY refused the refund")

    # --- callbacks --------------------------------------------------------------------------------------

    def notification_account(self, request: InboundRequest) -> str | None:
        return request.query.get("vnp_TmnCode")

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        params = _verified(request, credentials)
        txn_ref = params.get("vnp_TxnRef", "")
        if not txn_ref:
            raise NotificationRejected("malformed: no vnp_TxnRef")
        amount = vnd_from_wire(params.get("vnp_Amount", ""))
        if amount is None:  # signed by VNPAY, so answered "04 invalid amount", not "97 invalid signature"
            raise NotificationUnusable(
                "vnp_Amount is not a whole number of VND x 100", NotificationOutcome.amount_mismatch
            )
        response_code = params.get("vnp_ResponseCode", "")
        transaction_status = params.get("vnp_TransactionStatus", "")
        transaction_no = params.get("vnp_TransactionNo", "")
        if len(transaction_no) > TRANSACTION_NO_MAX or max(len(response_code), len(transaction_status)) > CODE_MAX:
            raise NotificationRejected("malformed: vnp_TransactionNo, vnp_ResponseCode or its status too long")
        if response_code == "00" and transaction_status == "00":
            if transaction_no in ("", "0"):
                raise NotificationRejected("malformed: a success without vnp_TransactionNo")
            return [
                FundsReceived(
                    provider_transaction_id=transaction_no,
                    payment_references=[txn_ref],
                    amount=amount,
                    currency=CURRENCY,
                    account_key=params.get("vnp_TmnCode"),
                    payer={
                        "bank_code": params.get("vnp_BankCode", ""),
                        "card_type": params.get("vnp_CardType", ""),
                    },
                    content=params.get("vnp_OrderInfo"),
                )
            ]
        code = response_code if response_code not in ("", "00") else transaction_status or "unknown"
        return [
            PaymentDeclined(
                provider_transaction_id=transaction_no if transaction_no not in ("", "0") else f"{txn_ref}:{code}",
                payment_references=[txn_ref],
                failure_code=FAILURE_CODES.get(code, f"vnpay_{code}"),
                failure_message=RESPONSE_MESSAGES.get(code, f"VNPAY reported code {code}"),
                amount=amount,
            )
        ]

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        params = _verified(request, credentials)
        txn_ref = params.get("vnp_TxnRef", "")
        if not txn_ref:
            raise NotificationRejected("malformed: no vnp_TxnRef")
        return [txn_ref]

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        code, message = _ACK.get(outcome, _ACK[NotificationOutcome.error])
        return OutboundResponse(200, orjson.dumps({"RspCode": code, "Message": message}))


# --- helpers -------------------------------------------------------------------------------------------


def _secret(credentials: ProviderCredentials) -> str:
    secret = credentials.secrets.get("hash_secret")
    if not secret:
        raise ProviderDeclinedError("provider_not_configured", "No VNPAY hash secret is configured")
    return secret


def _base(credentials: ProviderCredentials) -> str:
    return credentials.base_url.rstrip("/")


def _verified(request: InboundRequest, credentials: ProviderCredentials) -> dict[str, str]:
    """The vnp_* fields of an IPN or a browser return, once their signature and terminal are checked."""
    secret = credentials.secrets.get("hash_secret")
    if not secret:
        raise NotificationRejected("no hash secret configured for this account")
    params = {name: value for name, value in request.query.items() if name.startswith("vnp_")}
    given = params.get(HASH_FIELD, "")
    if not given:
        raise NotificationRejected("missing vnp_SecureHash")
    if not hashes_equal(secure_hash(secret, params), given):
        raise NotificationRejected("invalid signature")
    if params.get("vnp_TmnCode") != credentials.settings.get("tmn_code"):
        raise NotificationRejected("vnp_TmnCode is not this account's")
    return params


async def _call_api(ctx: ProviderContext, body: Mapping[str, Any], response_fields: Sequence[str]) -> MerchantApiAnswer:
    """POST to the merchant API; the answer with its checksum verified."""
    credentials = ctx.credentials
    response = await send_provider_request(
        ctx.http, "VNPAY", "POST", f"{_base(credentials)}{API_PATH}", json=dict(body)
    )
    if response.status_code != 200:
        raise ProviderTechnicalError(f"VNPAY answered HTTP {response.status_code}")
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderTechnicalError("VNPAY answered with a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise ProviderTechnicalError("VNPAY answered with JSON that is not an object")
    answer = {str(k): "" if v is None else str(v) for k, v in data.items()}
    given = answer.get(HASH_FIELD, "")
    if given:
        if not hashes_equal(pipe_hash(_secret(credentials), response_fields, answer), given):
            raise ProviderTechnicalError("VNPAY's answer carries an invalid checksum")
    elif answer.get("vnp_ResponseCode") == "00":
        raise ProviderTechnicalError("VNPAY's answer is not signed")
    return MerchantApiAnswer.model_validate(answer)
