from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gateway.domain import KeyMode, MerchantCategory
from gateway.schemas import StrictModel


class MerchantCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    category: MerchantCategory


class ApiKeyCreate(StrictModel):
    mode: KeyMode = KeyMode.test


class NewApiKey(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    secret: str = Field(description="Shown only once")
    mode: KeyMode
    created_at: str


class MerchantObject(BaseModel):
    id: str
    object: Literal["merchant"] = "merchant"
    name: str
    category: MerchantCategory
    created_at: str


class MerchantWithKey(MerchantObject):
    api_key: NewApiKey


class ProviderAccountObject(BaseModel):
    object: Literal["provider_account"] = "provider_account"
    merchant_id: str
    provider: str
    livemode: bool
    settings: dict[str, str]
    secrets_set: list[str] = Field(description="Names of the stored secrets; their values are never returned")
    updated_at: str
