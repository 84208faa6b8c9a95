"""VietQR bank transfers: a dynamic NAPAS QR to show the payer, the bank's signed credit notifications to
confirm, and the bank's transfer API to refund (PROVIDERS.md, "VietQR")."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import httpx
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
    ProviderContext,
    ProviderCredentials,
    ProviderDeclinedError,
    ProviderEvent,
    ProviderStatus,
    ProviderTechnicalError,
    RefundLookup,
    RefundOutcome,
    RefundResult,
    RefundSettled,
    StartPayment,
    StartRefund,
    StartResult,
)
from gateway.adapters.emvco import VietQRPayload, build_vietqr
from gateway.adapters.http import parse_answer, send_provider_request
from gateway.adapters.testmode import SandboxSpec
from gateway.adapters.vietqr.simulator import create_simulator, pay_by_transfer, send_transfer
from gateway.adapters.vietqr.wire import (
    SIGNATURE_HEADER,
    SIGNATURE_TOLERANCE_SECONDS,
    TIMESTAMP_HEADER,
    BankNotification,
    BankRefusal,
    TransferAnswer,
    TransferRequest,
    account_key_of,
    customer_payment_code,
    find_payment_codes,
    payment_code,
    sign_bank_message,
)
from gateway.clock import isoformat
from gateway.domain import NotificationOutcome, PaymentMethod


class VietQRCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_bin: str = Field(pattern=r"^[0-9]{6}$", description="NAPAS BIN of the merchant's bank")
    account_number: str = Field(pattern=r"^[0-9A-Za-z]{1,19}$")
    account_name: str = Field(min_length=1, max_length=70)
    webhook_secret: SecretStr | None = Field(default=None, description="Key of the bank's notification HMAC")
    api_base_url: str | None = Field(default=None, pattern=r"^https?://", description="The bank's transfer API")
    api_key: SecretStr | None = None


class VietQRAdapter:
    name = "vietqr"
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.vietqr}),
        currencies=frozenset({"VND"}),
        min_amount=1,
        max_amount=9_999_999_999_999,
        partial_refunds=True,
        accepts_partial_funds=True,
        accumulates_funds=True,
        offline_start=True,
    )
    credentials_model = VietQRCredentials
    sandbox = SandboxSpec(
        settings={"bank_bin": "970436", "account_number": "0011223344", "account_name": "CONG THANH TOAN SANDBOX"},
        secret_names=("webhook_secret", "api_key"),
        simulator=create_simulator,
        pay=pay_by_transfer,
    )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return account_key_of(settings["bank_bin"], settings["account_number"])

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        settings = ctx.credentials.settings
        code = payment_code(payment.payment_id)
        payload = build_vietqr(
            VietQRPayload(
                bank_bin=settings["bank_bin"],
                account_number=settings["account_number"],
                amount=payment.amount,
                purpose=code,
            )
        )
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=code,
            next_action={
                "type": "display_qr",
                "qr_payload": payload,
                "qr_image_url": f"/v1/payments/{payment.payment_id}/qr.png",
                "expires_at": isoformat(payment.expires_at),
            },
            provider_data={
                "account_key": account_key_of(settings["bank_bin"], settings["account_number"]),
                "bank_bin": settings["bank_bin"],
                "account_number": settings["account_number"],
                "account_name": settings.get("account_name", ""),
                "payment_code": code,
            },
        )

    def customer_payment_code(self, customer_id: str) -> str:
        return customer_payment_code(customer_id)

    def static_qr_payload(self, settings: Mapping[str, str], payment_code: str) -> str:
        return build_vietqr(
            VietQRPayload(
                bank_bin=settings["bank_bin"], account_number=settings["account_number"], purpose=payment_code
            )
        )

    async def send_sandbox_transfer(
        self,
        http: httpx.AsyncClient,
        simulator_url: str,
        settings: Mapping[str, str],
        payment_code: str,
        amount: int,
        payer_reference: str | None = None,
    ) -> str:
        transaction_id = await send_transfer(
            http,
            simulator_url,
            settings["bank_bin"],
            settings["account_number"],
            payment_code,
            amount,
            payer_reference=payer_reference,
        )
        return f"{settings['bank_bin']}:{transaction_id}"

    async def refund(self, ctx: ProviderContext, refund: StartRefund) -> RefundResult:
        to_bin, to_account = refund.payer.get("bank_bin"), refund.payer.get("account_number")
        if not to_bin or not to_account:
            raise ProviderDeclinedError("payer_account_unknown", "The payer's account is not known")
        api_key = ctx.credentials.secrets.get("api_key")
        if not api_key:
            raise ProviderDeclinedError("bank_api_not_configured", "No bank transfer API key is configured")
        order = TransferRequest(
            request_id=refund.refund_id,
            to_bank_bin=to_bin,
            to_account_number=to_account,
            amount=refund.amount,
            content=f"Hoan tien {refund.payment_provider_reference or refund.payment_id}",
        )
        response = await send_provider_request(
            ctx.http,
            "bank",
            "POST",
            f"{ctx.credentials.base_url}/transfers",
            json=order.model_dump(),
            headers={"authorization": f"Bearer {api_key}"},
        )
        if response.status_code >= 500:
            raise ProviderTechnicalError(f"bank answered {response.status_code}")
        if response.status_code >= 400:
            refusal = parse_answer(BankRefusal, "bank", response.content)
            raise ProviderDeclinedError(
                refusal.error or f"http_{response.status_code}", refusal.message or "The bank refused the transfer"
            )
        answer = parse_answer(TransferAnswer, "bank", response.content)
        status = RefundOutcome.succeeded if answer.status == "completed" else RefundOutcome.pending
        return RefundResult(status=status, provider_reference=_transfer_reference(answer))

    async def fetch_refund_status(self, ctx: ProviderContext, refund: RefundLookup) -> RefundResult:
        api_key = ctx.credentials.secrets.get("api_key", "")
        response = await send_provider_request(
            ctx.http,
            "bank",
            "GET",
            f"{ctx.credentials.base_url}/transfers/{refund.refund_id}",
            headers={"authorization": f"Bearer {api_key}"},
        )
        if response.status_code == 404:
            # The bank has no such order. Right after a timed-out request it may still be on its way, so only
            # a day later is it certain that nothing was sent.
            if ctx.clock.now() - refund.created_at < timedelta(hours=24):
                return RefundResult(RefundOutcome.pending, None)
            return RefundResult(RefundOutcome.failed, None, "transfer_not_found", "The bank has no such transfer")
        if response.status_code != 200:
            raise ProviderTechnicalError(f"bank answered {response.status_code}")
        answer = parse_answer(TransferAnswer, "bank", response.content)
        status = {"completed": RefundOutcome.succeeded, "failed": RefundOutcome.failed}.get(
            str(answer.status), RefundOutcome.pending
        )
        return RefundResult(
            status,
            _transfer_reference(answer),
            "transfer_failed" if status is RefundOutcome.failed else None,
        )

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        raise NotificationRejected("bank transfers have no browser return")

    def notification_account(self, request: InboundRequest) -> str | None:
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        bank_bin, account = data.get("bank_bin"), data.get("account_number")
        if not isinstance(bank_bin, str) or not isinstance(account, str):
            return None
        return account_key_of(bank_bin, account)

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        secret = credentials.secrets.get("webhook_secret")
        if not secret:
            raise NotificationRejected("no webhook secret configured for this account")
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not timestamp.isdigit() or not signature:
            raise NotificationRejected("missing signature headers")
        expected = sign_bank_message(secret, timestamp, request.body)
        # Bytes: compare_digest refuses str with non-ASCII characters, and a forger chooses the header.
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise NotificationRejected("invalid signature")
        if abs(now.timestamp() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
            raise NotificationRejected("timestamp outside tolerance")
        try:
            note = BankNotification.model_validate_json(request.body)
        except ValidationError as exc:
            if any(error["loc"][:1] == ("amount",) for error in exc.errors()):
                raise NotificationUnusable("amount is not a whole number", NotificationOutcome.amount_mismatch) from exc
            raise NotificationRejected(f"malformed body: {exc.error_count()} errors") from exc
        transaction_id = f"{note.bank_bin}:{note.transaction_id}"
        if note.direction == "debit":
            if not note.request_id:
                return []  # an outgoing transfer the gateway did not ask for: not ours to settle
            return [
                RefundSettled(
                    refund_id=note.request_id,
                    provider_reference=note.transaction_id,
                    succeeded=note.status == "completed",
                    failure_code=None if note.status == "completed" else "transfer_failed",
                    failure_message=note.failure_reason,
                )
            ]
        references = find_payment_codes(note.content)
        if note.status == "failed":
            return [
                PaymentDeclined(
                    provider_transaction_id=transaction_id,
                    payment_references=references,
                    failure_code="transfer_failed",
                    failure_message=note.failure_reason or "The payer's transfer was rejected",
                )
            ]
        return [
            FundsReceived(
                provider_transaction_id=transaction_id,
                payment_references=references,
                amount=note.amount,
                currency=note.currency,
                account_key=account_key_of(note.bank_bin, note.account_number),
                payer={
                    "bank_bin": note.counter_bank_bin or "",
                    "account_number": note.counter_account_number or "",
                    "account_name": note.counter_account_name or "",
                },
                content=note.content,
            )
        ]

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        if outcome is NotificationOutcome.rejected:
            return OutboundResponse(401, b'{"success":false,"error":"invalid_signature"}')
        if outcome is NotificationOutcome.amount_mismatch:  # only an amount no transfer can carry
            return OutboundResponse(400, b'{"success":false,"error":"invalid_amount"}')
        if outcome is NotificationOutcome.error:
            return OutboundResponse(500, b'{"success":false,"error":"retry_later"}')
        return OutboundResponse(200, b'{"success":true}')


def _transfer_reference(answer: TransferAnswer) -> str | None:
    return str(answer.transfer_id or "") or None
