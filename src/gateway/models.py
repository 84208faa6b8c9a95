"""Every table, imported in one place for Alembic's autogenerate and for tests."""

from gateway.db import Base
from gateway.events.models import Event
from gateway.idempotency.models import IdempotencyKey
from gateway.ledger.models import LedgerEntry, LedgerTransaction
from gateway.merchants.models import ApiKey, Merchant, ProviderAccount, ProviderHealth
from gateway.notifications.models import ProviderNotification
from gateway.payments.models import Payment, ReceivedFunds
from gateway.refunds.models import Refund
from gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "IdempotencyKey",
    "LedgerEntry",
    "LedgerTransaction",
    "Merchant",
    "Payment",
    "ProviderAccount",
    "ProviderHealth",
    "ProviderNotification",
    "ReceivedFunds",
    "Refund",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
