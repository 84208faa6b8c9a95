"""Issue 9: schemathesis over the whole OpenAPI document, in-process, with a test key and the admin token.

Every response must be documented (status, content type, headers, body schema) and none may be a server error.
Stateless and bounded: MAX_EXAMPLES per operation, positive and negative cases, derandomized, so CI is
deterministic and takes a few minutes at most. Ids of real objects (a paid payment, a refund, a webhook endpoint,
an event, the merchant, a customer, a bill, a collection partner) fill the path parameters, so operations run past their 404s.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.clock import ManualClock
from tests.conftest import ADMIN, ADMIN_TOKEN, TABLES, make_settings

# Per operation; GATEWAY_FUZZ_EXAMPLES raises it for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The served document equals the committed one (tests/ops/test_operations.py): one test per operation in it.
DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "openapi" / "openapi.json").read_text())
PROVIDERS = ("vietqr", "vnpay", "momo", "viettel_money", "vnpt_money", "mobifone_money")
# Where the admin token is the key (CONTRACT §1): the merchants and Part II's operator routes.
ADMIN_ROUTES = ("/v1/merchants", "/v1/partners", "/v1/org-units", "/v1/reports")
OPERATIONS = [(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item]


def unsigned_partner_requests_are_refused(_ctx: Any, response: Any, case: Any) -> None:
    """The fuzzer cannot sign: every partner route must refuse it (401 `invalid_signature`) before anything else,
    unless the middleware refused the request itself (a NUL in the path, a body over the limit)."""
    if response.status_code not in (400, 401, 413):
        raise AssertionError(f"{case.method} {case.formatted_path}: unsigned, answered {response.status_code}")
    if response.status_code == 401:
        assert response.json()["code"] == "invalid_signature", response.text


@dataclass
class Fuzzed:
    schema: Any
    merchant_key: str
    ids: dict[str, str]  # path parameter -> the id of a real object
    ids_by_operation: dict[str, dict[str, str]]  # objects an operation uses up (deleted, confirmed, canceled)


async def _truncate(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))
    await engine.dispose()


def _fresh_database(migrated_database: str, directory: Path) -> str:
    if migrated_database.startswith("postgresql"):
        asyncio.run(_truncate(migrated_database))
        return migrated_database
    shutil.copy(migrated_database, directory / "gateway.db")
    return f"sqlite+aiosqlite:///{directory / 'gateway.db'}"


@pytest.fixture
def fuzzed(migrated_database: str, tmp_path: Path) -> Iterator[Fuzzed]:
    # One app per operation: schemathesis's pytest plugin ends every ASGI lifespan after each test, and the app's
    # shutdown closes its HTTP clients for good.
    url = _fresh_database(migrated_database, tmp_path)
    app = create_app(make_settings(url), clock=ManualClock(), background=False)
    # schemathesis runs the app (and its lifespan) on its own event-loop thread; the seeding goes through it too.
    with asgi.get_client(app) as http:

        def post(path: str, body: dict[str, Any], headers: dict[str, str], status: int = 201) -> dict[str, Any]:
            response = http.post(path, json=body, headers={**headers, "Idempotency-Key": f"seed {path} {body}"})
            assert response.status_code == status, response.text
            return dict(response.json())

        merchant = post("/v1/merchants", {"name": "Fuzz Hospital", "category": "hospital"}, ADMIN)
        auth = {"Authorization": f"Bearer {merchant['api_key']['secret']}"}
        receipts = {"enabled": True, "template": "01BLP0-001", "series": "AA-26E", "seller": {"name": "Bệnh viện"}}
        assert http.put(f"/v1/merchants/{merchant['id']}/receipts", json=receipts, headers=ADMIN).status_code == 200
        bill = {"amount": 150000, "method": "vietqr", "reference": "FUZZ-1"}
        paid = post("/v1/payments", {**bill, "confirm": True}, auth)
        post(f"/v1/test-helpers/payments/{paid['id']}/pay", {"outcome": "success"}, auth, status=200)
        refund = post("/v1/refunds", {"payment_id": paid["id"], "amount": 1000}, auth)
        awaiting = post("/v1/payments", {**bill, "reference": "FUZZ-2", "confirm": True}, auth)
        to_confirm = post("/v1/payments", {**bill, "reference": "FUZZ-3"}, auth)
        to_cancel = post("/v1/payments", {**bill, "reference": "FUZZ-4"}, auth)
        endpoint = post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hook"}, auth)
        to_delete = post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/gone"}, auth)
        customer = post("/v1/customers", {"code": "FUZZ-C1", "name": "Nguyen Van An"}, auth)
        open_bill = post("/v1/bills", {"customer": customer["id"], "number": "FUZZ-B1", "amount": 150000}, auth)
        to_void = post("/v1/bills", {"customer": customer["id"], "number": "FUZZ-B2", "amount": 150000}, auth)
        spare_key = post(f"/v1/merchants/{merchant['id']}/api-keys", {"mode": "test"}, ADMIN)
        partner = post("/v1/partners", {"name": "Fuzz Bank", "code": "FUZZBANK", "kind": "bank"}, ADMIN)
        unit = post("/v1/org-units", {"code": "FUZZ-HT", "name": "Ha Tinh", "kind": "province"}, ADMIN)
        event = http.get("/v1/events?limit=1", headers=auth).json()["data"][0]
        receipt = http.get("/v1/receipts?limit=1", headers=auth).json()["data"][0]
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig())
        yield Fuzzed(
            schema,
            merchant["api_key"]["secret"],
            ids={
                "payment_id": paid["id"],
                "refund_id": refund["id"],
                "endpoint_id": endpoint["id"],
                "event_id": event["id"],
                "merchant_id": merchant["id"],
                "key_id": spare_key["id"],
                "customer_id": customer["id"],
                "bill_id": open_bill["id"],
                "receipt_id": receipt["id"],
                "lookup_code": receipt["lookup_code"],
                "partner_id": partner["id"],
                "code": unit["code"],
            },
            ids_by_operation={
                "POST /v1/payments/{payment_id}/confirm": {"payment_id": to_confirm["id"]},
                "POST /v1/payments/{payment_id}/cancel": {"payment_id": to_cancel["id"]},
                "GET /v1/payments/{payment_id}/qr.png": {"payment_id": awaiting["id"]},
                "GET /v1/payments/{payment_id}/qr.svg": {"payment_id": awaiting["id"]},
                "POST /v1/test-helpers/payments/{payment_id}/pay": {"payment_id": awaiting["id"]},
                "DELETE /v1/webhook-endpoints/{endpoint_id}": {"endpoint_id": to_delete["id"]},
                "POST /v1/bills/{bill_id}/void": {"bill_id": to_void["id"]},
            },
        )
    asgi.shutdown_lifespans()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_response_is_documented(fuzzed: Fuzzed, method: str, path: str) -> None:
    operation = fuzzed.schema[path][method]
    token = ADMIN_TOKEN if path.startswith(ADMIN_ROUTES) else fuzzed.merchant_key
    authorization = {"Authorization": f"Bearer {token}"}
    names = [p.split("}")[0] for p in path.split("{")[1:]]
    real = {n: fuzzed.ids[n] for n in names if n in fuzzed.ids} | fuzzed.ids_by_operation.get(f"{method} {path}", {})
    variants = [{"provider": name} for name in PROVIDERS] if "provider" in names else [real]
    checks = [*CHECKS, unsigned_partner_requests_are_refused] if path.startswith("/v1/collect/") else CHECKS
    # Half of the cases reach real objects with a valid key; the other half generate every part, the key included.
    cases = st.one_of(
        [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
        + [
            operation.as_strategy(generation_mode=mode, path_parameters={**real, **fixed}, headers=authorization)
            for mode in GenerationMode
            for fixed in variants
        ]
    )

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(case=cases)
    def conforms(case: Any) -> None:
        case.call_and_validate(checks=checks)

    conforms()
