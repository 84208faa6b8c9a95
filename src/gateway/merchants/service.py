"""Merchants, their API keys and their provider accounts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.registry import UnknownProvider
from gateway.clock import isoformat
from gateway.crypto import SecretBox, hash_api_key, random_token
from gateway.domain import KeyMode, MerchantCategory
from gateway.errors import BillerCodeTaken, NotFound, ValidationFailed
from gateway.merchants import repository
from gateway.merchants.credentials import open_secrets, seal_secrets
from gateway.merchants.models import ApiKey, Merchant, ProviderAccount
from gateway.merchants.schemas import ROUTING_FIELDS, MerchantUpdate, RoutingSettings
from gateway.org_units.service import existing_code
from gateway.pagination import keyset_page
from gateway.runtime import Runtime

DEMO_MERCHANT_ID = "mch_demo"


def merchant_object(m: Merchant) -> dict[str, Any]:
    return {
        "id": m.id,
        "object": "merchant",
        "name": m.name,
        "category": m.category,
        "biller_code": m.biller_code,
        "org_unit": m.org_unit,
        "created_at": isoformat(m.created_at),
    }


def new_key_object(key: ApiKey, secret: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "api_key",
        "secret": secret,
        "mode": (KeyMode.live if key.livemode else KeyMode.test).value,
        "created_at": isoformat(key.created_at),
    }


def _biller_code_taken(biller_code: str) -> BillerCodeTaken:
    return BillerCodeTaken(
        f"A merchant with biller code {biller_code!r} already exists (biller codes are compared case-insensitively).",
        errors=[{"loc": ["body", "biller_code"], "msg": "already taken"}],
    )


async def create_merchant(
    session: AsyncSession,
    rt: Runtime,
    name: str,
    category: MerchantCategory,
    merchant_id: str | None = None,
    *,
    biller_code: str | None = None,
    org_unit: str | None = None,
) -> tuple[Merchant, ApiKey, str]:
    await existing_code(session, org_unit, ["body", "org_unit"])
    if biller_code is not None and await repository.biller_code_taken(session, biller_code):
        raise _biller_code_taken(biller_code)
    now = rt.clock.now()
    merchant = Merchant(
        id=merchant_id or rt.ids.new("mch"),
        name=name,
        category=category.value,
        biller_code=biller_code,
        org_unit=org_unit,
        created_at=now,
        updated_at=now,
    )
    if not await repository.write_unless_biller_code_taken(session, lambda: merchant):
        raise _biller_code_taken(str(biller_code))
    key, secret = await issue_api_key(session, rt, merchant.id, KeyMode.test)
    return merchant, key, secret


async def update_merchant(session: AsyncSession, rt: Runtime, merchant_id: str, params: MerchantUpdate) -> Merchant:
    """Only the fields sent change; `biller_code: null` or `org_unit: null` clears it; a new biller code must be
    free, a new unit must exist."""
    merchant = await get_merchant(session, merchant_id)
    await existing_code(session, params.org_unit, ["body", "org_unit"])
    biller_code = params.biller_code
    if biller_code is not None and await repository.biller_code_taken(session, biller_code, besides=merchant.id):
        raise _biller_code_taken(biller_code)

    def change() -> Merchant:
        if params.name is not None:
            merchant.name = params.name
        if params.category is not None:
            merchant.category = params.category.value
        if "biller_code" in params.model_fields_set:  # sent, perhaps as null to clear it
            merchant.biller_code = biller_code
        if "org_unit" in params.model_fields_set:
            merchant.org_unit = params.org_unit
        merchant.updated_at = rt.clock.now()
        return merchant

    if not await repository.write_unless_biller_code_taken(session, change):
        raise _biller_code_taken(str(biller_code))  # only a new biller code can conflict
    return merchant


async def issue_api_key(
    session: AsyncSession, rt: Runtime, merchant_id: str, mode: KeyMode, secret: str | None = None
) -> tuple[ApiKey, str]:
    secret = secret or f"sk_{mode.value}_{random_token(32)}"
    key = ApiKey(
        id=rt.ids.new("key"),
        merchant_id=merchant_id,
        livemode=mode is KeyMode.live,
        secret_hash=hash_api_key(secret),
        secret_hint=secret[-4:],
        created_at=rt.clock.now(),
    )
    session.add(key)
    await session.flush()
    return key, secret


async def get_merchant(session: AsyncSession, merchant_id: str) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(f"No merchant {merchant_id}.")
    return merchant


async def list_merchants(session: AsyncSession, limit: int, starting_after: str | None) -> tuple[list[Merchant], bool]:
    return await keyset_page(session, select(Merchant), Merchant.id, limit, starting_after)


async def revoke_api_key(session: AsyncSession, rt: Runtime, merchant_id: str, key_id: str) -> ApiKey:
    key = (
        await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant_id))
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(f"No API key {key_id} for merchant {merchant_id}.")
    if key.revoked_at is None:
        key.revoked_at = rt.clock.now()
    return key


def _split_credentials(model: BaseModel) -> tuple[dict[str, str], dict[str, str]]:
    settings: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, value in model:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            secrets[name] = value.get_secret_value()
        else:
            settings[name] = str(value)
    return settings, secrets


async def put_provider_account(
    session: AsyncSession, rt: Runtime, merchant_id: str, provider: str, body: dict[str, Any]
) -> tuple[ProviderAccount, list[str]]:
    """Store the merchant's live account at a provider and its routing settings.

    The credentials are replaced whole when any credential field is sent; a body of routing fields only
    (enabled, priority, min_amount, max_amount) changes the routing and keeps the credentials.
    """
    await get_merchant(session, merchant_id)
    try:
        adapter = rt.registry.get(provider)
    except UnknownProvider:
        raise NotFound(f"No provider {provider}.") from None
    routing = _validated(RoutingSettings, {k: v for k, v in body.items() if k in ROUTING_FIELDS})
    credential_fields = {k: v for k, v in body.items() if k not in ROUTING_FIELDS}
    model = _validated(adapter.credentials_model, credential_fields) if credential_fields else None
    now = rt.clock.now()
    row = (
        await session.execute(
            select(ProviderAccount)
            .where(
                ProviderAccount.merchant_id == merchant_id,
                ProviderAccount.provider == provider,
                ProviderAccount.livemode.is_(True),
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        row = ProviderAccount(
            id=rt.ids.new("pac"),
            merchant_id=merchant_id,
            provider=provider,
            livemode=True,
            settings={},
            enabled=True,
            priority=100,
            created_at=now,
        )
        session.add(row)
    if model is not None:
        settings, secrets = _split_credentials(model)
        row.settings = settings
        row.secrets_encrypted = seal_secrets(rt, merchant_id, provider, secrets)
        row.account_key = adapter.account_key(settings)
    for name, value in routing.model_dump(exclude_unset=True).items():
        setattr(row, name, value)
    row.updated_at = now
    await session.flush()
    secret_names = sorted(_split_credentials(model)[1]) if model is not None else _stored_secret_names(rt, row)
    return row, secret_names


def _validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(
            "Invalid provider settings",
            errors=[{"loc": ["body", *err["loc"]], "msg": err["msg"]} for err in exc.errors()],
        ) from None


def _stored_secret_names(rt: Runtime, row: ProviderAccount) -> list[str]:
    return sorted(open_secrets(rt, row))


def provider_account_object(row: ProviderAccount, secret_names: list[str]) -> dict[str, Any]:
    return {
        "object": "provider_account",
        "merchant_id": row.merchant_id,
        "provider": row.provider,
        "livemode": row.livemode,
        "settings": row.settings,
        "secrets_set": secret_names,
        "enabled": row.enabled,
        "priority": row.priority,
        "min_amount": row.min_amount,
        "max_amount": row.max_amount,
        "updated_at": isoformat(row.updated_at),
    }


def demo_key_secret(secret_box: SecretBox) -> str:
    """The demo merchant's test key, derived from the master secret so every start can print it again."""
    return "sk_test_" + secret_box.derive_token("demo-merchant-test-key", 32)


async def ensure_demo_merchant(rt: Runtime) -> str:
    secret = demo_key_secret(rt.secret_box)
    async with rt.db.transaction() as session:
        if await session.get(Merchant, DEMO_MERCHANT_ID) is None:
            now = rt.clock.now()
            session.add(
                Merchant(
                    id=DEMO_MERCHANT_ID,
                    name="Demo Provincial Hospital",
                    category="hospital",
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.flush()
        exists = (await session.execute(select(ApiKey.id).where(ApiKey.secret_hash == hash_api_key(secret)))).first()
        if exists is None:
            await issue_api_key(session, rt, DEMO_MERCHANT_ID, KeyMode.test, secret=secret)
    return secret
