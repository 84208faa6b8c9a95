"""Every table, imported in one place for Alembic's autogenerate and for tests."""

from gateway.bills.models import Allocation, Bill
from gateway.collections.models import Collection
from gateway.customers.models import Customer
from gateway.db import Base
from gateway.events.models import Event
from gateway.idempotency.models import IdempotencyKey
from gateway.ledger.models import LedgerEntry, LedgerTransaction
from gateway.merchants.models import ApiKey, Merchant, ProviderAccount, ProviderHealth
from gateway.notifications.models import ProviderNotification
from gateway.org_units.models import OrgUnit
from gateway.partners.models import MerchantPartner, Partner, PartnerRequest
from gateway.payments.models import Payment, ReceivedFunds
from gateway.receipts.models import Receipt, ReceiptCounter, ReceiptSettings
from gateway.refunds.models import Refund
from gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "Allocation",
    "ApiKey",
    "Base",
    "Bill",
    "Collection",
    "Customer",
    "Event",
    "IdempotencyKey",
    "LedgerEntry",
    "LedgerTransaction",
    "Merchant",
    "MerchantPartner",
    "OrgUnit",
    "Partner",
    "PartnerRequest",
    "Payment",
    "ProviderAccount",
    "ProviderHealth",
    "ProviderNotification",
    "Receipt",
    "ReceiptCounter",
    "ReceiptSettings",
    "ReceivedFunds",
    "Refund",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
