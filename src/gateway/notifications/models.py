from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.adapters.base import NotificationOutcome
from gateway.db import Base, StrEnumColumn, UTCDateTime


class ProviderNotification(Base):
    """Every raw callback a provider sent, kept for audit whatever became of it (forged ones too)."""

    __tablename__ = "provider_notifications"
    __table_args__ = (Index(None, "provider", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    http_method: Mapped[str] = mapped_column(String(8))
    query_string: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool]
    outcome: Mapped[NotificationOutcome] = mapped_column(StrEnumColumn(NotificationOutcome, 32))
    detail: Mapped[str | None] = mapped_column(String(500))
    payment_id: Mapped[str | None] = mapped_column(String(40))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


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
