"""Closed sets shared by the API, the core and the adapters."""

from __future__ import annotations

from enum import StrEnum


class PaymentMethod(StrEnum):
    vietqr = "vietqr"
    card = "card"
    ewallet = "ewallet"
    mobile_money = "mobile_money"
    national_platform = "national_platform"
    counter = "counter"
    # Set by a collection partner's payment (§12) only: POST /v1/payments refuses it.
    partner = "partner"


class RequestedMethod(StrEnum):
    """What POST /v1/payments may ask for: every method but `partner`, which only a collection partner's payment
    (§12) records."""

    vietqr = "vietqr"
    card = "card"
    ewallet = "ewallet"
    mobile_money = "mobile_money"
    national_platform = "national_platform"
    counter = "counter"

    @property
    def method(self) -> PaymentMethod:
        return PaymentMethod(self.value)


class PaymentStatus(StrEnum):
    requires_confirmation = "requires_confirmation"
    requires_action = "requires_action"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"
    expired = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_PAYMENT_STATUSES


TERMINAL_PAYMENT_STATUSES = frozenset(
    {PaymentStatus.succeeded, PaymentStatus.failed, PaymentStatus.canceled, PaymentStatus.expired}
)


class OrgUnitKind(StrEnum):
    """The levels of a province's tree (§17): a district's parent is the province, a commune's a district; an agency
    (a department, a one-stop office) sits under the province, a district or a commune."""

    province = "province"
    district = "district"
    commune = "commune"
    agency = "agency"


class RefundStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class WebhookEndpointStatus(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class WebhookDeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


class EventType(StrEnum):
    payment_requires_action = "payment.requires_action"
    payment_processing = "payment.processing"
    payment_partially_paid = "payment.partially_paid"
    payment_succeeded = "payment.succeeded"
    payment_failed = "payment.failed"
    payment_canceled = "payment.canceled"
    payment_expired = "payment.expired"
    refund_created = "refund.created"
    refund_succeeded = "refund.succeeded"
    refund_failed = "refund.failed"
    bill_created = "bill.created"
    bill_partially_paid = "bill.partially_paid"
    bill_paid = "bill.paid"
    bill_voided = "bill.voided"
    customer_balance_changed = "customer.balance_changed"
    receipt_issued = "receipt.issued"
    receipt_canceled = "receipt.canceled"
    collection_reversed = "collection.reversed"

    @property
    def object_type(self) -> str:
        """What `data.object` carries: the type names it, `<object>.<what happened>`."""
        return self.value.partition(".")[0]


class PaymentChannel(StrEnum):
    """Where the payer paid (§13): their own device, or a counter (the biller's, a bank branch, an agent)."""

    online = "online"
    counter = "counter"


class PartnerKind(StrEnum):
    bank = "bank"
    intermediary = "intermediary"
    telco = "telco"
    platform = "platform"


class PartnerChannel(StrEnum):
    """Where a partner took the money (§12); `counter` and `agent` are counter payments (§13), the rest online."""

    app = "app"
    internet_banking = "internet_banking"
    counter = "counter"
    atm = "atm"
    agent = "agent"
    ussd = "ussd"

    @property
    def payment_channel(self) -> PaymentChannel:
        return (
            PaymentChannel.counter if self in (PartnerChannel.counter, PartnerChannel.agent) else PaymentChannel.online
        )


class CollectionStatus(StrEnum):
    accepted = "accepted"
    reversed = "reversed"


class CounterInstrument(StrEnum):
    cash = "cash"
    card_pos = "card_pos"


class BillStatus(StrEnum):
    open = "open"
    partially_paid = "partially_paid"
    paid = "paid"
    void = "void"

    @property
    def is_payable(self) -> bool:
        return self in (BillStatus.open, BillStatus.partially_paid)


class AmountRule(StrEnum):
    """What a payment or collection naming a bill may pay: exactly what remains, up to it, or anything."""

    exact = "exact"
    partial = "partial"
    any = "any"


class AllocationKind(StrEnum):
    """One line of the allocation journal: funds to a bill, funds to the customer's balance, balance applied
    to a bill, or money taken back from a bill or the balance by a refund (negative amounts)."""

    bill = "bill"
    credit = "credit"
    credit_applied = "credit_applied"
    refund = "refund"


class ReceiptStatus(StrEnum):
    issued = "issued"
    canceled = "canceled"


class MerchantCategory(StrEnum):
    hospital = "hospital"
    electricity = "electricity"
    water = "water"
    school = "school"
    government = "government"
    other = "other"


class KeyMode(StrEnum):
    test = "test"
    live = "live"


# ISO 4217 minor-unit exponents of the currencies the gateway knows; an unknown code is a validation error,
# a known one that no provider takes is `currency_not_supported`.
CURRENCY_EXPONENTS: dict[str, int] = {
    "VND": 0,
    "USD": 2,
    "EUR": 2,
    "JPY": 0,
    "KRW": 0,
    "CNY": 2,
    "SGD": 2,
    "THB": 2,
}

MAX_AMOUNT = 9_999_999_999_999


class NotificationOutcome(StrEnum):
    """What became of a provider's callback (kept with it for audit; the adapter answers the provider by it)."""

    applied = "applied"
    duplicate = "duplicate"
    unmatched = "unmatched"
    amount_mismatch = "amount_mismatch"
    rejected = "rejected"
    error = "error"
