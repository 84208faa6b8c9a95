from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from gateway.domain import EventType


class EventObject(BaseModel):
    id: str
    object: Literal["event"] = "event"
    type: EventType
    created_at: str
    data: dict[str, Any]
    late: bool | None = None
