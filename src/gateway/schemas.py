"""Pieces of request and response models shared by several resources."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

T = TypeVar("T")


class StrictModel(BaseModel):
    """Request bodies: an unknown field (a typo such as `ammount`) is an error, never ignored; a NUL character
    (which no database text column takes) is refused where it stands."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("NUL characters are not allowed")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 20:
        raise ValueError("at most 20 metadata pairs")
    for key, item in value.items():
        if not 1 <= len(key) <= 40:
            raise ValueError(f"metadata key {key[:40]!r} must be 1-40 characters")
        if len(item) > 500:
            raise ValueError(f"metadata value of {key!r} is longer than 500 characters")
    return value


Metadata = Annotated[dict[str, str], AfterValidator(_check_metadata)]


def _check_absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


AbsoluteURL = Annotated[str, Field(max_length=2048), AfterValidator(_check_absolute_url)]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: Any) -> Any:
    # pydantic also reads unix timestamps (`0`) and midnight date-times as dates; a date field takes YYYY-MM-DD.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD, e.g. 2026-11-30")


IsoDate = Annotated[date, BeforeValidator(_iso_date_only), Field(examples=["2026-11-30"])]


class ListEnvelope(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool


def list_document(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": items, "has_more": has_more}
