"""Crashes during real traffic (CONTRACT §2, §5, §8): 300 payment lifecycles against real `gateway serve`,
`gateway worker` and `gateway sandbox` processes on PostgreSQL, the server SIGKILLed three times and the worker
twice at random moments, every request retried with its Idempotency-Key as a careful client would. Afterwards
nothing is missing, nothing is doubled, every answer replays, the ledger balances and every webhook arrived."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.processes import free_port
from tests.resilience.harness import (
    Gateway,
    WebhookReceiver,
    gateway_env,
    loopback_certificate,
    require_postgres,
    run_cli,
    scratch_database,
    serving,
)

LIFECYCLES = 300
CONCURRENCY = 12
SERVER_KILLS, WORKER_KILLS = 3, 2
BUDGET_SECONDS = 115.0  # the whole run, kills and waits included
# A 409 that means "in flight, retry" (a stored refusal such as invalid_state is final and replays as it is).
RETRYABLE_CONFLICTS = {"idempotency_key_in_use", "confirmation_in_progress"}


@dataclass
class Answer:
    path: str
    body: dict[str, Any]
    status: int
    document: dict[str, Any]


@dataclass
class Lifecycle:
    index: int
    amount: int
    refund_amount: int
    answers: dict[str, Answer] = field(default_factory=dict)  # Idempotency-Key → its final answer
    payment_id: str = ""
    refund_id: str = ""
    paid_by_earlier_attempt: bool = False


@dataclass
class Client:
    http: httpx.AsyncClient
    auth: dict[str, str]
    deadline: float
    retries: Counter[str] = field(default_factory=Counter)

    async def post(self, path: str, body: dict[str, Any], key: str) -> httpx.Response:
        """Send until the answer is final: retried on connection errors, 5xx and in-flight 409s."""
        delay = 0.05
        while True:
            assert time.monotonic() < self.deadline, f"no final answer for {key} within the budget"
            try:
                response = await self.http.post(path, json=body, headers={**self.auth, "Idempotency-Key": key})
            except httpx.TransportError as exc:
                self.retries[type(exc).__name__] += 1
            else:
                code = response.json().get("code") if response.status_code >= 400 else None
                if response.status_code < 500 and code not in RETRYABLE_CONFLICTS:
                    return response
                self.retries[f"{response.status_code} {code}"] += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def get(self, path: str) -> dict[str, Any]:
        while True:
            assert time.monotonic() < self.deadline, f"GET {path} never answered"
            try:
                response = await self.http.get(path, headers=self.auth)
                if response.status_code == 200:
                    return dict(response.json())
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def _run_lifecycle(client: Client, life: Lifecycle) -> None:
    def keep(key: str, path: str, body: dict[str, Any], response: httpx.Response) -> dict[str, Any]:
        document = dict(response.json())
        life.answers[key] = Answer(path, body, response.status_code, document)
        return document

    create = {"amount": life.amount, "method": "vietqr", "reference": f"CHAOS-{life.index:04d}", "confirm": True}
    key = f"chaos-{life.index}-create"
    response = await client.post("/v1/payments", create, key)
    assert response.status_code == 201, response.text
    payment = keep(key, "/v1/payments", create, response)
    assert payment["status"] == "requires_action"
    life.payment_id = payment["id"]

    key, path, body = (
        f"chaos-{life.index}-pay",
        f"/v1/test-helpers/payments/{life.payment_id}/pay",
        {"outcome": "success"},
    )
    response = await client.post(path, body, key)
    paid = keep(key, path, body, response)
    if response.status_code == 409 and paid["code"] == "invalid_state":
        # The attempt that crashed had paid already; its retry found nothing owed (that refusal is then the
        # key's final answer). The payment itself says whether it was paid.
        life.paid_by_earlier_attempt = True
        paid = await client.get(f"/v1/payments/{life.payment_id}")
    else:
        assert response.status_code == 200, response.text
    assert paid["status"] == "succeeded" and paid["amount_received"] == life.amount, paid

    key, body = f"chaos-{life.index}-refund", {"payment_id": life.payment_id, "amount": life.refund_amount}
    response = await client.post("/v1/refunds", body, key)
    assert response.status_code == 201, response.text
    refund = keep(key, "/v1/refunds", body, response)
    assert refund["status"] in {"pending", "succeeded"} and refund["amount"] == life.refund_amount
    life.refund_id = refund["id"]


async def _chaos(database_url: str, run_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    seed = int(os.environ.get("GATEWAY_CHAOS_SEED", random.randrange(1 << 30)))  # noqa: S311 - not a secret
    rng = random.Random(seed)  # noqa: S311 - chaos, reproducible from the printed seed
    serve_port, sandbox_port, receiver_port = free_port(), free_port(), free_port()
    certificate = loopback_certificate(run_dir)
    env = gateway_env(
        database_url,
        GATEWAY_ENV="production",  # the dispatcher, sweeper and janitor run in `gateway worker` only
        GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{serve_port}",
        GATEWAY_SANDBOX_URL=f"http://127.0.0.1:{sandbox_port}",  # the bank outlives the server's crashes
        GATEWAY_WEBHOOK_ALLOW_PRIVATE="true",
        GATEWAY_WEBHOOK_RETRY_SCHEDULE="1,1,2,2,3,3,5,5,5,5",
        GATEWAY_SWEEP_INTERVAL_SECONDS="1",
    )
    migrated = run_cli(["migrate"], env, run_dir)
    assert migrated.returncode == 0, migrated.stderr
    created = run_cli(["merchant", "create", "--name", "Cho Ray Hospital", "--category", "hospital"], env, run_dir)
    assert created.returncode == 0, created.stderr
    api_key = orjson.loads(created.stdout)["api_key"]

    sandbox = Gateway(["sandbox"], env, run_dir, sandbox_port)
    server = Gateway(["serve", "--workers", "1"], env, run_dir, serve_port)
    worker = Gateway(["worker"], {**env, "SSL_CERT_FILE": str(certificate.cert)}, run_dir)
    receiver = WebhookReceiver(receiver_port)
    lives = [Lifecycle(i, 100_000 + 1_000 * i, 25_000 + 100 * i) for i in range(LIFECYCLES)]
    kills: list[str] = []
    try:
        async with serving(receiver, certificate):
            await asyncio.to_thread(sandbox.start)
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(worker.start)
            limits = httpx.Limits(max_connections=CONCURRENCY * 2)
            async with httpx.AsyncClient(base_url=server.url, timeout=15, limits=limits) as http:
                client = Client(http, {"Authorization": f"Bearer {api_key}"}, deadline)
                endpoint = await client.post(
                    "/v1/webhook-endpoints",
                    {"url": receiver.url, "events": ["payment.succeeded", "refund.succeeded"]},
                    "chaos-endpoint",
                )
                assert endpoint.status_code == 201, endpoint.text
                receiver.secret = endpoint.json()["secret"]

                finished = 0
                queue: asyncio.Queue[Lifecycle] = asyncio.Queue()
                for life in lives:
                    queue.put_nowait(life)

                async def drive() -> None:
                    nonlocal finished
                    while not queue.empty():
                        await _run_lifecycle(client, queue.get_nowait())
                        finished += 1

                async def strike() -> None:
                    # Kills at random points of the run's first half (so the 60 s recovery paths — a refund
                    # whose bank notification hit a dead server, a delivery claimed by a dead worker — still
                    # end inside the budget), each at a random instant after its point.
                    plan = [("serve", rng.uniform(0.05, 0.5)) for _ in range(SERVER_KILLS)]
                    plan += [("worker", rng.uniform(0.05, 0.5)) for _ in range(WORKER_KILLS)]
                    for who, at in sorted(plan, key=lambda p: p[1]):
                        while finished < at * LIFECYCLES:  # noqa: ASYNC110 - polling the run's own progress
                            await asyncio.sleep(0.01)
                        await asyncio.sleep(rng.uniform(0, 0.3))
                        target = server if who == "serve" else worker
                        await asyncio.to_thread(target.kill)
                        kills.append(f"{who}@{finished}")
                        await asyncio.to_thread(target.start)

                await asyncio.gather(strike(), *(drive() for _ in range(CONCURRENCY)))
                lifecycles_done = time.monotonic() - started
                assert finished == LIFECYCLES

                # Every payment.succeeded and refund.succeeded arrives (a refund settles when the bank's
                # debit notification lands, or when the janitor asks the bank about one that was lost).
                payments = {life.payment_id for life in lives}
                refunds = {life.refund_id for life in lives}
                while not (
                    payments <= receiver.of_type("payment.succeeded").keys()
                    and refunds <= receiver.of_type("refund.succeeded").keys()
                ):
                    assert time.monotonic() < deadline, (
                        f"webhooks missing: {len(payments - receiver.of_type('payment.succeeded').keys())} payments,"
                        f" {len(refunds - receiver.of_type('refund.succeeded').keys())} refunds"
                        f"\nworker log: {worker.log_tail()}"
                    )
                    await asyncio.sleep(0.2)

                # A graceful restart (replays must come from the database, not a process's memory), then every
                # completed key again: each answers its stored response, marked as replayed.
                await asyncio.to_thread(server.stop)
                await asyncio.to_thread(server.start)
                replays: Counter[str] = Counter()
                pending = [(key, answer) for life in lives for key, answer in life.answers.items()]

                async def replay() -> None:
                    while pending:
                        key, answer = pending.pop()
                        response = await client.post(answer.path, answer.body, key)
                        assert response.headers.get("idempotent-replayed") == "true", (key, response.text)
                        assert response.status_code == answer.status and response.json() == answer.document, key
                        replays[answer.path.split("/")[2]] += 1

                await asyncio.gather(*(replay() for _ in range(CONCURRENCY)))
                assert sum(replays.values()) == 3 * LIFECYCLES
    finally:
        for process in (server, worker, sandbox):
            process.stop()

    await _check_the_database(database_url, lives)
    verified = run_cli(["ledger", "verify"], env, run_dir)
    assert verified.returncode == 0, verified.stderr
    assert receiver.bad_signatures == 0
    for life in lives:
        paid_event = receiver.of_type("payment.succeeded")[life.payment_id]["data"]["object"]
        refund_event = receiver.of_type("refund.succeeded")[life.refund_id]["data"]["object"]
        assert paid_event["amount_received"] == life.amount
        assert refund_event["amount"] == life.refund_amount and refund_event["payment_id"] == life.payment_id
    return {
        "seed": seed,
        "seconds": round(time.monotonic() - started, 1),
        "lifecycles_seconds": round(lifecycles_done, 1),
        "kills": kills,
        "retries": dict(client.retries),
        "paid_by_earlier_attempt": sum(life.paid_by_earlier_attempt for life in lives),
        "webhook_deliveries": receiver.deliveries,
        "ledger": verified.stdout.strip(),
    }


async def _check_the_database(database_url: str, lives: list[Lifecycle]) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            payments = {
                row.reference: row
                for row in await conn.execute(
                    text("SELECT id, reference, status, amount, amount_received, amount_refunded FROM payments")
                )
            }
            refunds = list(await conn.execute(text("SELECT id, payment_id, status, amount FROM refunds")))
            per_reference = dict(
                (await conn.execute(text("SELECT reference, count(*) FROM payments GROUP BY reference"))).all()
            )
            keys = (
                await conn.execute(
                    text(
                        "SELECT count(*), count(response_status), count(locked_until) FROM idempotency_keys"
                        " WHERE key LIKE 'chaos-%'"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert len(payments) == LIFECYCLES and set(per_reference.values()) == {1}, "one payment per key"
    assert len(refunds) == LIFECYCLES, "one refund per key"
    refund_of = {r.payment_id: r for r in refunds}
    for life in lives:
        payment = payments[f"CHAOS-{life.index:04d}"]
        assert payment.id == life.payment_id
        assert (payment.status, payment.amount, payment.amount_received, payment.amount_refunded) == (
            "succeeded",
            life.amount,
            life.amount,
            life.refund_amount,
        )
        refund = refund_of[life.payment_id]
        assert (refund.id, refund.status, refund.amount) == (life.refund_id, "succeeded", life.refund_amount)
    # Every key has its final answer stored and no lock left: 3 per lifecycle, plus the endpoint's.
    assert tuple(keys) == (3 * LIFECYCLES + 1, 3 * LIFECYCLES + 1, 0)


def test_crashes_during_300_lifecycles_lose_and_double_nothing(tmp_path: Path) -> None:
    require_postgres()
    with scratch_database() as database_url:
        summary = asyncio.run(_chaos(database_url, tmp_path))
    print(f"\nchaos run: {summary}")
    assert summary["seconds"] < 120
