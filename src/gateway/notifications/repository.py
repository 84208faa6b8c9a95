"""SQL about provider callbacks and the funds they report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import insert_ignoring_conflict
from gateway.notifications.models import ReceivedFunds


async def record_received_funds(session: AsyncSession, values: dict[str, Any]) -> bool:
    """False when the provider already reported this transaction: the repeat changes nothing."""
    return await insert_ignoring_conflict(
        session,
        ReceivedFunds,
        values,
        ["provider", "provider_transaction_id"],
    )


async def payer_of(session: AsyncSession, payment_id: str) -> dict[str, str]:
    """Who paid, as the first matched transfer named them: where a refund goes back to."""
    stmt = (
        select(ReceivedFunds.payer)
        .where(ReceivedFunds.payment_id == payment_id, ReceivedFunds.status == "matched")
        .order_by(ReceivedFunds.received_at, ReceivedFunds.id)
        .limit(1)
    )
    payer = (await session.execute(stmt)).scalar_one_or_none()
    return {str(k): str(v) for k, v in (payer or {}).items()}
