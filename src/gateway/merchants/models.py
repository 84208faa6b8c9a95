from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, UTCDateTime
from gateway.org_units.models import OrgUnit


class Merchant(Base):
    __tablename__ = "merchants"
    # Biller codes are matched in any case: unique in any case too (also under concurrent writes), and this index
    # is what a partner's or telco's lookup by code uses.
    __table_args__ = (Index("uq_merchants_biller_code_upper", func.upper(text("biller_code")), unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    # How collection partners and telcos name the merchant (§12); unique when set.
    biller_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    # The unit it belongs to (§17): its payments count there unless their bill's customer names a unit.
    org_unit: Mapped[str | None] = mapped_column(ForeignKey(OrgUnit.code))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    livemode: Mapped[bool]
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The last characters only, so an operator can tell keys apart in a listing.
    secret_hint: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProviderAccount(Base):
    """A merchant's credentials and settings at one provider; secrets encrypted, never returned."""

    __tablename__ = "provider_accounts"
    __table_args__ = (
        UniqueConstraint("merchant_id", "provider", "livemode"),
        Index(None, "provider", "account_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    provider: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool]
    # What the provider's notifications name to say which account they concern (for VietQR: BIN:account).
    account_key: Mapped[str | None] = mapped_column(String(120))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    # Routing: which enabled provider of a method a payment without `provider` goes to, and within what limits.
    enabled: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    priority: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    min_amount: Mapped[int | None] = mapped_column(BigInteger)
    max_amount: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProviderHealth(Base):
    """A provider's circuit breaker, in the database so every process agrees on skipping it."""

    __tablename__ = "provider_health"

    provider: Mapped[str] = mapped_column(String(40), primary_key=True)
    livemode: Mapped[bool] = mapped_column(primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
