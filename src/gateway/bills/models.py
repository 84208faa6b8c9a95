from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, ForeignKeyConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import AllocationKind, AmountRule, BillStatus


class Bill(Base):
    """What a customer owes. `amount_paid` is the sum of the bill's allocation rows; its status follows from it
    (bills/service.py), changed only under the customer's row lock."""

    __tablename__ = "bills"
    __table_args__ = (
        UniqueConstraint("merchant_id", "livemode", "number"),
        Index(None, "merchant_id", "livemode", "id"),
        Index(None, "merchant_id", "livemode", "status", "id"),
        Index(None, "merchant_id", "livemode", "period", "id"),
        # Allocation walks a customer's payable bills, oldest due first.
        Index(None, "customer_id", "status", "due_date", "created_at"),
        # The customer, of this merchant and mode: one foreign key checked per row, not one to customers and one
        # to merchants (the merchant exists: the customer's key says so).
        ForeignKeyConstraint(
            ["merchant_id", "livemode", "customer_id"], ["customers.merchant_id", "customers.livemode", "customers.id"]
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool]
    customer_id: Mapped[str] = mapped_column(String(40))
    number: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(255))
    period: Mapped[str | None] = mapped_column(String(32))
    due_date: Mapped[date | None] = mapped_column(Date)
    lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    amount_rule: Mapped[AmountRule] = mapped_column(StrEnumColumn(AmountRule, 16))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    status: Mapped[BillStatus] = mapped_column(StrEnumColumn(BillStatus, 16))
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Allocation(Base):
    """The allocation journal: where a customer's money went, one signed row per movement, never changed.

    `bill_id` set: money on that bill; null: money in the customer's balance. So a bill's `amount_paid` is the sum
    of its rows and the customer's `balance` the sum of its rows without a bill; `payment_id` names the payment
    whose funds moved (for a refund's take-back, the refunded payment).
    """

    __tablename__ = "allocations"
    __table_args__ = (
        Index(None, "bill_id", "id"),
        Index(None, "customer_id", "payment_id"),
        Index(None, "payment_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    payment_id: Mapped[str | None] = mapped_column(String(40))
    bill_id: Mapped[str | None] = mapped_column(String(40))
    refund_id: Mapped[str | None] = mapped_column(String(40))
    kind: Mapped[AllocationKind] = mapped_column(StrEnumColumn(AllocationKind, 16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
