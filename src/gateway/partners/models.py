from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import PartnerKind


class Partner(Base):
    """A bank, intermediary, telco or platform that collects for billers. Its secret (`psk_...`) signs every request
    it sends; it is stored encrypted, and during a rotation the previous one is accepted until it expires."""

    __tablename__ = "partners"
    # Codes are matched in any case: unique in any case, also under concurrent creates.
    __table_args__ = (Index("uq_partners_code_upper", func.upper(text("code")), unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The partner's short code (e.g. a bank's `VCB`): a collection's payment names it as its `provider`.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[PartnerKind] = mapped_column(StrEnumColumn(PartnerKind, 16))
    livemode: Mapped[bool]
    # A telco or platform partner allowed to show customers' full names in inquiries (others see them masked).
    shows_full_names: Mapped[bool] = mapped_column(default=False, server_default="0")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MerchantPartner(Base):
    """Whether a partner may collect for a merchant (PUT /v1/merchants/{id}/partners/{partner_id})."""

    __tablename__ = "merchant_partners"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    enabled: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerRequest(Base):
    """Every raw request a partner (or anyone claiming to be one) sent to /v1/collect, kept for audit with the answer
    it got. Like provider callbacks, an unsigned request keeps only a bounded prefix."""

    __tablename__ = "partner_requests"
    __table_args__ = (Index(None, "partner_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # As the request claimed it (X-Partner-Id), whether or not the signature held.
    partner_id: Mapped[str | None] = mapped_column(String(40))
    verified: Mapped[bool]
    http_method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(Integer)
    # The problem code answered, or the collection touched.
    outcome: Mapped[str | None] = mapped_column(String(64))
    collection_id: Mapped[str | None] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
