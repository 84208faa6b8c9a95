from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base, StrEnumColumn, UTCDateTime
from gateway.domain import OrgUnitKind


class OrgUnit(Base):
    """A unit of the province's tree. Its code is how merchants, customers and payments name it (exact case)."""

    __tablename__ = "org_units"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgUnitKind] = mapped_column(StrEnumColumn(OrgUnitKind, 16))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("org_units.code"), index=True)
    # The share of payments it should collect online (0 to 1, four decimals), or None when it has no target.
    online_target: Mapped[float | None] = mapped_column(Numeric(5, 4, asdecimal=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
