from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictInt

from gateway.domain import EventType
from gateway.schemas import AbsoluteURL, StrictModel

_KNOWN = {t.value for t in EventType}


def _check_filter(events: list[str]) -> list[str]:
    if "*" in events:
        if len(events) != 1:
            raise ValueError('"*" subscribes to every event and stands alone')
        return events
    unknown = [e for e in events if e not in _KNOWN]
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return list(dict.fromkeys(events))


EventFilter = Annotated[
    list[str],
    Field(min_length=1, max_length=len(_KNOWN), description='["*"] or a list of event types'),
    AfterValidator(_check_filter),
]


class EndpointCreate(StrictModel):
    url: AbsoluteURL
    events: EventFilter = Field(default_factory=lambda: ["*"])
    description: str | None = Field(default=None, max_length=255)


class EndpointUpdate(StrictModel):
    url: AbsoluteURL | None = None
    events: EventFilter | None = None
    status: Literal["enabled", "disabled"] | None = None
    description: str | None = Field(default=None, max_length=255)


class RotateSecret(StrictModel):
    expire_old_after: StrictInt = Field(
        default=86400, ge=0, le=7 * 86400, description="Seconds the old secret keeps signing; 0 = at once"
    )


class Redeliver(StrictModel):
    endpoint_id: str | None = Field(default=None, max_length=40)


class EndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    livemode: bool
    url: str
    events: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    created_at: str
    updated_at: str
    secret: str | None = Field(default=None, description="Only when created and when rotated")


class DeletedEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: Literal[True] = True


class AttemptObject(BaseModel):
    id: str
    object: Literal["webhook_attempt"] = "webhook_attempt"
    event_id: str
    endpoint_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None
    created_at: str
    next_attempt_at: str | None


class RedeliveryObject(BaseModel):
    object: Literal["event_redelivery"] = "event_redelivery"
    event_id: str
    endpoint_ids: list[str]
