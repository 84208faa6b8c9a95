"""Who may call what (CONTRACT §1 authentication, §7 test mode, §9 merchants and keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.clock import ManualClock
from tests.conftest import (
    ADMIN,
    BASE_URL,
    VIETQR_LIVE,
    MerchantHandle,
    assert_problem,
    bearer,
    create_merchant,
    create_vietqr_payment,
    ids_listed,
    make_settings,
    new_key,
    pay,
)

PAYMENT = {"amount": 150000, "method": "vietqr", "reference": "HIS-2026-000123"}


SEEN: list[tuple[str, str, int]] = []


async def record_status(response: httpx.Response) -> None:
    SEEN.append((response.request.method, str(response.request.url), response.status_code))


@pytest.fixture(autouse=True)
def no_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """No response in this file is a 5xx (the test's own clients report every response here)."""
    SEEN.clear()
    if "client" in request.fixturenames:
        request.getfixturevalue("client").event_hooks["response"].append(record_status)
    yield
    assert [s for s in SEEN if s[2] >= 500] == []


# --- 401 / 403 ---

BAD_CREDENTIALS = [
    pytest.param({}, id="no-authorization"),
    pytest.param({"Authorization": "Bearer sk_test_nope"}, id="wrong-test-key"),
    pytest.param({"Authorization": "Bearer sk_live_nope"}, id="wrong-live-key"),
    pytest.param({"Authorization": "Basic xyz"}, id="basic-scheme"),
    pytest.param({"Authorization": "Bearer"}, id="bearer-without-key"),
    pytest.param({"Authorization": "Bearer adm_test_token_wrong"}, id="wrong-admin-token"),
]
ROUTES = [
    pytest.param("GET", "/v1/payments", None, id="list-payments"),
    pytest.param("POST", "/v1/payments", PAYMENT, id="create-payment"),
    pytest.param("GET", "/v1/refunds", None, id="list-refunds"),
    pytest.param("GET", "/v1/events", None, id="list-events"),
    pytest.param("GET", "/v1/balance", None, id="balance"),
    pytest.param("GET", "/v1/merchants", None, id="list-merchants"),
    pytest.param("POST", "/v1/merchants", {"name": "X", "category": "water"}, id="create-merchant"),
]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_missing_or_wrong_credentials_are_401(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    credentials: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    headers = {**credentials, "Idempotency-Key": "k-unauth-1"} if method == "POST" else credentials
    response = await client.request(method, path, json=body, headers=headers)

    assert_problem(response, 401, "unauthenticated")
    assert (await client.get("/v1/payments", headers=merchant.headers)).json()["data"] == []
    merchants = (await client.get("/v1/merchants", headers=ADMIN)).json()["data"]
    assert [m["id"] for m in merchants] == [merchant.id]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/payments", None, id="list-payments"),
        pytest.param("POST", "/v1/payments", PAYMENT, id="create-payment"),
        pytest.param("GET", "/v1/payments/pay_whatever", None, id="get-payment"),
        pytest.param("GET", "/v1/refunds", None, id="list-refunds"),
        pytest.param("GET", "/v1/events", None, id="list-events"),
        pytest.param("GET", "/v1/balance", None, id="balance"),
        pytest.param("GET", "/v1/ledger/transactions", None, id="ledger"),
    ],
)
async def test_the_admin_token_is_forbidden_outside_merchants(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, path, json=body, headers={**ADMIN, "Idempotency-Key": "k-admin-1"})
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/merchants", None, id="list"),
        pytest.param("POST", "/v1/merchants", {"name": "Evil", "category": "other"}, id="create"),
        pytest.param("GET", "/v1/merchants/{self}", None, id="get-self"),
        pytest.param("POST", "/v1/merchants/{self}/api-keys", {"mode": "live"}, id="issue-key"),
        pytest.param("DELETE", "/v1/merchants/{self}/api-keys/key_whatever", None, id="revoke-key"),
        pytest.param("PUT", "/v1/merchants/{self}/providers/vietqr", VIETQR_LIVE, id="put-provider"),
    ],
)
async def test_a_merchant_key_is_forbidden_on_merchants(
    client: httpx.AsyncClient, merchant: MerchantHandle, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(
        method,
        path.format(self=merchant.id),
        json=body,
        headers={**merchant.headers, "Idempotency-Key": "k-m-1"},
    )
    assert_problem(response, 403, "forbidden")
    merchants = (await client.get("/v1/merchants", headers=ADMIN)).json()["data"]
    assert [m["id"] for m in merchants] == [merchant.id]


# --- one merchant never sees another's objects ---


@pytest.fixture
async def two_merchants(client: httpx.AsyncClient) -> dict[str, Any]:
    """A with an unconfirmed payment, a payment awaiting the payer, and a paid and partly refunded one; B with
    one payment of its own."""
    a = await create_merchant(client, "Benh vien A")
    b = await create_merchant(client, "Benh vien B")
    unconfirmed = await client.post("/v1/payments", json=PAYMENT, headers=a.idem())
    assert unconfirmed.status_code == 201, unconfirmed.text
    awaiting = await create_vietqr_payment(client, a, amount=120000)
    paid = await create_vietqr_payment(client, a, amount=200000)
    assert (await pay(client, a, paid["id"])).status_code == 200
    refund = await client.post("/v1/refunds", json={"payment_id": paid["id"], "amount": 50000}, headers=a.idem())
    assert refund.status_code == 201, refund.text
    events = await ids_listed(client, "/v1/events", a.headers)
    assert events
    b_payment = await create_vietqr_payment(client, b, amount=99000)
    return {
        "a": a,
        "b": b,
        "unconfirmed": unconfirmed.json()["id"],
        "awaiting": awaiting["id"],
        "paid": paid["id"],
        "refund": refund.json()["id"],
        "events": events,
        "b_payment": b_payment["id"],
    }


async def test_another_merchants_objects_answer_404(client: httpx.AsyncClient, two_merchants: dict[str, Any]) -> None:
    t = two_merchants
    b: MerchantHandle = t["b"]
    paths = [
        f"/v1/payments/{t['unconfirmed']}",
        f"/v1/payments/{t['awaiting']}",
        f"/v1/payments/{t['paid']}",
        f"/v1/payments/{t['awaiting']}/qr.png",
        f"/v1/payments/{t['awaiting']}/qr.svg",
        f"/v1/refunds/{t['refund']}",
        *(f"/v1/events/{e}" for e in t["events"]),
    ]
    for path in paths:
        response = await client.get(path, headers=b.headers)
        assert_problem(response, 404, "not_found")
        assert t["a"].id not in response.text
    # ... exactly like an id that does not exist at all
    assert_problem(await client.get("/v1/payments/pay_doesnotexist", headers=b.headers), 404, "not_found")


async def test_another_merchants_ledger_answers_404(client: httpx.AsyncClient, two_merchants: dict[str, Any]) -> None:
    t = two_merchants
    b: MerchantHandle = t["b"]
    own = await client.get(f"/v1/ledger/transactions?payment_id={t['paid']}", headers=t["a"].headers)
    assert own.status_code == 200 and own.json()["data"]
    for query in (f"payment_id={t['paid']}", f"refund_id={t['refund']}"):
        response = await client.get(f"/v1/ledger/transactions?{query}", headers=b.headers)
        assert_problem(response, 404, "not_found")


async def test_another_merchants_objects_are_not_listed(
    client: httpx.AsyncClient, two_merchants: dict[str, Any]
) -> None:
    t = two_merchants
    a: MerchantHandle = t["a"]
    b: MerchantHandle = t["b"]
    a_payments = {t["unconfirmed"], t["awaiting"], t["paid"]}

    assert set(await ids_listed(client, "/v1/payments", a.headers)) == a_payments
    assert await ids_listed(client, "/v1/payments", b.headers) == [t["b_payment"]]
    for status in ("requires_confirmation", "requires_action", "succeeded"):
        listed = await client.get("/v1/payments", params={"status": status}, headers=b.headers)
        assert not a_payments & {p["id"] for p in listed.json()["data"]}
    by_reference = await client.get("/v1/payments", params={"reference": PAYMENT["reference"]}, headers=b.headers)
    assert not a_payments & {p["id"] for p in by_reference.json()["data"]}

    assert await ids_listed(client, "/v1/refunds", b.headers) == []
    filtered = await client.get("/v1/refunds", params={"payment_id": t["paid"]}, headers=b.headers)
    assert filtered.status_code in (200, 404), filtered.text
    if filtered.status_code == 200:
        assert filtered.json()["data"] == []

    b_events = await client.get("/v1/events", params={"limit": 100}, headers=b.headers)
    assert not set(t["events"]) & {e["id"] for e in b_events.json()["data"]}
    assert all(e["data"]["object"]["id"] == t["b_payment"] for e in b_events.json()["data"])

    b_ledger = await client.get("/v1/ledger/transactions", params={"limit": 100}, headers=b.headers)
    assert b_ledger.json()["data"] == []
    b_balance = (await client.get("/v1/balance", headers=b.headers)).json()
    assert all(x["collected"] == 0 and x["refunded"] == 0 for x in b_balance["balances"])


async def test_another_merchant_cannot_act_on_payments(
    client: httpx.AsyncClient, two_merchants: dict[str, Any]
) -> None:
    t = two_merchants
    a: MerchantHandle = t["a"]
    b: MerchantHandle = t["b"]

    assert_problem(await client.post(f"/v1/payments/{t['unconfirmed']}/confirm", headers=b.idem()), 404, "not_found")
    assert_problem(await client.post(f"/v1/payments/{t['awaiting']}/cancel", headers=b.idem()), 404, "not_found")
    assert_problem(await pay(client, b, t["awaiting"]), 404, "not_found")
    refund = await client.post("/v1/refunds", json={"payment_id": t["paid"]}, headers=b.idem())
    assert_problem(refund, 404, "not_found")

    unconfirmed = (await client.get(f"/v1/payments/{t['unconfirmed']}", headers=a.headers)).json()
    assert unconfirmed["status"] == "requires_confirmation"
    awaiting = (await client.get(f"/v1/payments/{t['awaiting']}", headers=a.headers)).json()
    assert (awaiting["status"], awaiting["amount_received"]) == ("requires_action", 0)
    paid = (await client.get(f"/v1/payments/{t['paid']}", headers=a.headers)).json()
    assert paid["amount_refunded"] == 50000
    assert await ids_listed(client, "/v1/refunds", a.headers) == [t["refund"]]


# --- API keys ---


async def test_a_revoked_key_answers_401_at_once_and_new_keys_work(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/merchants", json={"name": "Truong THCS", "category": "school"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    merchant_id = created.json()["id"]
    first = created.json()["api_key"]
    assert first["id"].startswith("key_") and first["secret"].startswith("sk_test_")
    assert (await client.get("/v1/payments", headers=bearer(first["secret"]))).status_code == 200

    revoked = await client.delete(f"/v1/merchants/{merchant_id}/api-keys/{first['id']}", headers=ADMIN)
    assert 200 <= revoked.status_code < 300, revoked.text

    assert_problem(await client.get("/v1/payments", headers=bearer(first["secret"])), 401, "unauthenticated")
    assert_problem(
        await client.post("/v1/payments", json=PAYMENT, headers={**bearer(first["secret"]), "Idempotency-Key": "k1"}),
        401,
        "unauthenticated",
    )

    test_key = await new_key(client, merchant_id, "test")
    assert test_key["secret"].startswith("sk_test_")
    assert test_key["id"].startswith("key_") and test_key["id"] != first["id"]
    assert test_key["mode"] == "test"
    assert (await client.get("/v1/payments", headers=bearer(test_key["secret"]))).status_code == 200
    made = await client.post(
        "/v1/payments", json=PAYMENT, headers={**bearer(test_key["secret"]), "Idempotency-Key": "k2"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["livemode"] is False

    live_key = await new_key(client, merchant_id, "live")
    assert live_key["secret"].startswith("sk_live_")
    assert live_key["mode"] == "live"
    assert (await client.get("/v1/payments", headers=bearer(live_key["secret"]))).status_code == 200

    # the revoked key stays revoked
    assert_problem(await client.get("/v1/payments", headers=bearer(first["secret"])), 401, "unauthenticated")


# --- live mode ---


# --- GATEWAY_SANDBOX=false ---


@pytest.fixture
async def sandboxless_client(database_url: str, clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(make_settings(database_url, sandbox=False), clock=clock, background=False)
    async with LifespanManager(application):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url=BASE_URL,
            event_hooks={"response": [record_status]},
        ) as c:
            yield c


async def test_without_sandbox_test_keys_are_refused(sandboxless_client: httpx.AsyncClient) -> None:
    client = sandboxless_client
    merchant = await create_merchant(client)

    for response in (
        await client.get("/v1/payments", headers=merchant.headers),
        await client.post("/v1/payments", json=PAYMENT, headers=merchant.idem()),
        await client.get("/v1/balance", headers=merchant.headers),
    ):
        assert_problem(response, 403, "test_mode_disabled")

    live = MerchantHandle(id=merchant.id, key=(await new_key(client, merchant.id, "live"))["secret"])
    listed = await client.get("/v1/payments", headers=live.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []

    for path in ("/sandbox/healthz", "/sandbox/vietqr/", "/sandbox"):
        response = await client.get(path)
        assert response.status_code == 404, (path, response.text)


async def test_the_sandbox_is_mounted_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/sandbox/healthz")).status_code == 200


# --- X-Request-Id ---


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    responses = [
        await client.get("/healthz"),
        await client.get("/v1/payments", headers=merchant.headers),
        await client.post("/v1/payments", json=PAYMENT, headers=merchant.idem()),
        await client.get("/v1/payments"),
        await client.get("/v1/payments/pay_nope", headers=merchant.headers),
        await client.post("/v1/payments", json={"amount": 0}, headers=merchant.idem()),
        await client.get("/v1/merchants", headers=merchant.headers),
        await client.get("/no/such/route"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 201, 401, 404, 422, 403, 404]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), "each request gets its own id"
    for response in responses[3:]:
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_a_client_request_id_is_echoed(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    ok = await client.get("/v1/payments", headers={**merchant.headers, "X-Request-Id": "abc-123"})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "abc-123"

    problem = await client.get("/v1/payments/pay_nope", headers={**merchant.headers, "X-Request-Id": "abc-123"})
    body = assert_problem(problem, 404, "not_found")
    assert problem.headers["x-request-id"] == "abc-123"
    assert body["request_id"] == "abc-123"

    unauthenticated = await client.get("/v1/payments", headers={"X-Request-Id": "abc-123"})
    assert_problem(unauthenticated, 401, "unauthenticated")
    assert unauthenticated.headers["x-request-id"] == "abc-123"
    assert unauthenticated.json()["request_id"] == "abc-123"


async def test_a_cached_key_is_refused_as_soon_as_it_is_revoked(client: httpx.AsyncClient, rt: object) -> None:
    created = (await client.post("/v1/merchants", json={"name": "Cache", "category": "other"}, headers=ADMIN)).json()
    headers = {"Authorization": f"Bearer {created['api_key']['secret']}"}
    for _ in range(3):  # looked up once, then served from the cache
        assert (await client.get("/v1/payments", headers=headers)).status_code == 200
    revoked = await client.delete(f"/v1/merchants/{created['id']}/api-keys/{created['api_key']['id']}", headers=ADMIN)
    assert revoked.status_code == 200
    assert (await client.get("/v1/payments", headers=headers)).status_code == 401
