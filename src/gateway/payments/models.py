from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import PartnerChannel, PaymentChannel, PaymentMethod, PaymentStatus


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index(None, "merchant_id", "livemode", "id"),
        Index(None, "merchant_id", "livemode", "reference", "id"),
        Index(None, "merchant_id", "livemode", "status", "id"),
        Index(None, "status", "expires_at"),
        Index(
            "ix_payments_status_check_due",
            "next_status_check_at",
            postgresql_where=text("next_status_check_at IS NOT NULL"),
            sqlite_where=text("next_status_check_at IS NOT NULL"),
        ),
        # The reports (§17): a range of Vietnam days of succeeded payments, everything they count in the index.
        Index(
            "ix_payments_report",
            "succeeded_on",
            postgresql_include=[
                "org_unit",
                "merchant_id",
                "livemode",
                "channel",
                "method",
                "provider",
                "amount_received",
                "amount_refunded",
            ],
            postgresql_where=text("succeeded_on IS NOT NULL"),
            sqlite_where=text("succeeded_on IS NOT NULL"),
        ),
        Index(
            "uq_payments_provider_reference",
            "provider",
            "provider_reference",
            unique=True,
            postgresql_where=text("provider_reference IS NOT NULL"),
            sqlite_where=text("provider_reference IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    status: Mapped[PaymentStatus] = mapped_column(StrEnumColumn(PaymentStatus, 32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_received: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    method: Mapped[PaymentMethod] = mapped_column(StrEnumColumn(PaymentMethod, 32))
    provider: Mapped[str] = mapped_column(String(40))
    provider_reference: Mapped[str | None] = mapped_column(String(120))
    reference: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(String(255))
    customer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    return_url: Mapped[str | None] = mapped_column(String(2048))
    channel: Mapped[PaymentChannel] = mapped_column(
        StrEnumColumn(PaymentChannel, 16), default=PaymentChannel.online, server_default="online"
    )
    # §11: the biller's customer whose bills the funds go to, and the bill a payment was made for.
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    bill_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # §13: how a counter payment was taken ({"instrument", "location", "cashier"}).
    counter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # §12: where a collection partner took the money (`channel` follows from it).
    partner_channel: Mapped[PartnerChannel | None] = mapped_column(StrEnumColumn(PartnerChannel, 20))
    # §17, recorded when it succeeds (so later moves of a customer or merchant do not rewrite history): its unit
    # (the bill's customer's, else the merchant's), the moment, and that moment's Vietnam calendar day.
    org_unit: Mapped[str | None] = mapped_column(String(32))
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    succeeded_on: Mapped[date | None] = mapped_column(Date)
    next_action: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the adapter needs to remember between calls (e.g. the account a QR pays into).
    provider_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(255))
    # Set before the provider is called outside a transaction, so a crash there is recoverable.
    provider_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The janitor asks the provider when its notification is late: when next, and how many times so far.
    next_status_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def national_platform_details(self) -> dict[str, Any] | None:
        """§16: the request's block (provider_data["national_platform"]) with what the platform gave
        (provider_data["platform"]); None for any other method."""
        block = self.provider_data.get("national_platform") if self.method is PaymentMethod.national_platform else None
        if not isinstance(block, dict):
            return None
        given = self.provider_data.get("platform") or {}
        return {
            "procedure_code": block.get("procedure_code"),
            "service_code": block.get("service_code"),
            "fees": list(block.get("fees") or []),
            "reference": self.provider_reference,
            "transaction_id": given.get("transaction_id"),
            "receipt_url": given.get("receipt_url"),
        }


class ReceivedFunds(Base):
    """One provider-confirmed movement of funds into a merchant's account, matched to a payment or not.

    Unique per provider transaction, so the same transfer reported twice is recorded once; unmatched
    transfers stay here for operators, never dropped.
    """

    __tablename__ = "received_funds"
    __table_args__ = (
        UniqueConstraint("provider", "livemode", "provider_transaction_id"),
        Index(None, "status", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    provider_transaction_id: Mapped[str] = mapped_column(String(120))
    livemode: Mapped[bool]
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    payment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(120))
    account_key: Mapped[str | None] = mapped_column(String(120))
    payer: Mapped[dict[str, Any]] = mapped_column(JSON)
    content: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
