"""The event payloads as OpenAPI 3.1 `webhooks`, so integrators see exactly what their receiver gets."""

# No `from __future__ import annotations`: FastAPI must see the per-event model objects, not their names.
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from pydantic import BaseModel, create_model

from gateway.domain import EventType
from gateway.payments.schemas import PaymentObject
from gateway.refunds.schemas import RefundObject

RETRY_NOTE = (
    "Sent as `POST` to each subscribed endpoint per the Standard Webhooks specification: the body is the event "
    "object, byte-for-byte the same on every retry; `webhook-signature` is `v1,<base64 HMAC-SHA256 of "
    '"{webhook-id}.{webhook-timestamp}.{body}">` (two, space-separated, during a secret rotation). Answer 2xx '
    "within 15 s; anything else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±20 % jitter), then "
    "the delivery fails and can be redelivered. `410 Gone` disables the endpoint; `Retry-After` on 429/503 is "
    "honoured; redirects are not followed. Delivery is at least once: dedupe on `webhook-id`."
)


RECEIVER_ANSWERS: dict[int | str, dict[str, Any]] = {
    "2XX": {"description": "Received: any 2xx within 15 s ends the delivery"},
    410: {"description": "Gone: the endpoint is disabled"},
    "default": {"description": "Anything else, or no answer in time, is retried"},
}


class PaymentData(BaseModel):
    object: PaymentObject


class RefundData(BaseModel):
    object: RefundObject


def _event_model(event_type: EventType) -> type[BaseModel]:
    data = RefundData if event_type.value.startswith("refund.") else PaymentData
    name = "".join(part.title() for part in event_type.value.replace(".", "_").split("_")) + "Event"
    fields: dict[str, Any] = {
        "id": (str, ...),
        "object": (Literal["event"], "event"),
        "type": (Literal[event_type.value], event_type.value),
        "created_at": (str, ...),
        "data": (data, ...),
        "late": (bool | None, None),
    }
    model: type[BaseModel] = create_model(name, **fields)
    return model


def document_webhooks(app: FastAPI) -> None:
    for event_type in EventType:
        model = _event_model(event_type)

        async def receiver(
            event: model,  # type: ignore[valid-type]
            webhook_id: Annotated[str, Header(description="The event id; dedupe on it")],
            webhook_timestamp: Annotated[str, Header(description="Unix seconds")],
            webhook_signature: Annotated[str, Header(description="v1,<signature> [v1,<signature>]")],
        ) -> None: ...

        app.webhooks.post(
            event_type.value,
            summary=event_type.value,
            description=RETRY_NOTE,
            operation_id=f"webhook_{event_type.name}",
            responses=RECEIVER_ANSWERS,
        )(receiver)
