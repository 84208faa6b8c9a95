"""SQL of the delivery queue: the dispatcher's claims and the backlog."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Row, Select, and_, func, literal_column, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.events.models import Event
from gateway.webhooks.models import ENABLED, PENDING, WebhookDelivery, WebhookEndpoint


async def claim_due_deliveries(
    session: AsyncSession,
    *,
    now: datetime,
    claim_token: str,
    lease: timedelta,
    batch: int,
    per_endpoint: int,
    is_sqlite: bool,
) -> Sequence[Row[int, int, str, str, WebhookEndpoint]]:
    """Lease up to `batch` due deliveries; each with its attempt number, event id and body, and endpoint."""
    # At most `per_endpoint` due deliveries of each endpoint per claim, chosen in the query itself: a
    # backlogged or slow endpoint can never fill the batch and starve the others.
    candidates = _candidates(now, batch, per_endpoint, is_sqlite)
    due = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(candidates)).order_by(WebhookDelivery.id)
    if not is_sqlite:  # SQLite's IMMEDIATE transaction already serialises claims
        due = due.with_for_update(skip_locked=True)
    chosen = list((await session.execute(due)).scalars())
    if not chosen:
        return []
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(chosen))
        .values(
            claimed_until=now + lease,
            claim_token=claim_token,
            attempts=WebhookDelivery.attempts + 1,
            updated_at=now,
        )
    )
    loaded = await session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, Event.id, Event.body, WebhookEndpoint)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(chosen))
    )
    return loaded.all()


def _candidates(now: datetime, batch: int, per_endpoint: int, is_sqlite: bool) -> Select[int]:
    claimable = (
        # A literal, so that a prepared (generic) plan can still use the partial indexes on pending rows.
        WebhookDelivery.status == literal_column(f"'{PENDING}'"),
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
    )
    if not is_sqlite:
        # PostgreSQL: for each enabled endpoint, its first due deliveries straight off the
        # (endpoint_id, next_attempt_at, id) partial index — the cost is what is taken, not the backlog.
        per_endpoint_due = (
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, *claimable)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(per_endpoint)
            .lateral("due")
        )
        return (
            select(per_endpoint_due.c.id)
            .select_from(WebhookEndpoint)
            .join(per_endpoint_due, true())
            .where(WebhookEndpoint.status == ENABLED)
            .order_by(per_endpoint_due.c.next_attempt_at, per_endpoint_due.c.id)
            .limit(batch)
        )
    # SQLite (development) has no LATERAL: rank every due delivery per endpoint instead.
    ranked = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.next_attempt_at,
            func.row_number()
            .over(
                partition_by=WebhookDelivery.endpoint_id,
                order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
            )
            .label("rank"),
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(*claimable, WebhookEndpoint.status == ENABLED)
        .subquery()
    )
    return (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_endpoint)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(batch)
    )


async def due_backlog(session: AsyncSession, now: datetime) -> Row[int, datetime | None]:
    """How many pending deliveries are due, and the oldest one's due time."""
    return (
        await session.execute(
            select(func.count(WebhookDelivery.id), func.min(WebhookDelivery.next_attempt_at)).where(
                and_(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
            )
        )
    ).one()
