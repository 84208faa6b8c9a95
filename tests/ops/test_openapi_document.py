"""Issue 9: the OpenAPI document declares every answer a route can give, its headers and parameter formats.

tests/test_schemathesis.py checks the running app against the document; these check the document's shape, so a
new route that forgets a kind of answer fails here first, with a readable message.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROBLEM = "application/problem+json"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def _codes(operation: dict[str, Any], status: str) -> list[str]:
    schema = operation["responses"][status]["content"][PROBLEM]["schema"]
    assert schema["allOf"] == [{"$ref": "#/components/schemas/Problem"}]
    return list(schema["properties"]["code"]["enum"])


async def test_every_route_documents_the_problems_it_can_answer(document: dict[str, Any]) -> None:
    for method, path, op in _operations(document):
        label = f"{method} {path}"
        responses = op["responses"]
        if op.get("security"):
            assert "unauthenticated" in _codes(op, "401"), label
            assert "forbidden" in _codes(op, "403"), label
            assert "database_unavailable" in _codes(op, "503"), label
        # A public HTML page (a citizen's receipt lookup) answers an unknown key with an HTML page, not a problem.
        page = "public pages" in op.get("tags", [])
        if page:
            assert set(responses["200"]["content"]) == set(responses["404"]["content"]) == {"text/html"}, label
        elif any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "not_found" in _codes(op, "404"), label
        if op.get("parameters") or "requestBody" in op:
            assert "validation_error" in _codes(op, "422"), label
            assert "invalid_request" in _codes(op, "400"), label
        if "requestBody" in op:
            assert "malformed_json" in _codes(op, "400"), label
            assert "payload_too_large" in _codes(op, "413"), label
        for status, response in responses.items():
            assert response["headers"]["X-Request-Id"] == {"$ref": "#/components/headers/RequestId"}, label
            if (
                status.startswith(("4", "5"))
                and "provider callbacks" not in op.get("tags", [])
                and not (page and status == "404")
            ):
                assert set(response["content"]) == {PROBLEM}, f"{label} {status}"


async def test_problem_schema_replaces_fastapi_validation_error(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "request_id"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ProblemFieldError"}


async def test_idempotency_key_is_declared_on_every_post(document: dict[str, Any]) -> None:
    required = set()
    for method, path, op in _operations(document):
        # Provider callbacks and the partners' signed routes (§12, idempotent on partner_transaction_id) take none.
        if method != "POST" or path.startswith(("/v1/providers/", "/v1/collect/")):
            continue
        (header,) = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header"
        assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}
        assert "idempotency_key_in_use" in _codes(op, "409") and "idempotency_key_reused" in _codes(op, "422")
        if header["required"]:
            required.add(path)
            assert "idempotency_key_missing" in _codes(op, "400")
    assert required == {"/v1/payments", "/v1/refunds", "/v1/bills/import"}


async def test_parameter_formats(document: dict[str, Any]) -> None:
    listing = {p["name"]: p for p in document["paths"]["/v1/payments"]["get"]["parameters"]}
    for name in ("created_gte", "created_lt"):
        assert {"type": "string", "format": "date-time"} in listing[name]["schema"]["anyOf"]
    for path, item in document["paths"].items():
        for op in item.values():
            for parameter in op.get("parameters", []):
                if parameter["name"] == "limit":
                    assert parameter["schema"] | {"minimum": 1, "maximum": 100} == parameter["schema"], path
