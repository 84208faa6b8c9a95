from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import ReceiptStatus


class ReceiptSettings(Base):
    """A merchant's receipt settings (PUT /v1/merchants/{id}/receipts), for both modes."""

    __tablename__ = "receipt_settings"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    enabled: Mapped[bool]
    template: Mapped[str] = mapped_column(String(32))
    series: Mapped[str] = mapped_column(String(32))
    seller: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReceiptCounter(Base):
    """The last number issued per (merchant, mode, template, series, Vietnam calendar year).

    Incremented in the paying transaction, so its row lock orders concurrent payments and a rollback gives the
    number back: no gap, no duplicate, however many processes issue receipts.
    """

    __tablename__ = "receipt_counters"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(32), primary_key=True)
    series: Mapped[str] = mapped_column(String(32), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


class Receipt(Base):
    __tablename__ = "receipts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "livemode", "template", "series", "year", "number"),
        Index(None, "merchant_id", "livemode", "id"),
        Index(None, "payment_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    payment_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[ReceiptStatus] = mapped_column(StrEnumColumn(ReceiptStatus, 16))
    template: Mapped[str] = mapped_column(String(32))
    series: Mapped[str] = mapped_column(String(32))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(8))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seller: Mapped[dict[str, Any]] = mapped_column(JSON)
    payer: Mapped[dict[str, Any]] = mapped_column(JSON)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_in_words: Mapped[str] = mapped_column(String(500))
    bill_ids: Mapped[list[str]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    # The public lookup page's key: random, so receipts cannot be enumerated.
    lookup_code: Mapped[str] = mapped_column(String(32), unique=True)
    replaces: Mapped[str | None] = mapped_column(String(40))
    # §16: paid through the national platform, its transaction and its own receipt ({"reference", "transaction_id",
    # "receipt_url"}), as they were when this receipt was issued.
    national_platform: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
