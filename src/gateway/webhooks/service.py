"""Webhook endpoints and the delivery queue they are fed from (CONTRACT §5)."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.clock import isoformat
from gateway.db import insert_many
from gateway.domain import WebhookEndpointStatus
from gateway.errors import NotFound, UrlNotAllowedError
from gateway.events.models import Event, EventBatch
from gateway.pagination import keyset_page
from gateway.runtime import Runtime
from gateway.webhooks.addresses import UrlNotAllowed, check_target
from gateway.webhooks.models import (
    CANCELED,
    DISABLED,
    ENABLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from gateway.webhooks.schemas import EndpointCreate, EndpointUpdate

__all__ = ["CANCELED", "DISABLED", "ENABLED", "FAILED", "PENDING", "SUCCEEDED"]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def _secret_context(endpoint_id: str) -> str:
    return f"webhook_endpoint:{endpoint_id}"


def endpoint_object(e: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": e.id,
        "object": "webhook_endpoint",
        "livemode": e.livemode,
        "url": e.url,
        "events": e.events,
        "description": e.description,
        "status": e.status,
        "disabled_reason": e.disabled_reason,
        "created_at": isoformat(e.created_at),
        "updated_at": isoformat(e.updated_at),
    }
    if secret is not None:
        document["secret"] = secret
    return document


def signing_secrets(rt: Runtime, e: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, plus the previous one while a rotation's overlap lasts."""
    secrets = [rt.secret_box.decrypt(e.secret_encrypted, context=_secret_context(e.id))]
    if e.previous_secret_encrypted and e.previous_secret_expires_at and e.previous_secret_expires_at > now:
        secrets.append(rt.secret_box.decrypt(e.previous_secret_encrypted, context=_secret_context(e.id)))
    return secrets


async def check_url(rt: Runtime, url: str) -> None:
    try:
        await check_target(
            url,
            allow_private=rt.settings.allow_private_webhooks,
            require_https=not rt.settings.is_development,
        )
    except UrlNotAllowed as exc:
        raise UrlNotAllowedError(
            f"Webhook URL refused: {exc}.", errors=[{"loc": ["body", "url"], "msg": str(exc)}]
        ) from None


async def create_endpoint(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, params: EndpointCreate
) -> tuple[WebhookEndpoint, str]:
    """The caller has checked the URL (check_url) before opening the transaction: DNS is slow."""
    now = rt.clock.now()
    endpoint_id = rt.ids.new("we")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        merchant_id=scope.merchant_id,
        livemode=scope.livemode,
        url=params.url,
        description=params.description,
        events=params.events,
        status=ENABLED,
        secret_encrypted=rt.secret_box.encrypt(secret, context=_secret_context(endpoint_id)),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, scope: MerchantScope, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id,
        WebhookEndpoint.merchant_id == scope.merchant_id,
        WebhookEndpoint.livemode == scope.livemode,
        WebhookEndpoint.deleted_at.is_(None),
    )
    if lock:
        # FOR NO KEY UPDATE: does not block the deliveries whose foreign key points at this endpoint.
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    endpoint = (await session.execute(stmt)).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


async def list_endpoints(
    session: AsyncSession, scope: MerchantScope, limit: int, starting_after: str | None
) -> tuple[list[WebhookEndpoint], bool]:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == scope.merchant_id,
        WebhookEndpoint.livemode == scope.livemode,
        WebhookEndpoint.deleted_at.is_(None),
    )
    return await keyset_page(session, stmt, WebhookEndpoint.id, limit, starting_after)


async def update_endpoint(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, endpoint_id: str, params: EndpointUpdate
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, scope, endpoint_id, lock=True)
    if params.url is not None:  # checked by the caller before the transaction (check_url)
        endpoint.url = params.url
    if params.events is not None:
        endpoint.events = params.events
    if params.description is not None:
        endpoint.description = params.description
    if params.status is not None and params.status != endpoint.status:
        endpoint.status = WebhookEndpointStatus(params.status)
        endpoint.disabled_reason = "disabled by the merchant" if params.status == DISABLED else None
        endpoint.failing_since = None
    endpoint.updated_at = rt.clock.now()
    return endpoint


async def delete_endpoint(session: AsyncSession, rt: Runtime, scope: MerchantScope, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, scope, endpoint_id, lock=True)
    now = rt.clock.now()
    endpoint.deleted_at = endpoint.updated_at = now
    endpoint.status = DISABLED
    endpoint.disabled_reason = "deleted"
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING)
        .values(status=CANCELED, next_attempt_at=None, updated_at=now)
    )


async def rotate_secret(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, endpoint_id: str, expire_old_after: int
) -> tuple[WebhookEndpoint, str]:
    endpoint = await get_endpoint(session, scope, endpoint_id, lock=True)
    now = rt.clock.now()
    secret = new_secret()
    if expire_old_after > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = now + timedelta(seconds=expire_old_after)
    else:
        endpoint.previous_secret_encrypted = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = rt.secret_box.encrypt(secret, context=_secret_context(endpoint.id))
    endpoint.updated_at = now
    return endpoint, secret


def _subscribed(events: list[str], event_type: str) -> bool:
    return "*" in events or event_type in events


_ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
# Run with every event: built once (reused: see gateway.db).
_SUBSCRIBERS = select(_ENDPOINTS.c.id, _ENDPOINTS.c.events).where(
    _ENDPOINTS.c.merchant_id == bindparam("merchant_id"),
    _ENDPOINTS.c.livemode == bindparam("livemode"),
    _ENDPOINTS.c.status == ENABLED,
    _ENDPOINTS.c.deleted_at.is_(None),
)
_INSERT_DELIVERIES = insert(cast(Table, WebhookDelivery.__table__))


async def enqueue_deliveries(session: AsyncSession, rt: Runtime, event: Event) -> int:
    """One delivery per subscribed endpoint, in the transaction that writes the event (the outbox)."""
    endpoints = (
        await session.execute(_SUBSCRIBERS, {"merchant_id": event.merchant_id, "livemode": event.livemode})
    ).all()
    targets = [e.id for e in endpoints if _subscribed(e.events, event.type)]
    await _queue(session, event.id, targets, event.created_at)
    return len(targets)


async def enqueue_batch_deliveries(session: AsyncSession, rt: Runtime, batch: EventBatch) -> int:
    """enqueue_deliveries for a batch of events of one type: one endpoint lookup, one multi-row INSERT."""
    endpoints = (
        await session.execute(_SUBSCRIBERS, {"merchant_id": batch.merchant_id, "livemode": batch.livemode})
    ).all()
    targets = [e.id for e in endpoints if _subscribed(e.events, batch.type)]
    if not targets:
        return 0
    now = batch.created_at
    rows = [
        {
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for event_id in batch.event_ids
        for endpoint_id in targets
    ]
    await insert_many(session, WebhookDelivery, rows)
    return len(rows)


async def _queue(session: AsyncSession, event_id: str, endpoint_ids: list[str], now: datetime) -> None:
    if not endpoint_ids:
        return
    rows = [
        {
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for endpoint_id in endpoint_ids
    ]
    await session.execute(_INSERT_DELIVERIES, rows)


async def redeliver(
    session: AsyncSession, rt: Runtime, scope: MerchantScope, event_id: str, endpoint_id: str | None
) -> list[str]:
    """A fresh attempt series for the event's subscribed endpoints, or for the one named."""
    event = (
        await session.execute(
            select(Event).where(
                Event.id == event_id, Event.merchant_id == scope.merchant_id, Event.livemode == scope.livemode
            )
        )
    ).scalar_one_or_none()
    if event is None:
        raise NotFound(f"No event {event_id}.")
    if endpoint_id is not None:
        targets = [(await get_endpoint(session, scope, endpoint_id)).id]
    else:
        rows, _ = await list_endpoints(session, scope, 1000, None)
        targets = [e.id for e in rows if e.status == ENABLED and _subscribed(e.events, event.type)]
    await _queue(session, event.id, targets, rt.clock.now())
    return targets


def attempt_object(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "id": f"wha_{a.id}",
        "object": "webhook_attempt",
        "event_id": a.event_id,
        "endpoint_id": a.endpoint_id,
        "attempt": a.attempt,
        "status_code": a.status_code,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "response_body": a.response_body,
        "created_at": isoformat(a.created_at),
        "next_attempt_at": isoformat(a.next_attempt_at) if a.next_attempt_at else None,
    }


async def list_attempts(
    session: AsyncSession, scope: MerchantScope, endpoint_id: str, limit: int, starting_after: str | None
) -> tuple[list[WebhookAttempt], bool]:
    await get_endpoint(session, scope, endpoint_id)
    stmt = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
    cursor: int | None = None
    if starting_after is not None:
        digits = starting_after.removeprefix("wha_")
        if not digits.isdigit() or len(digits) > 18:
            raise NotFound(f"No attempt {starting_after}.")
        cursor = int(digits)
    return await keyset_page(session, stmt, WebhookAttempt.id, limit, cursor)
