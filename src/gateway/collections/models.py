from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import CollectionStatus, PartnerChannel


class Collection(Base):
    """A partner's payment for a biller's customer (§12), recorded as a succeeded payment (`payment_id`).

    Unique per partner and `partner_transaction_id`: a replay finds this row, and `request_hash` (of the request's
    canonical JSON) tells a true replay (the same collection again) from another body (409 duplicate_transaction).
    `allocations` and `balance_added` are what the payment did when it was accepted, answered again on every
    replay and status query however the bills move later.
    """

    __tablename__ = "collections"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_transaction_id"),
        Index(None, "merchant_id", "livemode", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    partner_transaction_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[CollectionStatus] = mapped_column(StrEnumColumn(CollectionStatus, 16))
    payment_id: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    channel: Mapped[PartnerChannel] = mapped_column(StrEnumColumn(PartnerChannel, 20))
    # [{"bill_number", "amount"}] as accepted.
    allocations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    balance_added: Mapped[int] = mapped_column(BigInteger)
    receipt_number: Mapped[str | None] = mapped_column(String(8))
    payer: Mapped[dict[str, str] | None] = mapped_column(JSON)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reversal_reason: Mapped[str | None] = mapped_column(String(255))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
