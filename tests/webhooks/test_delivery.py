"""Standard Webhooks delivery: signatures a receiver verifies with the reference library, retries, faults."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import httpx
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.responses import Response

from gateway.clock import ManualClock
from gateway.domain import EventType
from gateway.events.service import record_event
from gateway.runtime import Runtime
from gateway.webhooks.dispatcher import Dispatcher, sign
from tests.conftest import MerchantHandle, create_merchant, create_vietqr_payment, pay
from tests.webhooks.conftest import drain, subscribe
from tests.webhooks.receiver import Received, Receiver, bound_socket, serve


def test_signature_matches_the_published_vector() -> None:
    signature = sign(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def verify(secret: str, item: Received) -> dict[str, object]:
    return dict(Webhook(secret).verify(item.body, item.headers))


async def test_events_arrive_signed_and_byte_identical_to_the_api(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url)
    payment = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, payment["id"])
    assert await drain(dispatcher) == 2

    # Standard Webhooks promises no order: attempts go out concurrently.
    assert sorted(json.loads(r.body)["type"] for r in receiver.received) == [
        "payment.requires_action",
        "payment.succeeded",
    ]
    for item in receiver.received:
        event = verify(endpoint["secret"], item)
        assert item.headers["webhook-id"] == event["id"]
        assert item.headers["content-type"] == "application/json"
        assert item.headers["user-agent"].startswith("public-payments-gateway-webhooks/")
        served = await client.get(f"/v1/events/{event['id']}", headers=merchant.headers)
        assert served.content == item.body
    attempts = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert [(a["attempt"], a["status_code"], a["error"]) for a in attempts] == [
        (1, 200, None),
        (1, 200, None),
    ]
    assert attempts[0]["next_attempt_at"] is None and attempts[0]["duration_ms"] >= 0


async def test_filters_select_event_types(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    await subscribe(client, merchant, receiver.url, ["payment.succeeded"])
    payment = await create_vietqr_payment(client, merchant)
    await pay(client, merchant, payment["id"])
    await drain(dispatcher)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["payment.succeeded"]


async def test_failures_are_retried_on_the_schedule_with_the_same_body(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.behaviour = lambda item, seen: Response(b"boom", 500) if seen == 1 else None
    await create_vietqr_payment(client, merchant)
    assert await drain(dispatcher) == 1
    [failed] = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert failed["status_code"] == 500 and failed["response_body"] == "boom"
    delay = (datetime.fromisoformat(failed["next_attempt_at"]) - clock.now()).total_seconds()
    assert 4 <= delay <= 6  # 5 s ± 20 %

    assert await drain(dispatcher) == 0  # not due yet
    clock.advance(6)
    assert await drain(dispatcher) == 1
    first, second = receiver.received
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    verify(endpoint["secret"], second)


async def test_schedule_exhaustion_fails_the_delivery_and_redelivery_starts_again(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
    rt: Runtime,
) -> None:
    rt.settings.webhook_retry_schedule = "1,2"
    await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.behaviour = lambda item, seen: Response(b"", 503)
    await create_vietqr_payment(client, merchant)
    for _ in range(3):
        await drain(dispatcher)
        clock.advance(3)
    assert len(receiver.received) == 3  # first attempt + 2 retries
    async with rt.db.transaction() as session:
        statuses = (await session.execute(text("SELECT status FROM webhook_deliveries"))).scalars().all()
    assert statuses == ["failed"]

    event_id = receiver.received[0].headers["webhook-id"]
    receiver.behaviour = None
    again = await client.post(f"/v1/events/{event_id}/redeliver", headers=merchant.headers)
    assert again.status_code == 202 and len(again.json()["endpoint_ids"]) == 1
    assert await drain(dispatcher) == 1
    assert receiver.ids()[-1] == event_id


async def test_410_disables_the_endpoint(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url)
    receiver.behaviour = lambda item, seen: Response(b"", 410)
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    after = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)).json()
    assert after["status"] == "disabled" and "410" in after["disabled_reason"]
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    assert len(receiver.received) == 1


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.behaviour = lambda item, seen: Response(b"", 302, headers={"location": "/elsewhere"})
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    assert [r.path for r in receiver.received] == ["/hooks"]
    [attempt] = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert attempt["status_code"] == 302 and attempt["next_attempt_at"] is not None


async def test_retry_after_is_honoured(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.behaviour = lambda item, seen: Response(b"", 429, headers={"retry-after": "120"}) if seen == 1 else None
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    [attempt] = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert (datetime.fromisoformat(attempt["next_attempt_at"]) - clock.now()).total_seconds() == 120
    clock.advance(60)
    assert await drain(dispatcher) == 0
    clock.advance(61)
    assert await drain(dispatcher) == 1


async def test_a_slow_receiver_times_out_and_is_retried(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, rt: Runtime, clock: ManualClock
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.delay = 1.0
    quick = Dispatcher(rt, timeout=0.3)
    try:
        await create_vietqr_payment(client, merchant)
        assert await drain(quick) == 1
        [attempt] = (
            await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
        ).json()["data"]
        assert attempt["status_code"] is None and "timeout" in attempt["error"]
        receiver.delay = 0
        clock.advance(10)
        assert await drain(quick) == 1
    finally:
        await quick.aclose()


async def test_receiver_down_then_up_gets_every_event(
    client: httpx.AsyncClient, merchant: MerchantHandle, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    sock = bound_socket()  # reserved port, nobody listening yet: connections are refused
    port = sock.getsockname()[1]
    sock.close()
    await subscribe(client, merchant, f"http://127.0.0.1:{port}/hooks", ["payment.requires_action"])
    for _ in range(3):
        await create_vietqr_payment(client, merchant)
    assert await drain(dispatcher) == 3
    async with serve(Receiver(url="", port=port), bound_socket(port)) as receiver:
        clock.advance(10)
        await drain(dispatcher)
        assert len(receiver.ids()) == 3 and len(set(receiver.ids())) == 3


async def test_deleted_endpoint_gets_no_more_deliveries(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url)
    await create_vietqr_payment(client, merchant)
    await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)
    await create_vietqr_payment(client, merchant)
    assert await drain(dispatcher) == 0
    assert receiver.received == []


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    old = endpoint["secret"]
    rotated = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
        headers=merchant.headers,
        json={"expire_old_after": 3600},
    )
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")

    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(old, during)
    verify(new, during)

    clock.advance(3601)
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verify(new, after)
    with pytest.raises(WebhookVerificationError):
        verify(old, after)

    immediate = await client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
        headers=merchant.headers,
        json={"expire_old_after": 0},
    )
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    verify(immediate.json()["secret"], receiver.received[-1])
    with pytest.raises(WebhookVerificationError):
        verify(new, receiver.received[-1])


async def test_private_address_at_delivery_is_a_recorded_failure(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    rt: Runtime,
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    rt.settings.webhook_allow_private = False  # e.g. the DNS record now points inside the network
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    assert receiver.received == []
    [attempt] = (
        await client.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=merchant.headers)
    ).json()["data"]
    assert attempt["error"].startswith("url_not_allowed")


async def test_a_killed_dispatcher_leaves_a_lease_that_expires(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
) -> None:
    await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    await create_vietqr_payment(client, merchant)
    claimed = await dispatcher.claim_due_deliveries()  # then the process dies before sending or recording anything
    assert len(claimed) == 1
    assert await drain(dispatcher) == 0  # the lease still holds
    clock.advance(dispatcher.lease.total_seconds() + 1)
    assert await drain(dispatcher) == 1
    assert len(receiver.ids()) == 1


async def test_two_dispatchers_never_send_the_same_attempt(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, rt: Runtime
) -> None:
    await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    for _ in range(40):
        await create_vietqr_payment(client, merchant)
    first, second = Dispatcher(rt, batch=7), Dispatcher(rt, batch=7)
    try:
        for _ in range(10):
            await asyncio.gather(first.run_once(), second.run_once())
    finally:
        await first.aclose()
        await second.aclose()
    assert len(receiver.ids()) == 40 and len(set(receiver.ids())) == 40


async def test_an_endpoint_failing_for_five_days_is_disabled(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    receiver: Receiver,
    dispatcher: Dispatcher,
    clock: ManualClock,
) -> None:
    endpoint = await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    receiver.behaviour = lambda item, seen: Response(b"", 500)
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    clock.advance(5 * 86400)
    await create_vietqr_payment(client, merchant)
    await drain(dispatcher)
    after = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)).json()
    assert after["status"] == "disabled" and "5 days" in after["disabled_reason"]


async def test_metrics_show_deliveries_and_backlog(
    client: httpx.AsyncClient, merchant: MerchantHandle, receiver: Receiver, dispatcher: Dispatcher
) -> None:
    await subscribe(client, merchant, receiver.url, ["payment.requires_action"])
    await create_vietqr_payment(client, merchant)
    assert "gateway_webhook_backlog 1.0" in (await client.get("/metrics")).text
    await drain(dispatcher)
    text_ = (await client.get("/metrics")).text
    assert "gateway_webhook_backlog 0.0" in text_
    assert 'gateway_webhook_attempts_total{outcome="delivered"} 1.0' in text_
    assert "gateway_webhook_attempt_duration_seconds_count 1.0" in text_


async def test_a_backlogged_endpoint_does_not_starve_others(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, clock: ManualClock
) -> None:
    other = await create_merchant(client, "Other")
    for m in (merchant, other):
        await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:1/"}, headers=m.headers)
    async with rt.db.transaction() as session:
        for _ in range(250):
            await record_event(
                session, rt, merchant_id=merchant.id, livemode=False, type=EventType.payment_processing, obj={}
            )
    clock.advance(1)
    async with rt.db.transaction() as session:
        await record_event(session, rt, merchant_id=other.id, livemode=False, type=EventType.payment_processing, obj={})
    dispatcher = Dispatcher(rt, timeout=1.0)
    try:
        claimed = await dispatcher.claim_due_deliveries()
    finally:
        await dispatcher.aclose()
    per_endpoint = {job.endpoint_id for job in claimed}
    assert len(claimed) == dispatcher.per_endpoint + 1 and len(per_endpoint) == 2
