"""The event payloads as OpenAPI 3.1 `webhooks`, so integrators see exactly what their receiver gets."""

# No `from __future__ import annotations`: FastAPI must see the per-event model objects, not their names.
import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header
from pydantic import BaseModel, create_model
from starlette.routing import BaseRoute

from gateway.bills.schemas import BillObject
from gateway.collections.schemas import CollectionObject
from gateway.customers.schemas import CustomerObject
from gateway.domain import EventType
from gateway.payments.schemas import PaymentObject
from gateway.receipts.schemas import ReceiptObject
from gateway.refunds.schemas import RefundObject
from gateway.settings import Settings


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def retry_note(schedule: tuple[int, ...]) -> str:
    """How a delivery is sent and retried, with the schedule the dispatcher really uses."""
    retried = (
        f"anything else is retried after {', '.join(_duration(s) for s in schedule)} (±20 % jitter), then the "
        "delivery fails"
        if schedule
        else "anything else fails the delivery"
    )
    return (
        "Sent as `POST` to each subscribed endpoint per the Standard Webhooks specification: the body is the "
        "event object, byte-for-byte the same on every retry; `webhook-signature` is `v1,<base64 HMAC-SHA256 of "
        '"{webhook-id}.{webhook-timestamp}.{body}">` (two, space-separated, during a secret rotation). Answer 2xx '
        f"within 15 s; {retried} and can be redelivered. `410 Gone` disables the endpoint; `Retry-After` on "
        "429/503 is honoured; redirects are not followed. Delivery is at least once: dedupe on `webhook-id`."
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


class BillData(BaseModel):
    object: BillObject


class CustomerData(BaseModel):
    object: CustomerObject


class ReceiptData(BaseModel):
    object: ReceiptObject


class CollectionData(BaseModel):
    object: CollectionObject


# The `data` of each object an event can carry (EventType.object_type).
_DATA: dict[str, type[BaseModel]] = {
    "payment": PaymentData,
    "refund": RefundData,
    "bill": BillData,
    "customer": CustomerData,
    "receipt": ReceiptData,
    "collection": CollectionData,
}


@functools.cache
def event_model(event_type: EventType) -> type[BaseModel]:
    data = _DATA[event_type.object_type]
    name = "".join(part.title() for part in event_type.name.split("_")) + "Event"
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


def document_webhooks(app: FastAPI, settings: Settings) -> None:
    app.webhooks.routes.extend(_webhook_routes(retry_note(settings.retry_schedule)))


@functools.cache
def _webhook_routes(description: str) -> tuple[BaseRoute, ...]:
    """The documentation-only receiver routes, built once per process (and retry schedule): building them costs a
    create_model and FastAPI's dependency analysis per event type, ~0.1 s every app would pay again."""
    router = APIRouter()
    for event_type in EventType:
        model = event_model(event_type)

        async def receiver(
            event: model,  # type: ignore[valid-type]
            webhook_id: Annotated[str, Header(description="The event id; dedupe on it")],
            webhook_timestamp: Annotated[str, Header(description="Unix seconds")],
            webhook_signature: Annotated[str, Header(description="v1,<signature> [v1,<signature>]")],
        ) -> None: ...

        router.post(
            event_type.value,
            summary=event_type.value,
            description=description,
            operation_id=f"webhook_{event_type.name}",
            responses=RECEIVER_ANSWERS,
        )(receiver)
    return tuple(router.routes)
