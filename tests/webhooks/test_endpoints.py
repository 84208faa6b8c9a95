"""Webhook endpoints: CRUD, event filters, secrets at rest, SSRF checks at creation."""

from __future__ import annotations

import base64
import ipaddress

import httpx
import pytest
from sqlalchemy import text

from gateway.runtime import Runtime
from gateway.webhooks.addresses import is_public
from tests.conftest import MerchantHandle, create_merchant


async def test_crud(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    created = await client.post(
        "/v1/webhook-endpoints",
        headers=merchant.headers,
        json={
            "url": "http://127.0.0.1:9/hooks",
            "events": ["payment.succeeded", "refund.succeeded"],
            "description": "EVN billing",
        },
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["id"].startswith("we_") and endpoint["object"] == "webhook_endpoint"
    assert endpoint["status"] == "enabled"
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32

    fetched = (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)).json()
    assert "secret" not in fetched and fetched["events"] == ["payment.succeeded", "refund.succeeded"]
    patched = await client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}",
        headers=merchant.headers,
        json={"events": ["*"], "status": "disabled"},
    )
    assert patched.status_code == 200 and patched.json()["events"] == ["*"]
    assert patched.json()["status"] == "disabled"
    listed = (await client.get("/v1/webhook-endpoints", headers=merchant.headers)).json()
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]

    async with rt.db.transaction() as session:
        dump = str((await session.execute(text("SELECT * FROM webhook_endpoints"))).all())
    assert secret not in dump and secret.removeprefix("whsec_") not in dump

    other = await create_merchant(client, "Other")
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=other.headers)).status_code == 404
    deleted = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=merchant.headers)).status_code == 404
    assert (await client.get("/v1/webhook-endpoints", headers=merchant.headers)).json()["data"] == []


@pytest.mark.parametrize("events", [["payment.paid"], ["*", "payment.succeeded"], [], ["payment.succeeded", 3]])
async def test_unknown_event_types_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, events: list[object]
) -> None:
    response = await client.post(
        "/v1/webhook-endpoints",
        headers=merchant.headers,
        json={"url": "http://127.0.0.1:9/", "events": events},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["loc"][:2] == ["body", "events"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:8000/",
        "http://192.168.1.10/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "ftp://example.com/",
        "http://user:pw@8.8.8.8/",
    ],
)
async def test_private_and_odd_urls_are_refused(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, url: str
) -> None:
    rt.settings.webhook_allow_private = False
    response = await client.post("/v1/webhook-endpoints", headers=merchant.headers, json={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"url_not_allowed", "validation_error"}
    assert (await client.get("/v1/webhook-endpoints", headers=merchant.headers)).json()["data"] == []


async def test_production_requires_https(client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime) -> None:
    rt.settings.webhook_allow_private = True
    rt.settings.env = "production"  # type: ignore[assignment]
    response = await client.post("/v1/webhook-endpoints", headers=merchant.headers, json={"url": "http://127.0.0.1:9/"})
    assert response.status_code == 422 and response.json()["code"] == "url_not_allowed"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False),
        ("64:ff9b::a00:1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - checked, never bound
        ("192.0.0.8", False),  # IETF protocol assignments: Python 3.11's table still calls it global
        ("192.0.0.9", True),  # ... except the two anycast services inside that block
        ("198.18.0.1", False),
        ("192.88.99.1", False),
        ("3fff::1", False),
        ("64:ff9b:1::1", False),
    ],
)
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8:99999/",
        "http://8.8.8.8:0/",
        "http://8.8.8.8:http/",
        "http://[::1/",
        "http://8.8.8.8/\r\nX-Injected: 1",
        "http://8.8.8.8/a b",
        "http://192.0.0.8/",
    ],
)
async def test_malformed_urls_are_refused_even_where_private_addresses_are_allowed(
    client: httpx.AsyncClient, merchant: MerchantHandle, rt: Runtime, url: str
) -> None:
    rt.settings.webhook_allow_private = url.endswith("192.0.0.8/") is False
    response = await client.post(
        "/v1/webhook-endpoints", headers={**merchant.headers, "x-request-id": "req-bad-url"}, json={"url": url}
    )
    assert response.status_code == 422, response.text
    assert response.headers["x-request-id"] == "req-bad-url"
    assert response.json()["code"] in {"url_not_allowed", "validation_error"}
    assert response.json()["request_id"] == "req-bad-url"
    assert (await client.get("/v1/webhook-endpoints", headers=merchant.headers)).json()["data"] == []
