"""Delivers queued webhooks: claim due deliveries with a lease, send them holding no transaction, record
every attempt. Any number of dispatchers can share one PostgreSQL: a claim is `FOR UPDATE SKIP LOCKED` and
its lease is committed before anything is sent, so no attempt is sent twice; a dispatcher killed mid-attempt
leaves a lease that expires, and the delivery is retried (at least once, receivers dedupe on webhook-id)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
import structlog
from sqlalchemy import select, update
from standardwebhooks import Webhook

from gateway import __version__
from gateway.runtime import Runtime
from gateway.webhooks import repository
from gateway.webhooks.addresses import CheckedResolver, UrlNotAllowed, check_addresses, check_scheme
from gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from gateway.webhooks.service import DISABLED, FAILED, PENDING, SUCCEEDED, signing_secrets

log = structlog.get_logger("gateway.webhooks")

RESPONSE_BODY_LIMIT = 1024
DISABLE_AFTER = timedelta(days=5)
USER_AGENT = f"public-payments-gateway-webhooks/{__version__}"


@dataclass(frozen=True)
class Job:
    delivery_id: int
    attempt: int
    event_id: str
    body: str
    endpoint_id: str
    url: str
    secrets: list[str]
    claim_token: str


@dataclass(frozen=True)
class Result:
    job: Job
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None
    retry_after: float | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secrets: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """Standard Webhooks signatures, one per valid secret, space-separated."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)  # the library reads it as UTC wall time
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    return None


class Dispatcher:
    def __init__(
        self,
        rt: Runtime,
        *,
        concurrency: int = 128,
        per_endpoint: int = 32,
        batch: int = 200,
        timeout: float = 15.0,
        poll_interval: float = 0.2,
    ) -> None:
        self.rt = rt
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.batch = batch
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.lease = timedelta(seconds=timeout * 2 + 30)
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp, not httpx: measured at ~80 µs of CPU per POST against httpx's ~1.4 ms (bench/RESULTS.md).
        # No proxies from the environment, no redirects followed, and every connection goes to an address
        # the resolver checked (SSRF); created lazily, inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency,
                use_dns_cache=False,
                resolver=CheckedResolver(lambda: self.rt.settings.allow_private_webhooks),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"user-agent": USER_AGENT}, trust_env=False, auto_decompress=False
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def run_once(self) -> int:
        """Claim what is due, deliver it, record the attempts; returns how many were attempted."""
        jobs = await self.claim_due_deliveries()
        if not jobs:
            return 0
        results = await asyncio.gather(*(self._deliver(job) for job in jobs))
        await self._record(results)
        return len(results)

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                attempted = await self.run_once()
            except Exception as exc:  # a database blip must not stop deliveries for good
                log.warning("webhooks.dispatch_failed", error=type(exc).__name__)
                attempted = 0
            if attempted == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)

    async def claim_due_deliveries(self) -> list[Job]:
        rt = self.rt
        now = rt.clock.now()
        token = secrets.token_hex(16)
        async with rt.db.transaction() as session:
            loaded = await repository.claim_due_deliveries(
                session,
                now=now,
                claim_token=token,
                lease=self.lease,
                batch=self.batch,
                per_endpoint=self.per_endpoint,
                is_sqlite=rt.db.is_sqlite,
            )
            return [
                Job(
                    delivery_id=d_id,
                    attempt=attempts,
                    event_id=event_id,
                    body=body,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secrets=signing_secrets(rt, endpoint, now),
                    claim_token=token,
                )
                for d_id, attempts, event_id, body, endpoint in loaded
            ]

    async def _deliver(self, job: Job) -> Result:
        async with self._slots:
            started = time.perf_counter()
            try:
                _scheme, host, _port, _path = check_scheme(job.url, require_https=not self.rt.settings.is_development)
                if _is_ip_literal(host):  # never given to the resolver
                    check_addresses(host, [host], allow_private=self.rt.settings.allow_private_webhooks)
            except UrlNotAllowed as exc:
                return Result(job, None, f"url_not_allowed: {exc}", 0, None, None)
            timestamp = int(time.time())  # the receiver checks it against its own wall clock
            headers = {
                "content-type": "application/json",
                "webhook-id": job.event_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(job.secrets, job.event_id, timestamp, job.body),
            }
            try:
                # One deadline for the whole attempt: a receiver trickling bytes cannot hold a slot (or outlive
                # the lease) by answering each read just in time.
                async with (
                    asyncio.timeout(self.timeout),
                    self._http().post(job.url, data=job.body.encode(), headers=headers, allow_redirects=False) as r,
                ):
                    snippet = bytearray()
                    while len(snippet) < RESPONSE_BODY_LIMIT:
                        chunk = await r.content.read(RESPONSE_BODY_LIMIT - len(snippet))
                        if not chunk:
                            break
                        snippet += chunk
                    status, retry_header = r.status, r.headers.get("retry-after")
            except UrlNotAllowed as exc:
                return self._result(job, started, None, f"url_not_allowed: {exc}", None, None)
            except TimeoutError:
                return self._result(job, started, None, f"timeout after {self.timeout:g}s", None, None)
            except (aiohttp.ClientError, OSError) as exc:
                return self._result(job, started, None, f"{type(exc).__name__}: {exc}"[:500], None, None)
            retry_after = _retry_after(retry_header, time.time()) if status in (429, 503) else None
            body = bytes(snippet).decode("utf-8", errors="replace")
            return self._result(job, started, status, None, body, retry_after)

    def _result(
        self,
        job: Job,
        started: float,
        status: int | None,
        error: str | None,
        body: str | None,
        retry_after: float | None,
    ) -> Result:
        duration = time.perf_counter() - started
        outcome = "delivered" if status is not None and 200 <= status < 300 else "failed"
        self.rt.metrics.webhook_latency.observe(duration)
        self.rt.metrics.webhook_attempts.labels(outcome).inc()
        return Result(job, status, error, int(duration * 1000), body, retry_after)

    def _next_attempt(self, result: Result, now: datetime) -> datetime | None:
        schedule = self.rt.settings.retry_schedule
        if result.status_code == 410 or result.job.attempt > len(schedule):
            return None
        delay = schedule[result.job.attempt - 1] * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not crypto)
        if result.retry_after is not None:
            delay = min(max(result.retry_after, 1.0), 86400.0)
        return now + timedelta(seconds=delay)

    async def _record(self, results: list[Result]) -> None:
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.transaction() as session:
            endpoint_ids = sorted({r.job.endpoint_id for r in results})
            endpoints = {
                e.id: e
                for e in (
                    await session.execute(
                        select(WebhookEndpoint)
                        .where(WebhookEndpoint.id.in_(endpoint_ids))
                        .order_by(WebhookEndpoint.id)
                        .with_for_update(key_share=True)
                    )
                ).scalars()
            }
            delivered: list[int] = []
            for result in results:
                job = result.job
                next_at = None if result.delivered else self._next_attempt(result, now)
                status = SUCCEEDED if result.delivered else (PENDING if next_at is not None else FAILED)
                session.add(
                    WebhookAttempt(
                        delivery_id=job.delivery_id,
                        endpoint_id=job.endpoint_id,
                        event_id=job.event_id,
                        attempt=job.attempt,
                        status_code=result.status_code,
                        error=result.error,
                        duration_ms=result.duration_ms,
                        response_body=result.response_body,
                        created_at=now,
                        next_attempt_at=next_at,
                    )
                )
                if result.delivered:
                    delivered.append(job.delivery_id)
                else:  # only the holder of the lease decides what becomes of the delivery
                    await session.execute(
                        update(WebhookDelivery)
                        .where(WebhookDelivery.id == job.delivery_id, WebhookDelivery.claim_token == job.claim_token)
                        .values(status=status, next_attempt_at=next_at, claimed_until=None, updated_at=now)
                    )
                self._update_endpoint_health(endpoints.get(job.endpoint_id), result, now)
                rt.metrics.webhook_deliveries.labels(
                    "delivered" if result.delivered else ("retrying" if next_at else "failed")
                ).inc()
                log.info(
                    "webhook.attempt",
                    event_id=job.event_id,
                    endpoint_id=job.endpoint_id,
                    attempt=job.attempt,
                    status_code=result.status_code,
                    error=result.error,
                    outcome=status,
                )
            if delivered:  # the common case, in one statement (every job of a claim shares its lease token)
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(delivered), WebhookDelivery.claim_token == results[0].job.claim_token)
                    .values(status=SUCCEEDED, next_attempt_at=None, claimed_until=None, updated_at=now)
                )

    def _update_endpoint_health(self, endpoint: WebhookEndpoint | None, result: Result, now: datetime) -> None:
        if endpoint is None:
            return
        if result.delivered:
            endpoint.failing_since = None
            return
        if result.status_code == 410:
            self._disable(endpoint, "the endpoint answered 410 Gone", now)
            return
        endpoint.failing_since = endpoint.failing_since or now
        if now - endpoint.failing_since >= DISABLE_AFTER:
            self._disable(endpoint, "failing continuously for 5 days", now)

    @staticmethod
    def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
        if endpoint.status != DISABLED:
            endpoint.status, endpoint.disabled_reason, endpoint.updated_at = DISABLED, reason, now
            log.warning("webhook.endpoint_disabled", endpoint_id=endpoint.id, reason=reason)


async def backlog(rt: Runtime) -> tuple[int, float]:
    """Pending deliveries that are due, and how long the oldest has waited (seconds)."""
    now = rt.clock.now()
    async with rt.db.transaction() as session:
        count, oldest = await repository.due_backlog(session, now)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), (now - oldest).total_seconds() if oldest is not None else 0.0
