"""The one way an adapter calls its provider: send a request, and map every transport failure once into
ProviderTechnicalError, saying whether the provider certainly received nothing (then the same payment may safely
be started again, or routed to another provider)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from gateway.adapters.base import ProviderTechnicalError


def _overall_bound(http: httpx.AsyncClient) -> float | None:
    """httpx enforces its timeouts per phase on a network transport, but an in-process ASGI transport (the mounted
    sandbox) enforces none, so the whole call is also bounded by their sum."""
    phases = (http.timeout.connect, http.timeout.write, http.timeout.read)
    if any(p is None for p in phases):
        return None
    return sum(p for p in phases if p is not None)


async def send_provider_request(
    http: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    json: object = None,
    data: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """The provider's answer, whatever its HTTP status (reading it is the adapter's job); `data` is sent
    form-encoded."""
    try:
        async with asyncio.timeout(_overall_bound(http)):
            return await http.request(method, url, json=json, data=data, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        # A ConnectTimeout is as certain as a refused connection: httpx writes the first byte of a request only
        # once the connection (TCP and TLS) is up, so a timeout while connecting means the provider got nothing.
        raise ProviderTechnicalError(
            f"{provider} unreachable: {type(exc).__name__}", certainly_not_created=True
        ) from exc
    except (httpx.HTTPError, TimeoutError) as exc:
        # Anything later (a write or read timeout, a dropped connection): the request may have arrived.
        raise ProviderTechnicalError(f"{provider} call failed: {type(exc).__name__}") from exc


_Answer = TypeVar("_Answer", bound=BaseModel)


def parse_answer(model: type[_Answer], provider: str, answer: bytes | Mapping[str, object] | None) -> _Answer:
    """A provider's answer (its raw JSON body, or the object already decoded) as its typed wire model; one that
    does not fit says nothing reliable, so it is a technical error."""
    try:
        if isinstance(answer, bytes):
            return model.model_validate_json(answer)
        return model.model_validate(answer)
    except ValidationError as exc:
        raise ProviderTechnicalError(f"{provider} answered a malformed body ({exc.error_count()} errors)") from exc
