from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime


class Customer(Base):
    """A biller's customer. `code_key` is the code upper-cased: codes are unique and matched case-insensitively.

    `balance` is credit held for the customer's next bills; it changes only with an allocation row (§11), under
    this row's lock.
    """

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("merchant_id", "livemode", "code_key"),
        # Pages the customer list; unique (id is) so that a bill's foreign key can name the merchant and mode too.
        UniqueConstraint("merchant_id", "livemode", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool]
    code: Mapped[str] = mapped_column(String(32))
    code_key: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(255))
    org_unit: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON)
    # What payers put in a transfer's content (the static QR's purpose); derived from the id, globally unique.
    payment_code: Mapped[str] = mapped_column(String(20), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    currency: Mapped[str] = mapped_column(String(3), default="VND", server_default="VND")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
