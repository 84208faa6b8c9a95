"""The served OpenAPI document: FastAPI's, plus what no single route declares — the Problem schema that every
route's `problems(...)` responses refer to, and the headers every response carries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from gateway.errors import Problem

HEADERS: dict[str, dict[str, Any]] = {
    "RequestId": {
        "description": "The request's id (the client's own X-Request-Id echoed when it sent a valid one); "
        "problem bodies repeat it as `request_id`.",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
    },
    "IdempotentReplayed": {
        "description": "`true` when this is the stored response of an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "RetryAfter": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}},
    "WWWAuthenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
}


def install_openapi(app: FastAPI, request_models: Sequence[type[BaseModel]] = ()) -> None:
    """`request_models`: bodies a route parses itself and declares in `openapi_extra` by reference (a route that
    takes JSON or CSV), added to the components here."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(build(), request_models)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], request_models: Sequence[type[BaseModel]] = ()) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for model in request_models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    components["headers"] = {name: HEADERS[name] for name in sorted(HEADERS)}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            _add_response_headers(operation)
    return document


def _add_response_headers(operation: dict[str, Any]) -> None:
    idempotent = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
    for status, response in operation["responses"].items():
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = {"$ref": "#/components/headers/RequestId"}
        if idempotent:
            headers["Idempotent-Replayed"] = {"$ref": "#/components/headers/IdempotentReplayed"}
        if status == "503":
            headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
        if status == "401":
            headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWWAuthenticate"}
