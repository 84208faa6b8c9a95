from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import NotificationOutcome


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
