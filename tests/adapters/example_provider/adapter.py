"""ExamplePay, the gateway side: a redirect to pay, and a signed notification to confirm. No refunds and no status
query: it implements only the core PaymentAdapter protocol, and declares its test mode."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from gateway.adapters.base import (
    Capabilities,
    FundsReceived,
    InboundRequest,
    NotificationRejected,
    OutboundResponse,
    PaymentDeclined,
    ProviderContext,
    ProviderCredentials,
    ProviderEvent,
    ProviderStatus,
    StartPayment,
    StartResult,
)
from gateway.adapters.testmode import SandboxSpec
from gateway.domain import NotificationOutcome, PaymentMethod
from tests.adapters.example_provider.simulator import create_simulator, pay
from tests.adapters.example_provider.wire import ORDER_PATH, PaymentNotification, sign


class ExamplePayCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merchant_code: str
    notification_key: SecretStr
    api_base_url: str


class ExamplePayAdapter:
    name = "examplepay"
    capabilities = Capabilities(
        methods=frozenset({PaymentMethod.mobile_money}),
        currencies=frozenset({"VND"}),
        min_amount=1,
        max_amount=10_000_000,
        partial_refunds=False,
        offline_start=True,
    )
    credentials_model = ExamplePayCredentials
    sandbox = SandboxSpec(
        settings={"merchant_code": "EXAMPLE01"},
        secret_names=("notification_key",),
        simulator=create_simulator,
        pay=pay,
    )

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        return settings["merchant_code"]

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult:
        url = f"{ctx.credentials.base_url}{ORDER_PATH}/{payment.payment_id}"
        return StartResult(
            status=ProviderStatus.requires_action,
            provider_reference=payment.payment_id,
            next_action={"type": "redirect", "url": url},
            provider_data={"order_id": payment.payment_id},
        )

    def notification_account(self, request: InboundRequest) -> str | None:
        try:
            code = orjson.loads(request.body).get("merchant_code")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return code if isinstance(code, str) else None

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        try:
            note = PaymentNotification.model_validate_json(request.body)
        except ValidationError as exc:
            raise NotificationRejected("malformed notification") from exc
        expected = sign(credentials.secrets.get("notification_key", ""), note)
        if not hmac.compare_digest(expected.encode(), note.signature.encode()):
            raise NotificationRejected("invalid signature")
        if note.status == "paid":
            return [FundsReceived(note.transaction_id, [note.order_id], note.amount, "VND", note.merchant_code)]
        return [PaymentDeclined(note.transaction_id, [note.order_id], "declined", "The payer declined", note.amount)]

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        raise NotificationRejected("ExamplePay has no browser return")

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        if outcome is NotificationOutcome.rejected:
            return OutboundResponse(401, b'{"ok":false}')
        if outcome is NotificationOutcome.error:
            return OutboundResponse(500, b'{"ok":false}')
        return OutboundResponse(200, b'{"ok":true}')
