"""Bulk data for S3 and S5, written with asyncpg COPY straight into the gateway's own tables (after
`gateway migrate`), shaped like the rows the gateway writes itself.

* payments: ids "pay_" + a ULID whose time part increases with the row (one payment every ~30 s over the last
  365 days at 1,000,000 rows), so they sort and page exactly like the gateway's; VietQR payments, mostly
  succeeded, a few expired, canceled or failed — all terminal, so reading them never writes.
* events + webhook_deliveries: one payment.succeeded event per delivery, all due now, to one endpoint, written
  in ONE transaction so that the whole backlog appears to the worker at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from ulid import ULID

from gateway.adapters.emvco import VietQRPayload, build_vietqr
from gateway.adapters.vietqr.adapter import VietQRAdapter
from gateway.adapters.vietqr.wire import payment_code

PAYMENT_COLUMNS = (
    "id",
    "merchant_id",
    "livemode",
    "status",
    "amount",
    "currency",
    "amount_received",
    "amount_refunded",
    "method",
    "provider",
    "provider_reference",
    "reference",
    "description",
    "customer",
    "metadata",
    "return_url",
    "next_action",
    "provider_data",
    "failure_code",
    "failure_message",
    "provider_attempted_at",
    "expires_at",
    "created_at",
    "updated_at",
    "next_status_check_at",
    "status_checks",
)
SPAN = timedelta(days=365)
BANK = VietQRAdapter.sandbox.settings
PLACEHOLDER_CODE = "GW000000000000X"


@dataclass(frozen=True)
class SeededPayments:
    count: int
    sample_ids: list[str]  # random rows, for GET /v1/payments/{id}
    sample_references: list[str]  # their references, for GET /v1/payments?reference=
    seconds: float


def _status(i: int) -> str:
    bucket = i % 100
    if bucket < 85:
        return "succeeded"
    if bucket < 93:
        return "expired"
    if bucket < 98:
        return "canceled"
    return "failed"


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class PaymentRows:
    def __init__(self, merchant_id: str, count: int, livemode: bool) -> None:
        self.merchant_id = merchant_id
        self.livemode = livemode
        self.count = count
        self.start = datetime.now(UTC) - SPAN - timedelta(hours=1)
        self.step = SPAN / max(count, 1)
        # The QR payload depends on the amount and the code: one template per amount, the code substituted.
        # (Its CRC is then not the real one; nothing reads the QR of a terminal payment.)
        self.qr_templates: dict[int, str] = {}

    def amount(self, i: int) -> int:
        return 50_000 + (i * 7919 % 100) * 10_000

    def reference(self, i: int) -> str:
        return f"BILL-{i:07d}"

    def qr(self, amount: int, code: str) -> str:
        template = self.qr_templates.get(amount)
        if template is None:
            template = build_vietqr(
                VietQRPayload(
                    bank_bin=BANK["bank_bin"],
                    account_number=BANK["account_number"],
                    amount=amount,
                    purpose=PLACEHOLDER_CODE,
                )
            )
            self.qr_templates[amount] = template
        return template.replace(PLACEHOLDER_CODE, code)

    def row(self, i: int) -> tuple[Any, ...]:
        created = self.start + self.step * i
        payment_id = f"pay_{ULID.from_datetime(created)}"
        code = payment_code(payment_id)
        status = _status(i)
        amount = self.amount(i)
        expires = created + timedelta(minutes=15)
        updated = created + timedelta(minutes=2)
        next_action = {
            "type": "display_qr",
            "qr_payload": self.qr(amount, code),
            "qr_image_url": f"/v1/payments/{payment_id}/qr.png",
            "expires_at": _iso(expires),
        }
        provider_data = {
            "routing": {"explicit": False, "tried": []},
            "account_key": f"{BANK['bank_bin']}:{BANK['account_number']}",
            "bank_bin": BANK["bank_bin"],
            "account_number": BANK["account_number"],
            "account_name": BANK["account_name"],
            "payment_code": code,
        }
        failed = status == "failed"
        return (
            payment_id,
            self.merchant_id,
            self.livemode,
            status,
            amount,
            "VND",
            amount if status == "succeeded" else 0,
            0,
            "vietqr",
            "vietqr",
            code,
            self.reference(i),
            "Electricity bill" if i % 3 else None,
            None,
            "{}",
            None,
            orjson.dumps(next_action).decode(),
            orjson.dumps(provider_data).decode(),
            "transfer_rejected" if failed else None,
            "Payer's bank rejected the transfer" if failed else None,
            None,
            expires,
            created,
            expires if status == "expired" else updated,
            None,
            0,
        )


async def seed_payments(
    dsn: str,
    merchant_id: str,
    count: int,
    *,
    livemode: bool = False,
    sample: int = 5000,
    batch: int = 25_000,
    parallel: int = 2,
) -> SeededPayments:
    started = time.monotonic()
    rows = PaymentRows(merchant_id, count, livemode)
    picked = sorted(random.Random(20261122).sample(range(count), min(sample, count)))
    sample_ids: list[str] = []
    sample_references: list[str] = []
    batches = asyncio.Queue[range]()
    for first in range(0, count, batch):
        batches.put_nowait(range(first, min(first + batch, count)))
    picked_set = set(picked)

    async def copier() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while not batches.empty():
                indexes = batches.get_nowait()
                records = [rows.row(i) for i in indexes]
                for i, record in zip(indexes, records, strict=True):
                    if i in picked_set:
                        sample_ids.append(record[0])
                        sample_references.append(record[11])
                # The other copier builds its next batch while the server ingests this one.
                await conn.copy_records_to_table("payments", records=records, columns=PAYMENT_COLUMNS)
        finally:
            await conn.close()

    await asyncio.gather(*(copier() for _ in range(parallel)))
    conn = await asyncpg.connect(dsn)
    try:
        # What autovacuum would have done by the time a table holds a year of payments: statistics for the
        # planner and a visibility map for index-only scans.
        await conn.execute("VACUUM (ANALYZE) payments")
    finally:
        await conn.close()
    return SeededPayments(count, sample_ids, sample_references, time.monotonic() - started)


def _event_body(event_id: str, payment_id: str, now: datetime) -> str:
    created = _iso(now)
    payment = {
        "id": payment_id,
        "object": "payment",
        "livemode": False,
        "status": "succeeded",
        "amount": 150000,
        "currency": "VND",
        "amount_received": 150000,
        "amount_refunded": 0,
        "method": "vietqr",
        "provider": "vietqr",
        "provider_reference": payment_code(payment_id),
        "reference": "HIS-2026-000123",
        "description": None,
        "customer": None,
        "metadata": {},
        "return_url": None,
        "next_action": None,
        "failure_code": None,
        "failure_message": None,
        "expires_at": created,
        "created_at": created,
        "updated_at": created,
    }
    document = {
        "id": event_id,
        "object": "event",
        "type": "payment.succeeded",
        "created_at": created,
        "data": {"object": payment},
    }
    return orjson.dumps(document).decode()


async def seed_deliveries(dsn: str, merchant_id: str, endpoint_id: str, count: int, *, livemode: bool = False) -> float:
    """`count` due deliveries to `endpoint_id`; returns time.monotonic() right after they were committed."""
    now = datetime.now(UTC)
    base = now - timedelta(minutes=10)
    events: list[Sequence[Any]] = []
    deliveries: list[Sequence[Any]] = []
    for i in range(count):
        at = base + timedelta(milliseconds=i)
        event_id = f"evt_{ULID.from_datetime(at)}"
        payment_id = f"pay_{ULID.from_datetime(at)}"
        events.append(
            (
                event_id,
                merchant_id,
                livemode,
                "payment.succeeded",
                payment_id,
                None,
                _event_body(event_id, payment_id, at),
                at,
            )
        )
        deliveries.append((event_id, endpoint_id, "pending", 0, now - timedelta(seconds=1), None, None, now, now))
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "events",
                records=events,
                columns=("id", "merchant_id", "livemode", "type", "payment_id", "refund_id", "body", "created_at"),
            )
            await conn.copy_records_to_table(
                "webhook_deliveries",
                records=deliveries,
                columns=(
                    "event_id",
                    "endpoint_id",
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "claimed_until",
                    "claim_token",
                    "created_at",
                    "updated_at",
                ),
            )
            # Statistics that include the backlog, committed with it, so the worker's first claim plans well.
            await conn.execute("ANALYZE events; ANALYZE webhook_deliveries")
        committed = time.monotonic()
    finally:
        await conn.close()
    return committed
