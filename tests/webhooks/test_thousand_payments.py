"""Issue acceptance: every event of a 1,000-payment run arrives, verified, exactly once after dedupe on
webhook-id, while the receiver fails half of the first attempts."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
from sqlalchemy import text
from standardwebhooks import Webhook
from starlette.responses import Response

from gateway.clock import ManualClock
from gateway.runtime import Runtime
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import MerchantHandle, create_vietqr_payment, pay, postgresql_only
from tests.webhooks.conftest import subscribe
from tests.webhooks.receiver import Receiver

PAYMENTS = 1000


def fails_first_attempt(webhook_id: str) -> bool:
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 2 == 0


# The dispatcher's claims and retries are the same SQL on both engines; the run is long, so it runs where production does.
@postgresql_only
async def test_thousand_payments_every_event_exactly_once(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, rt: Runtime, clock: ManualClock
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url)
    receiver.behaviour = lambda item, seen: (
        Response(b"try later", 500) if seen == 1 and fails_first_attempt(item.headers["webhook-id"]) else None
    )

    async def one_payment(i: int) -> None:
        payment = await create_vietqr_payment(client, merchant, amount=10000 + i, reference=f"EVN-{i:05d}")
        await pay(client, merchant, payment["id"])

    for start in range(0, PAYMENTS, 25):
        await asyncio.gather(*(one_payment(i) for i in range(start, min(start + 25, PAYMENTS))))

    dispatcher = Dispatcher(rt, batch=500)
    try:
        for _ in range(1000):
            if await dispatcher.run_once() == 0:
                clock.advance(10)  # let the retries come due
                if await dispatcher.run_once() == 0:
                    break
    finally:
        await dispatcher.aclose()

    async with rt.db.transaction() as session:
        event_ids = set((await session.execute(text("SELECT id FROM events"))).scalars())
        pending = (
            await session.execute(text("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'"))
        ).scalar_one()
    assert len(event_ids) == 2 * PAYMENTS and pending == 0

    verifier = Webhook(endpoint["secret"])
    delivered: dict[str, bytes] = {}
    failed_first = 0
    for item in receiver.received:
        event = verifier.verify(item.body, item.headers)
        assert event["id"] == item.headers["webhook-id"]
        if item.headers["webhook-id"] in delivered:
            assert delivered[item.headers["webhook-id"]] == item.body  # a retry is byte-for-byte the same
            failed_first += 1
        delivered[item.headers["webhook-id"]] = item.body
    assert set(delivered) == event_ids
    assert 0.4 * len(event_ids) < failed_first < 0.6 * len(event_ids)
    assert len(receiver.received) == len(event_ids) + failed_first  # nothing sent twice without a failure
    succeeded = [json.loads(b) for b in delivered.values() if json.loads(b)["type"] == "payment.succeeded"]
    assert len(succeeded) == PAYMENTS
