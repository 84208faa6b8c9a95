from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime


class Event(Base):
    """The outbox: written in the same transaction as the change it reports."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "merchant_id", "livemode", "id"),
        Index(None, "merchant_id", "livemode", "type", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    type: Mapped[str] = mapped_column(String(40))
    payment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    refund_id: Mapped[str | None] = mapped_column(String(40))
    # The serialized event exactly as it is served and delivered, so every retry is byte-for-byte equal.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class EventBatch:
    """Events of one type for one merchant and mode, recorded together (a bulk import's `bill.created`): what a
    batch subscriber gets instead of one Event each."""

    merchant_id: str
    livemode: bool
    type: str
    created_at: datetime
    event_ids: list[str]
