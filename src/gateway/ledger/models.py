from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, BigIntPK, UTCDateTime


class Direction(StrEnum):
    debit = "debit"
    credit = "credit"


class LedgerKind(StrEnum):
    payment_received = "payment_received"
    refund_succeeded = "refund_succeeded"
    # Customers' credit (§11): funds left over after a customer's bills, held for the next ones.
    customer_credit_added = "customer_credit_added"
    customer_credit_applied = "customer_credit_applied"
    customer_credit_refunded = "customer_credit_refunded"


class LedgerTransaction(Base):
    """Append-only (a trigger refuses UPDATE and DELETE). One per (kind, source): a retry cannot post twice."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (UniqueConstraint("kind", "source"), Index(None, "merchant_id", "livemode", "currency"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    payment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    refund_id: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(120), index=True)
    direction: Mapped[str] = mapped_column(String(6))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
