"""Background loops: the expiry sweeper, the janitor and housekeeping. `gateway worker` runs them in production;
`gateway serve` runs them in-process in the development profile."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.idempotency.service import purge_expired
from gateway.janitor import check_payments_once, check_refunds_once
from gateway.payments.service import expire_due_payments
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.worker")


async def sweep_once(rt: Runtime) -> int:
    expired = 0
    for name, stage in (
        ("sweeper", expire_due_payments),
        ("janitor.payments", check_payments_once),
        ("janitor.refunds", check_refunds_once),
    ):
        try:  # each stage on its own: one failing never stops the others
            done = await stage(rt)
        except Exception as exc:
            log.warning("worker.stage_failed", stage=name, error=type(exc).__name__)
            continue
        if name == "sweeper":
            expired = done
            if done:
                log.info("sweeper.expired", count=done)
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
