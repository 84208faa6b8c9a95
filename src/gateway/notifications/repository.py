"""SQL about provider callbacks and the funds they report."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import insert_ignoring_conflict
from gateway.notifications.models import ReceivedFunds


async def record_received_funds(session: AsyncSession, values: dict[str, object]) -> bool:
    """False when the provider already reported this transaction: the repeat changes nothing."""
    return await insert_ignoring_conflict(
        session,
        ReceivedFunds,
        values,
        ["provider", "livemode", "provider_transaction_id"],
    )


async def first_receipt(session: AsyncSession, payment_id: str) -> tuple[str | None, dict[str, str]]:
    """The first matched funds of a payment: the provider's transaction id and who paid (where a refund goes)."""
    stmt = (
        select(ReceivedFunds.provider_transaction_id, ReceivedFunds.payer)
        .where(ReceivedFunds.payment_id == payment_id, ReceivedFunds.status == "matched")
        .order_by(ReceivedFunds.received_at, ReceivedFunds.id)
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None, {}
    return row[0], {str(k): str(v) for k, v in (row[1] or {}).items()}
