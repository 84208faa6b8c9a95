"""The contract between the core and every payment provider.

Adapters translate, the core decides: an adapter builds the provider's requests and parses its answers into
the types below. It never touches the database or the payment state machine, and it maps every provider
failure to ProviderTechnicalError (retryable; the payment is never failed on a guess) or
ProviderDeclinedError (a real refusal carrying the provider's code).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

from gateway.clock import Clock
from gateway.domain import NotificationOutcome, PaymentMethod


@dataclass(frozen=True)
class Capabilities:
    methods: frozenset[PaymentMethod]
    currencies: frozenset[str]
    min_amount: int
    max_amount: int
    # Only for an adapter implementing Refunds: whether a refund may be less than the amount received.
    partial_refunds: bool
    # A bank transfer may bring less (the payment stays open) or more (the surplus is kept) than asked;
    # a card or wallet charge must bring exactly the amount.
    accepts_partial_funds: bool = False
    # Several transfers really can arrive for one bank-transfer payment, and each is counted; a card or wallet
    # order is paid once, so a second success for it is recorded for operators, never credited. Likewise a
    # failed transfer says nothing about the payment, while a failed card or wallet attempt ends it.
    accumulates_funds: bool = False
    # Starting a payment makes no network call (a QR or a signed URL): the core then confirms in the same
    # database transaction that creates the payment.
    offline_start: bool = False


@dataclass(frozen=True)
class ProviderCredentials:
    """Where and as whom to talk to a provider: a merchant's live account or the shared sandbox."""

    livemode: bool
    merchant_id: str | None
    settings: Mapping[str, str]
    secrets: Mapping[str, str]
    base_url: str


@dataclass(frozen=True)
class ProviderContext:
    credentials: ProviderCredentials
    http: httpx.AsyncClient
    # Where the provider sends its server-to-server notifications (IPN) for this gateway.
    notification_url: str
    # Where the provider sends the payer's browser back (GET /v1/providers/{name}/return): the gateway
    # verifies it and redirects to the payment's own return_url. It never changes a payment's state.
    return_url: str
    clock: Clock


class ProviderStatus(StrEnum):
    requires_action = "requires_action"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"


@dataclass(frozen=True)
class StartPayment:
    """What a provider needs to start collecting. `payment_id` is the idempotency anchor: starting the
    same payment twice (a retry after a crash) must not create two charges at the provider."""

    payment_id: str
    amount: int
    currency: str
    reference: str
    description: str | None
    customer: Mapping[str, str] | None
    return_url: str | None
    expires_at: datetime
    created_at: datetime
    # Method-specific choices of the request, by method (e.g. {"mobile_money": {"push": True}}).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StartResult:
    status: ProviderStatus
    provider_reference: str | None
    next_action: dict[str, Any] | None = None
    provider_data: Mapping[str, Any] = field(default_factory=dict)
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class StartRefund:
    refund_id: str
    payment_id: str
    amount: int
    currency: str
    payment_amount_received: int
    payment_provider_reference: str | None
    payment_provider_data: Mapping[str, Any]
    payer: Mapping[str, str]
    reason: str | None
    # The provider's id of the funds being refunded, exactly as the adapter reported it in
    # FundsReceived.provider_transaction_id (or StatusResult.provider_transaction_id).
    provider_transaction_id: str | None = None
    payment_created_at: datetime | None = None


@dataclass(frozen=True)
class RefundLookup:
    refund_id: str
    payment_id: str
    amount: int
    provider_reference: str | None
    payment_provider_reference: str | None
    payment_provider_data: Mapping[str, Any]
    provider_transaction_id: str | None
    created_at: datetime
    payment_amount_received: int = 0


class RefundOutcome(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


@dataclass(frozen=True)
class RefundResult:
    status: RefundOutcome
    provider_reference: str | None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class PaymentLookup:
    payment_id: str
    provider_reference: str | None
    provider_data: Mapping[str, Any]
    amount: int
    created_at: datetime


@dataclass(frozen=True)
class StatusResult:
    status: ProviderStatus
    amount_received: int
    provider_transaction_id: str | None
    failure_code: str | None = None
    failure_message: str | None = None
    # What the provider gave with the funds, merged into the payment's provider_data (as FundsReceived's).
    provider_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundRequest:
    """A provider's callback as it arrived, before anything trusts it."""

    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class FundsReceived:
    """The provider confirms money arrived for the payment(s) its references name."""

    provider_transaction_id: str
    payment_references: Sequence[str]
    amount: int
    currency: str
    account_key: str | None = None
    payer: Mapping[str, str] = field(default_factory=dict)
    content: str | None = None
    # What the provider gave with the funds (e.g. the national platform's transaction id and receipt URL): merged
    # into the payment's provider_data when the funds are credited to it, in the same transaction.
    provider_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentDeclined:
    provider_transaction_id: str
    payment_references: Sequence[str]
    failure_code: str
    failure_message: str
    # The amount the notification names, when it names one: checked like funds (a wrong amount is refused).
    amount: int | None = None


@dataclass(frozen=True)
class RefundSettled:
    refund_id: str
    provider_reference: str | None
    succeeded: bool
    failure_code: str | None = None
    failure_message: str | None = None


ProviderEvent = FundsReceived | PaymentDeclined | RefundSettled


@dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    body: bytes
    media_type: str = "application/json"


class ProviderError(Exception):
    pass


class ProviderTechnicalError(ProviderError):
    """Timeouts, connection failures, 5xx: the outcome is unknown unless `certainly_not_created`."""

    def __init__(self, message: str, *, certainly_not_created: bool = False) -> None:
        super().__init__(message)
        self.certainly_not_created = certainly_not_created


class ProviderDeclinedError(ProviderError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NotificationRejected(Exception):
    """A callback that cannot be trusted (bad signature, stale timestamp, malformed body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotificationUnusable(NotificationRejected):
    """A genuine callback (its signature checked) that cannot be applied, e.g. an amount no payment can carry:
    nothing changes and it is answered with `outcome`, in the provider's own format."""

    def __init__(self, reason: str, outcome: NotificationOutcome) -> None:
        super().__init__(reason)
        self.outcome = outcome


@runtime_checkable
class PaymentAdapter(Protocol):
    """What every provider does: start a payment, verify and parse its notifications, and acknowledge them.
    Anything more is an optional capability below, checked with isinstance where it is used."""

    name: str
    capabilities: Capabilities

    @property
    def credentials_model(self) -> type[BaseModel]:
        """The live credentials a merchant stores with PUT /v1/merchants/{id}/providers/{name}; fields
        typed SecretStr are encrypted at rest and never returned."""
        ...

    def account_key(self, settings: Mapping[str, str]) -> str | None:
        """The identifier the provider's notifications carry for this account (routes them to a merchant)."""
        ...

    async def start_payment(self, ctx: ProviderContext, payment: StartPayment) -> StartResult: ...

    def notification_account(self, request: InboundRequest) -> str | None:
        """Which account's credentials should verify this callback (read before it is trusted)."""
        ...

    def verify_notification(
        self, request: InboundRequest, credentials: ProviderCredentials, now: datetime
    ) -> Sequence[ProviderEvent]:
        """Check the provider's signature and parse; raise NotificationRejected if it cannot be trusted, or
        NotificationUnusable if it is genuine but cannot be applied (an amount that is no amount)."""
        ...

    def verify_return(self, request: InboundRequest, credentials: ProviderCredentials, now: datetime) -> Sequence[str]:
        """Check the signed browser return and give the payment references it names; raise
        NotificationRejected if it is not genuine (or the provider has no browser return)."""
        ...

    def acknowledge(self, outcome: NotificationOutcome) -> OutboundResponse:
        """The answer the provider expects for this outcome (it retries on anything else)."""
        ...


@runtime_checkable
class Refunds(Protocol):
    """The provider can send money back for a payment (POST /v1/refunds answers refund_not_supported otherwise)."""

    async def refund(self, ctx: ProviderContext, refund: StartRefund) -> RefundResult: ...

    async def fetch_refund_status(self, ctx: ProviderContext, refund: RefundLookup) -> RefundResult:
        """Ask the provider what became of a pending refund (the janitor)."""
        ...


@runtime_checkable
class StatusQuery(Protocol):
    """The provider answers questions about a payment: the janitor asks instead of only waiting for a
    notification. A provider confirming by notification alone (a bank transfer) does not implement it."""

    async def fetch_status(self, ctx: ProviderContext, payment: PaymentLookup) -> StatusResult:
        """Ask the provider what became of a payment whose notification has not arrived."""
        ...


@runtime_checkable
class StaticTransferCodes(Protocol):
    """Payers can pay a customer (not one payment) with a code in a transfer: the static QR printed once on every
    paper bill (§11). The code is derived from the customer, and a notification's `payment_references` carry the
    customer codes it finds as well as payment codes."""

    def customer_payment_code(self, customer_id: str) -> str:
        """The code payers put in the transfer content: ASCII, at most 20 characters."""
        ...

    def static_qr_payload(self, settings: Mapping[str, str], payment_code: str) -> str:
        """The static QR (no amount) paying into the account of `settings`, carrying `payment_code`."""
        ...

    async def send_sandbox_transfer(
        self,
        http: httpx.AsyncClient,
        simulator_url: str,
        settings: Mapping[str, str],
        payment_code: str,
        amount: int,
        payer_reference: str | None = None,
    ) -> str:
        """Test mode: play a payer who scanned the static QR and sent `amount`; the provider transaction id of the
        transfer, as its notification's funds carry it. The same `payer_reference` again is a retry of that
        transfer, never a second one."""
        ...


@runtime_checkable
class AcknowledgesRequest(Protocol):
    """A provider whose answer to a notification echoes and signs fields of that notification (the telcos' result
    answer): the core then calls this instead of `acknowledge`. `credentials` are the account whose signature
    matched, None for a callback nobody signed (its answer is then signed by no one either)."""

    def acknowledge_request(
        self, outcome: NotificationOutcome, request: InboundRequest, credentials: ProviderCredentials | None
    ) -> OutboundResponse: ...


@dataclass(frozen=True)
class InquiryRequest:
    """A provider asking what a code owes before its payer pays (the telco's verify-order), once its signature is
    checked."""

    code: str  # what the payer typed (a bill number or a customer code), or the gateway's payment id
    # The provider's order: a payment of the gateway's, or its own for a payer-started payment. None: the provider
    # names no order of its own (the national platform asks by dossier code): `code` is the payment's reference,
    # and a payment created for it takes the adapter's `GatewayReferences.payment_reference`.
    order_id: str | None
    amount: int | None  # the amount it asks to collect, when it names one


class InquiryStatus(StrEnum):
    payable = "payable"  # the amount is due: the provider may collect it
    not_payable = "not_payable"  # unknown, paid, void, or nothing due
    rejected = "rejected"  # the signature does not hold (or no account is known)
    error = "error"  # the gateway could not answer


@dataclass(frozen=True)
class InquiryAnswer:
    status: InquiryStatus
    amount: int | None = None
    customer_name: str | None = None  # masked, for the payer's screen
    # The gateway's reference the provider's result must name (the national platform's MaThamChieu).
    reference: str | None = None
    # What the amount is made of, as the payment keeps it ({"kind", "code", "name", "amount"}).
    fees: Sequence[Mapping[str, Any]] = ()


@runtime_checkable
class BillInquiry(Protocol):
    """The provider asks the gateway what a bill or customer code owes before its payer pays (a payer-started
    payment: the telco's "verify order"; the national platform's "Inquiry" next)."""

    def inquiry_account(self, request: InboundRequest) -> str | None:
        """Which account's credentials should verify this inquiry (read before it is trusted)."""
        ...

    def verify_bill_inquiry(self, request: InboundRequest, credentials: ProviderCredentials) -> InquiryRequest:
        """Check the inquiry's signature and parse it; raise NotificationRejected if it cannot be trusted."""
        ...

    def answer_bill_inquiry(
        self, request: InboundRequest, credentials: ProviderCredentials | None, answer: InquiryAnswer
    ) -> OutboundResponse:
        """The answer in the provider's format, signed by `credentials` (None: a caller nobody authenticated)."""
        ...


@runtime_checkable
class GatewayReferences(Protocol):
    """A provider that takes the gateway's own reference for a payment instead of naming an order of its own (the
    national platform's MaThamChieu): derived from the payment id, so a payment the gateway creates for an inquiry
    gets the same reference a start would have given it."""

    def payment_reference(self, payment_id: str) -> str: ...


@runtime_checkable
class SandboxBillers(Protocol):
    """Test mode: the provider's sandbox lists the gateway's billers (the merchants with a biller_code) for its
    payers to pick, and names a biller by that code, signed with the sandbox's own keys."""

    def verify_biller_list_request(self, request: InboundRequest, credentials: ProviderCredentials) -> None:
        """Raise NotificationRejected unless the sandbox signed this request."""
        ...


@dataclass(frozen=True)
class StartPayout:
    payout_id: str
    amount: int
    currency: str
    beneficiary: Mapping[str, str]
    content: str


@runtime_checkable
class Payouts(Protocol):
    """The provider sends money from the merchant's account to a third party (e.g. the collected fees to an
    agency's treasury account). Not implemented yet; the bank transfer API behind VietQR is the first candidate."""

    async def send_payout(self, ctx: ProviderContext, payout: StartPayout) -> RefundResult:
        """Like a refund, a payout is pending until the provider settles it, then succeeded or failed."""
        ...
