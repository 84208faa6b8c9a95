"""Background loops: the expiry sweeper and housekeeping. `gateway worker` runs them in production;
`gateway serve` runs them in-process in the development profile."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.idempotency.service import purge_expired
from gateway.payments.service import expire_due_payments
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.worker")


async def sweep_once(rt: Runtime) -> int:
    expired = await expire_due_payments(rt)
    if expired:
        log.info("sweeper.expired", count=expired)
    return expired


async def run_periodically(rt: Runtime, stop: asyncio.Event) -> None:
    purge_every = 600.0
    since_purge = purge_every
    while not stop.is_set():
        try:
            await sweep_once(rt)
            if since_purge >= purge_every:
                purged = await purge_expired(rt)
                if purged:
                    log.info("idempotency.purged", count=purged)
                since_purge = 0.0
        except Exception as exc:  # a database blip must not kill the loop
            log.warning("worker.iteration_failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=rt.settings.sweep_interval_seconds)
        since_purge += rt.settings.sweep_interval_seconds
