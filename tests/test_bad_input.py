"""Bad input is refused with the right problem document, and nothing is written (CONTRACT §1-§4).

Every case checks the HTTP status, the problem+json content type, the stable `code`, the `request_id`, and
for validation failures that `errors[*].loc` names the offending field. No response here is ever a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import INVALID_KEYS, MerchantHandle, assert_problem, create_vietqr_payment, paid_payment

VALID: dict[str, Any] = {"amount": 150000, "method": "vietqr", "reference": "HIS-2026-000123"}
MISSING = object()


def with_fields(**changes: Any) -> dict[str, Any]:
    body = dict(VALID)
    for name, value in changes.items():
        if value is MISSING:
            body.pop(name, None)
        else:
            body[name] = value
    return body


async def assert_no_payments(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    listed = await client.get("/v1/payments", headers=merchant.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"object": "list", "data": [], "has_more": False}


@pytest.fixture(autouse=True)
def no_server_errors(client: httpx.AsyncClient) -> Iterator[None]:
    """Whatever a test sends, the gateway never answers 5xx."""
    seen: list[tuple[str, str, int]] = []

    async def record(response: httpx.Response) -> None:
        seen.append((response.request.method, str(response.request.url), response.status_code))

    client.event_hooks["response"].append(record)
    yield
    assert seen, "the hook saw no response"
    assert [s for s in seen if s[2] >= 500] == []


# --- POST /v1/payments: bodies that must be refused ---

REFUSED_BODIES = [
    # amount: an integer > 0 and <= 9,999,999,999,999; never a float, string, boolean or null
    pytest.param(with_fields(amount=150000.0), 422, "validation_error", ["body", "amount"], id="amount-float"),
    pytest.param(with_fields(amount="150000"), 422, "validation_error", ["body", "amount"], id="amount-string"),
    pytest.param(with_fields(amount=-150000), 422, "validation_error", ["body", "amount"], id="amount-negative"),
    pytest.param(with_fields(amount=0), 422, "validation_error", ["body", "amount"], id="amount-zero"),
    pytest.param(
        with_fields(amount=10_000_000_000_000),
        422,
        "validation_error",
        ["body", "amount"],
        id="amount-above-max",
    ),
    pytest.param(with_fields(amount=True), 422, "validation_error", ["body", "amount"], id="amount-true"),
    pytest.param(with_fields(amount=None), 422, "validation_error", ["body", "amount"], id="amount-null"),
    pytest.param(with_fields(amount=MISSING), 422, "validation_error", ["body", "amount"], id="amount-missing"),
    # unknown fields are never silently ignored
    pytest.param(
        {**with_fields(amount=MISSING), "ammount": 150000},
        422,
        "validation_error",
        ["body", "ammount"],
        id="typo-ammount-instead-of-amount",
    ),
    pytest.param(
        {**VALID, "ammount": 150000},
        422,
        "validation_error",
        ["body", "ammount"],
        id="typo-ammount-besides-amount",
    ),
    # method, provider, currency
    pytest.param(with_fields(method="cash"), 422, "validation_error", ["body", "method"], id="method-unknown"),
    pytest.param(with_fields(method=MISSING), 422, "validation_error", ["body", "method"], id="method-missing"),
    pytest.param(with_fields(provider="nope"), 422, "validation_error", ["body", "provider"], id="provider-unknown"),
    pytest.param(with_fields(currency="XYZ"), 422, "validation_error", ["body", "currency"], id="currency-unknown"),
    pytest.param(with_fields(currency="USD"), 422, "currency_not_supported", None, id="currency-usd-not-vietqr"),
    pytest.param(
        with_fields(method="national_platform"),
        422,
        "validation_error",
        ["body", "national_platform"],
        id="method-national-platform-without-its-fees",
    ),
    pytest.param(
        with_fields(
            method="national_platform",
            national_platform={
                "procedure_code": "1.001234",
                "service_code": "DVC-2.002",
                "fees": [{"kind": "fee", "code": "PHI01", "name": "Phí", "amount": 1000}],
            },
        ),
        422,
        "validation_error",
        ["body", "national_platform", "fees"],
        id="national-platform-fees-not-the-amount",
    ),
    # reference, description
    pytest.param(with_fields(reference=""), 422, "validation_error", ["body", "reference"], id="reference-empty"),
    pytest.param(with_fields(reference="R" * 65), 422, "validation_error", ["body", "reference"], id="reference-65"),
    pytest.param(
        with_fields(reference=MISSING), 422, "validation_error", ["body", "reference"], id="reference-missing"
    ),
    pytest.param(
        with_fields(description="d" * 256),
        422,
        "validation_error",
        ["body", "description"],
        id="description-256",
    ),
    # metadata: <= 20 string->string pairs, keys <= 40, values <= 500
    pytest.param(
        with_fields(metadata={f"k{i}": "v" for i in range(21)}),
        422,
        "validation_error",
        ["body", "metadata"],
        id="metadata-21-pairs",
    ),
    pytest.param(
        with_fields(metadata={"k" * 41: "v"}),
        422,
        "validation_error",
        ["body", "metadata"],
        id="metadata-key-41",
    ),
    pytest.param(
        with_fields(metadata={"k": "v" * 501}),
        422,
        "validation_error",
        ["body", "metadata"],
        id="metadata-value-501",
    ),
    pytest.param(
        with_fields(metadata={"k": 1}),
        422,
        "validation_error",
        ["body", "metadata"],
        id="metadata-value-not-string",
    ),
    # expires_in 10..604800, confirm a real boolean, return_url absolute, customer strict
    pytest.param(with_fields(expires_in=9), 422, "validation_error", ["body", "expires_in"], id="expires-in-9"),
    pytest.param(
        with_fields(expires_in=604801),
        422,
        "validation_error",
        ["body", "expires_in"],
        id="expires-in-604801",
    ),
    pytest.param(with_fields(confirm="true"), 422, "validation_error", ["body", "confirm"], id="confirm-string"),
    pytest.param(
        with_fields(return_url="not-a-url"),
        422,
        "validation_error",
        ["body", "return_url"],
        id="return-url-not-a-url",
    ),
    pytest.param(
        with_fields(customer={"name": "Nguyen Van A", "nickname": "A"}),
        422,
        "validation_error",
        ["body", "customer"],
        id="customer-unknown-field",
    ),
    # the body itself must be an object
    pytest.param([VALID], 422, "validation_error", ["body"], id="body-array"),
    pytest.param("amount=150000", 422, "validation_error", ["body"], id="body-string"),
]


@pytest.mark.parametrize(("body", "status", "code", "loc"), REFUSED_BODIES)
async def test_create_payment_refuses_bad_input_and_writes_nothing(
    client: httpx.AsyncClient,
    merchant: MerchantHandle,
    body: Any,
    status: int,
    code: str,
    loc: list[str] | None,
) -> None:
    response = await client.post("/v1/payments", json=body, headers=merchant.idem())

    assert_problem(response, status, code, loc)
    await assert_no_payments(client, merchant)


async def test_refused_confirm_true_payment_writes_nothing(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    response = await client.post("/v1/payments", json=with_fields(amount=0, confirm=True), headers=merchant.idem())
    assert_problem(response, 422, "validation_error", ["body", "amount"])
    await assert_no_payments(client, merchant)
    events = await client.get("/v1/events", headers=merchant.headers)
    assert events.status_code == 200 and events.json()["data"] == []


async def test_malformed_json_is_a_400(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    response = await client.post(
        "/v1/payments",
        content=b'{"amount": 1,',
        headers={**merchant.idem(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")
    await assert_no_payments(client, merchant)


@pytest.mark.parametrize("content", [pytest.param(b"[1, 2, 3]", id="array"), pytest.param(b'"a string"', id="string")])
async def test_raw_json_that_is_not_an_object_is_a_validation_error(
    client: httpx.AsyncClient, merchant: MerchantHandle, content: bytes
) -> None:
    response = await client.post(
        "/v1/payments", content=content, headers={**merchant.idem(), "Content-Type": "application/json"}
    )
    assert_problem(response, 422, "validation_error", ["body"])
    await assert_no_payments(client, merchant)


# --- boundaries that must be accepted ---


@pytest.mark.parametrize("confirm", [False, True], ids=["unconfirmed", "confirmed"])
async def test_the_largest_amount_is_accepted_by_vietqr(
    client: httpx.AsyncClient, merchant: MerchantHandle, confirm: bool
) -> None:
    response = await client.post(
        "/v1/payments", json=with_fields(amount=9_999_999_999_999, confirm=confirm), headers=merchant.idem()
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    payment = response.json()
    assert payment["amount"] == 9_999_999_999_999
    assert payment["status"] == ("requires_action" if confirm else "requires_confirmation")
    listed = (await client.get("/v1/payments", headers=merchant.headers)).json()["data"]
    assert [p["id"] for p in listed] == [payment["id"]]
    assert listed[0]["amount"] == 9_999_999_999_999


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"reference": "R" * 64}, id="reference-64"),
        pytest.param({"reference": "R"}, id="reference-1"),
        pytest.param({"description": "d" * 255}, id="description-255"),
        pytest.param({"metadata": {f"k{i:02d}" + "x" * 37: "v" * 500 for i in range(20)}}, id="metadata-max"),
        pytest.param({"expires_in": 10}, id="expires-in-10"),
        pytest.param({"expires_in": 604800}, id="expires-in-604800"),
        pytest.param({"amount": 1}, id="amount-1"),
    ],
)
async def test_boundary_values_are_accepted(
    client: httpx.AsyncClient, merchant: MerchantHandle, changes: dict[str, Any]
) -> None:
    response = await client.post("/v1/payments", json=with_fields(**changes), headers=merchant.idem())
    assert response.status_code == 201, response.text
    payment = response.json()
    for name, value in changes.items():
        if name == "expires_in":
            lifetime = datetime.fromisoformat(payment["expires_at"]) - datetime.fromisoformat(payment["created_at"])
            assert lifetime == timedelta(seconds=value)
        else:
            assert payment[name] == value


# --- Idempotency-Key header ---


async def test_create_payment_without_idempotency_key(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    response = await client.post("/v1/payments", json=VALID, headers=merchant.headers)
    assert_problem(response, 400, "idempotency_key_missing")
    await assert_no_payments(client, merchant)


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_create_payment_with_invalid_idempotency_key(
    client: httpx.AsyncClient, merchant: MerchantHandle, key: str | bytes
) -> None:
    response = await client.post("/v1/payments", json=VALID, headers={**merchant.headers, "Idempotency-Key": key})
    assert_problem(response, 400, "idempotency_key_invalid")
    await assert_no_payments(client, merchant)


async def test_a_255_character_idempotency_key_is_accepted(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    printable = "".join(chr(c) for c in range(0x20, 0x7F))  # every printable ASCII character, space included
    key = ("A" + printable * 3)[:254] + "Z"
    assert len(key) == 255
    response = await client.post("/v1/payments", json=VALID, headers=merchant.idem(key))
    assert response.status_code == 201, response.text
    again = await client.post("/v1/payments", json=VALID, headers=merchant.idem(key))
    assert again.status_code == 201
    assert again.json()["id"] == response.json()["id"]
    assert len((await client.get("/v1/payments", headers=merchant.headers)).json()["data"]) == 1


# --- list parameters ---


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/refunds", "/v1/events", "/v1/ledger/transactions"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_list_limit_out_of_range(
    client: httpx.AsyncClient, merchant: MerchantHandle, path: str, limit: str
) -> None:
    response = await client.get(path, params={"limit": limit}, headers=merchant.headers)
    assert_problem(response, 422, "validation_error", ["query", "limit"])


@pytest.mark.parametrize("limit", ["1", "100"])
async def test_list_limit_bounds_are_accepted(client: httpx.AsyncClient, merchant: MerchantHandle, limit: str) -> None:
    response = await client.get("/v1/payments", params={"limit": limit}, headers=merchant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "list"


@pytest.mark.parametrize(
    ("param", "value"),
    [("status", "bogus"), ("method", "cash"), ("created_gte", "yesterday")],
)
async def test_list_payments_with_bad_filter(
    client: httpx.AsyncClient, merchant: MerchantHandle, param: str, value: str
) -> None:
    response = await client.get("/v1/payments", params={param: value}, headers=merchant.headers)
    assert_problem(response, 422, "validation_error", ["query", param])


# --- actions not allowed in the payment's state ---


async def test_confirm_an_already_confirmed_payment(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await create_vietqr_payment(client, merchant)
    assert payment["status"] == "requires_action"

    response = await client.post(f"/v1/payments/{payment['id']}/confirm", headers=merchant.idem())

    assert_problem(response, 409, "invalid_state")
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["status"] == "requires_action"
    assert after["next_action"] == payment["next_action"]


async def test_cancel_a_succeeded_payment(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    payment = await paid_payment(client, merchant)

    response = await client.post(f"/v1/payments/{payment['id']}/cancel", headers=merchant.idem())

    assert_problem(response, 409, "invalid_state")
    after = (await client.get(f"/v1/payments/{payment['id']}", headers=merchant.headers)).json()
    assert after["status"] == "succeeded"
    events = (await client.get("/v1/events", headers=merchant.headers)).json()["data"]
    assert "payment.canceled" not in [e["type"] for e in events]


BODY = {"amount": 150000, "method": "vietqr", "reference": "R1", "confirm": True}


async def test_odd_inputs_are_4xx_not_500(client: httpx.AsyncClient, merchant: MerchantHandle) -> None:
    endpoint = (
        await client.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/"}, headers=merchant.headers)
    ).json()
    probes = [
        client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries?starting_after=wha_{'9' * 30}", headers=merchant.headers
        ),
        client.get("/v1/payments?created_gte=0001-01-01T00:00:00%2B14:00", headers=merchant.headers),
        client.get("/v1/payments?created_lt=9999-12-31T23:59:59-14:00", headers=merchant.headers),
        client.get("/v1/payments/pay_%00abc", headers=merchant.headers),
        client.get("/v1/payments?reference=a%00b", headers=merchant.headers),
        client.post("/v1/payments", json={**BODY, "reference": "a\x00b"}, headers=merchant.idem()),
        client.post("/v1/payments/" + "x" * 300 + "/confirm", headers=merchant.idem()),
    ]
    for probe in probes:
        response = await probe
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code, response.text)
