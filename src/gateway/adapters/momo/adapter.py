"""MoMo e-wallet, API v2 (PROVIDERS.md, "MoMo e-wallet API v2"): a captureWallet order the payer approves in
the MoMo app (redirect, deeplink or QR), a signed IPN and browser return to confirm, the query API for the
janitor, and the refund API.

Every request and callback is signed the same way (`momo_signature`); the sandbox simulator uses the same
function, so a change here is a change of protocol for both sides.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

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
from gateway.adapters.http import parse_answer, send_provider_request
from gateway.adapters.momo.simulator import create_simulator, pay_momo
from gateway.adapters.momo.wire import (
    CREATE_PATH,
    CREATE_SIGNED,
    CREATE_UNKNOWN_CODES,
    LANG,
    MAINTENANCE_CODE,
    ORDER_NOT_FOUND_CODE,
    PAID_CODES,
    PENDING_CODES,
    QUERY_PATH,
    QUERY_SIGNED,
    REFUND_PATH,
    REFUND_QUERY_PATH,
    REFUND_SIGNED,
    REFUND_UNKNOWN_CODES,
    REQUEST_TYPE,
    RESULT_SIGNED,
    CreateAnswer,
    PaymentResult,
    QueryAnswer,
    RefundAnswer,
    RefundQueryAnswer,
    payment_failure_code,
    payment_status_of,
    sign_fields,
    signature_matches,
)
from gateway.adapters.testmode import SandboxSpec
from gateway.domain import NotificationOutcome, PaymentMethod


class MoMoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_code: str = Field(min_length=1, max_length=20, description="MoMo's partnerCode of the merchant")
    access_key: SecretStr
    secret_key: SecretStr = Field(description="Key of MoMo's HMAC-SHA256 signatures")
    api_base_url: str = Field(pattern=r"^https?://", description="MoMo's API, e.g. https://payment.momo.vn")


@dataclass(frozen=True)
class _Exchange:
    status_code: int
    body: dict[str, Any] | None

    @property
    def result_code(self) -> int | None:
        code = self.body.get("resultCode") if self.body is not None else None
        return code if isinstance(code, int) and not isinstance(code, bool) else None


class MoMoAdapter:
    name = "momo"
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.ewallet}),
        currencies=frozenset({"VND"}),
        min_amount=1000,
        max_amount=50_000_000,
        partial_refunds=True,
        accepts_partial_funds=False,
        accumulates_funds=False,
        offline_start=False,
    )
    credentials_model = MoMoCredentials
    sandbox = SandboxSpec(
        settings={"partner_code": "MOMOGWSANDBOX"},
        secret_names=("access_key", "secret_key"),
        simulator=create_simulator,
        pay=pay_momo,
    )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return settings["partner_code"]

    # --- calls to MoMo ---------------------------------------------------------------------------------

    def _signed(self, ctx: ProviderContext, body: dict[str, object], names: Sequence[str]) -> dict[str, object]:
        secrets = ctx.credentials.secrets
        return {**body, "signature": sign_fields(secrets["secret_key"], secrets["access_key"], body, names)}

    async def _post(self, ctx: ProviderContext, path: str, body: dict[str, object]) -> _Exchange:
        url = f"{ctx.credentials.base_url.rstrip('/')}{path}"
        response = await send_provider_request(ctx.http, "momo", "POST", url, json=body)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            data = None
        return _Exchange(response.status_code, data if isinstance(data, dict) else None)

    def _base_body(self, ctx: ProviderContext, order_id: str, request_id: str) -> dict[str, object]:
        return {
            "partnerCode": ctx.credentials.settings["partner_code"],
            "requestId": request_id,
            "orderId": order_id,
            "lang": LANG,
        }

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        # The payment id is the orderId and the requestId: a retry of the same payment cannot create a second
        # order (MoMo answers 41, duplicate orderId).
        order_id = payment.payment_id
        body = self._signed(
            ctx,
            {
                **self._base_body(ctx, order_id, order_id),
                "amount": payment.amount,
                "orderInfo": f"Thanh toan {to_qr_ascii(payment.reference)}",
                "redirectUrl": ctx.return_url,
                "ipnUrl": ctx.notification_url,
                "requestType": REQUEST_TYPE,
                "extraData": "",
            },
            CREATE_SIGNED,
        )
        exchange = await self._post(ctx, CREATE_PATH, body)
        code = exchange.result_code
        if code is None:
            if exchange.status_code in (502, 503):
                # Modelling choice: MoMo's own services always answer with a resultCode, so a 502/503 without
                # one comes from the front door (load balancer, maintenance page) that refused the request
                # before any order was created. Retrying the same payment is then safe.
                raise ProviderTechnicalError(
                    f"momo refused at the front door (HTTP {exchange.status_code})", certainly_not_created=True
                )
            raise ProviderTechnicalError(f"momo answered HTTP {exchange.status_code} without a resultCode")
        answer = parse_answer(CreateAnswer, "momo", exchange.body)
        if code == 0:
            if not answer.payUrl or (answer.orderId is not None and answer.orderId != order_id):
                raise ProviderTechnicalError("momo accepted the order but its answer does not describe it")
            return StartResult(
                status=ProviderStatus.requires_action,
                provider_reference=order_id,
                next_action={
                    "type": "redirect",
                    "url": answer.payUrl,
                    "deeplink": answer.deeplink,
                    "qr_code_url": answer.qrCodeUrl,
                },
                provider_data={"order_id": order_id},
            )
        if code == MAINTENANCE_CODE:
            raise ProviderTechnicalError("momo is under maintenance", certainly_not_created=True)
        if code in CREATE_UNKNOWN_CODES or exchange.status_code >= 500:
            raise ProviderTechnicalError(f"momo_{code}: {answer.message}")
        # A declared refusal (bad signature, amount, format...): nothing was created.
        raise ProviderDeclinedError(f"momo_{code}", answer.message or "MoMo refused the order")

    async def fetch_status(self, ctx: ProviderContext, payment: PaymentLookup) -> StatusResult:
        order_id = str(payment.provider_data.get("order_id") or payment.provider_reference or payment.payment_id)
        body = self._signed(ctx, self._base_body(ctx, order_id, uuid.uuid4().hex), QUERY_SIGNED)
        exchange = await self._post(ctx, QUERY_PATH, body)
        if exchange.result_code is None:
            raise ProviderTechnicalError(f"momo answered HTTP {exchange.status_code} without a resultCode")
        answer = parse_answer(QueryAnswer, "momo", exchange.body)
        code = answer.resultCode
        if code in PAID_CODES:
            # The same transaction id as the IPN's, so an IPN arriving after the query is a duplicate.
            return StatusResult(ProviderStatus.succeeded, answer.amount, str(answer.transId))
        if code in PENDING_CODES:
            return StatusResult(payment_status_of(code), 0, None)
        if code >= 1000 or code == ORDER_NOT_FOUND_CODE:
            # A payment outcome (1xxx), or MoMo has no such order: the payer can never pay it.
            return StatusResult(
                ProviderStatus.failed,
                0,
                str(answer.transId) if answer.transId else None,
                payment_failure_code(code),
                answer.message or None,
            )
        # 1-99 other than 42 are about the request (credentials, format, availability), not the payment.
        raise ProviderTechnicalError(f"momo_{code}: {answer.message}")

    async def refund(self, ctx: ProviderContext, refund: StartRefund) -> RefundResult:
        trans_id = refund.provider_transaction_id
        if trans_id is None or not trans_id.isdigit():
            raise ProviderDeclinedError("momo_transaction_unknown", "No MoMo transaction is known for this payment")
        body = self._signed(
            ctx,
            {
                **self._base_body(ctx, refund.refund_id, refund.refund_id),
                "amount": refund.amount,
                "transId": int(trans_id),
                "description": to_qr_ascii(refund.reason or f"Hoan tien {refund.payment_id}")[:255],
            },
            REFUND_SIGNED,
        )
        exchange = await self._post(ctx, REFUND_PATH, body)
        if exchange.result_code is None:
            # Unlike a create, a refund answered by the front door stays pending: failing it on a guess could
            # hide money that left, and the refund query tells which it was.
            raise ProviderTechnicalError(f"momo answered HTTP {exchange.status_code} without a resultCode")
        answer = parse_answer(RefundAnswer, "momo", exchange.body)
        code = answer.resultCode
        if code == 0:
            return RefundResult(RefundOutcome.succeeded, str(answer.transId) if answer.transId else None)
        if code in PENDING_CODES:
            return RefundResult(RefundOutcome.pending, str(answer.transId) if answer.transId else None)
        if code in REFUND_UNKNOWN_CODES or exchange.status_code >= 500:
            raise ProviderTechnicalError(f"momo_{code}: {answer.message}")
        raise ProviderDeclinedError(f"momo_{code}", answer.message or "MoMo refused the refund")

    async def fetch_refund_status(self, ctx: ProviderContext, refund: RefundLookup) -> RefundResult:
        order_id = str(
            refund.payment_provider_data.get("order_id") or refund.payment_provider_reference or refund.payment_id
        )
        body = self._signed(ctx, self._base_body(ctx, order_id, uuid.uuid4().hex), QUERY_SIGNED)
        exchange = await self._post(ctx, REFUND_QUERY_PATH, body)
        if exchange.result_code is None:
            raise ProviderTechnicalError(f"momo answered HTTP {exchange.status_code} without a resultCode")
        answer = parse_answer(RefundQueryAnswer, "momo", exchange.body)
        if answer.resultCode != 0:
            raise ProviderTechnicalError(f"momo_{answer.resultCode}: {answer.message}")
        entry = next((e for e in answer.refundTrans if e.orderId == refund.refund_id), None)
        if entry is None:
            # MoMo lists every refund of the order: one it does not list never reached it.
            return RefundResult(RefundOutcome.failed, None, "refund_not_found", "MoMo has no such refund")
        reference = str(entry.transId) if entry.transId else None
        if entry.resultCode == 0:
            return RefundResult(RefundOutcome.succeeded, reference)
        if entry.resultCode in PENDING_CODES or entry.resultCode in REFUND_UNKNOWN_CODES:
            return RefundResult(RefundOutcome.pending, reference)
        return RefundResult(RefundOutcome.failed, reference, f"momo_{entry.resultCode}", "MoMo refused the refund")

    # --- callbacks from MoMo ---------------------------------------------------------------------------

    def notification_account(self, request: InboundRequest) -> str | None:
        if request.body:
            try:
                data = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                return None
            code = data.get("partnerCode") if isinstance(data, dict) else None
        else:
            code = request.query.get("partnerCode")
        return code if isinstance(code, str) else None

    def _authenticate(self, fields: Mapping[str, object], credentials: ProviderCredentials) -> None:
        secret_key = credentials.secrets.get("secret_key")
        access_key = credentials.secrets.get("access_key")
        if not secret_key or not access_key:
            raise NotificationRejected("no MoMo keys configured for this account")
        if not signature_matches(secret_key, access_key, fields, RESULT_SIGNED):
            raise NotificationRejected("invalid signature")

    def _verified(
        self, fields: Mapping[str, object], credentials: ProviderCredentials, *, authenticated: bool = False
    ) -> PaymentResult:
        if not authenticated:
            self._authenticate(fields, credentials)
        try:
            result = PaymentResult.model_validate(dict(fields))
        except ValidationError as exc:
            raise NotificationRejected(f"malformed result: {exc.error_count()} errors") from exc
        if result.partnerCode != credentials.settings.get("partner_code"):
            raise NotificationRejected("partnerCode is not this account's")
        return result

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise NotificationRejected("body is not JSON") from exc
        if not isinstance(data, dict):
            raise NotificationRejected("body is not a JSON object")
        self._authenticate(data, credentials)
        amount = data.get("amount")
        if type(amount) is not int:  # a JSON integer: never a float, a string or a boolean
            raise NotificationUnusable(
                f"amount {str(amount)[:40]} is not a whole number", NotificationOutcome.amount_mismatch
            )
        result = self._verified(data, credentials, authenticated=True)
        code = result.resultCode
        if code in PENDING_CODES:
            return []  # the payer has not finished: nothing to apply yet
        if code in PAID_CODES:
            return [
                FundsReceived(
                    provider_transaction_id=str(result.transId),
                    payment_references=[result.orderId],
                    amount=result.amount,
                    currency="VND",
                    account_key=result.partnerCode,
                    payer={"pay_type": result.payType},
                )
            ]
        return [
            PaymentDeclined(
                provider_transaction_id=str(result.transId) if result.transId else f"{result.orderId}:{code}",
                payment_references=[result.orderId],
                failure_code=payment_failure_code(code),
                failure_message=result.message or f"MoMo resultCode {code}",
                amount=result.amount,
            )
        ]

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        return [self._verified(request.query, credentials).orderId]

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        if outcome is NotificationOutcome.rejected:
            return OutboundResponse(400, b'{"error":"invalid_signature"}')
        if outcome is NotificationOutcome.error:
            return OutboundResponse(500, b'{"error":"retry_later"}')
        # MoMo expects 204 No Content for every IPN it need not send again.
        return OutboundResponse(204, b"")
