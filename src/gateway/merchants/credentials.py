"""Which credentials a provider call or a provider notification uses: a merchant's live account, or the
shared sandbox account in test mode."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.base import PaymentAdapter, ProviderContext, ProviderCredentials, SandboxBillers
from gateway.adapters.testmode import Sandboxed
from gateway.errors import ProviderNotConfigured, TestModeDisabled
from gateway.merchants import repository
from gateway.merchants.models import ProviderAccount
from gateway.runtime import Runtime


def _secrets_context(merchant_id: str, provider: str) -> str:
    # Bound into the ciphertext: a secret copied to another merchant's row does not decrypt.
    return f"provider_account:{merchant_id}:{provider}"


def seal_secrets(rt: Runtime, merchant_id: str, provider: str, secrets: dict[str, str]) -> str | None:
    if not secrets:
        return None
    return rt.secret_box.encrypt(orjson.dumps(secrets).decode(), context=_secrets_context(merchant_id, provider))


def open_secrets(rt: Runtime, row: ProviderAccount) -> dict[str, str]:
    if not row.secrets_encrypted:
        return {}
    plain = rt.secret_box.decrypt(row.secrets_encrypted, context=_secrets_context(row.merchant_id, row.provider))
    loaded: dict[str, Any] = orjson.loads(plain)
    return {str(k): str(v) for k, v in loaded.items()}


def _live_credentials(rt: Runtime, row: ProviderAccount) -> ProviderCredentials:
    settings = {str(k): str(v) for k, v in row.settings.items()}
    return ProviderCredentials(
        livemode=True,
        merchant_id=row.merchant_id,
        settings=settings,
        secrets=open_secrets(rt, row),
        base_url=settings.get("api_base_url", ""),
    )


def _sandbox(rt: Runtime, adapter: PaymentAdapter) -> ProviderCredentials | None:
    """The shared test-mode account the adapter declares, its secrets derived from the master secret (as the
    simulator derives them)."""
    if not rt.settings.sandbox or rt.sandbox_base_url is None or not isinstance(adapter, Sandboxed):
        return None
    return ProviderCredentials(
        livemode=False,
        merchant_id=None,
        settings=adapter.sandbox.settings,
        secrets=adapter.sandbox.secrets(adapter.name, rt.secret_box.derive_token),
        base_url=f"{rt.sandbox_base_url.rstrip('/')}/{adapter.name}",
    )


async def credentials_for(
    session: AsyncSession, rt: Runtime, adapter: PaymentAdapter, merchant_id: str, livemode: bool
) -> ProviderCredentials:
    if not livemode:
        creds = _sandbox(rt, adapter)
        if creds is None:
            raise TestModeDisabled(f"No sandbox is available for provider {adapter.name}")
        return creds
    row = (
        await session.execute(
            select(ProviderAccount).where(
                ProviderAccount.merchant_id == merchant_id,
                ProviderAccount.provider == adapter.name,
                ProviderAccount.livemode.is_(True),
            )
        )
    ).scalar_one_or_none()
    if row is None or not row.settings:
        raise ProviderNotConfigured(
            f"Provider {adapter.name} has no live credentials; set them with "
            f"PUT /v1/merchants/{merchant_id}/providers/{adapter.name}"
        )
    return _live_credentials(rt, row)


async def context_for(
    session: AsyncSession, rt: Runtime, adapter: PaymentAdapter, merchant_id: str, livemode: bool
) -> ProviderContext:
    return ProviderContext(
        credentials=await credentials_for(session, rt, adapter, merchant_id, livemode),
        http=rt.provider_http,
        notification_url=f"{rt.notification_base_url}/{adapter.name}/notifications",
        return_url=f"{rt.notification_base_url}/{adapter.name}/return",
        clock=rt.clock,
    )


async def notification_credentials(
    session: AsyncSession, rt: Runtime, adapter: PaymentAdapter, account_key: str | None
) -> list[ProviderCredentials]:
    """Every account a notification naming `account_key` may come from; the signature decides which."""
    candidates: list[ProviderCredentials] = []
    if account_key is not None:
        rows = (
            await session.execute(
                select(ProviderAccount).where(
                    ProviderAccount.provider == adapter.name, ProviderAccount.account_key == account_key
                )
            )
        ).scalars()
        candidates.extend(_live_credentials(rt, row) for row in rows)
    sandbox = _sandbox(rt, adapter)
    if sandbox is not None and (account_key is None or adapter.account_key(sandbox.settings) == account_key):
        candidates.append(sandbox)
    elif sandbox is not None and account_key and isinstance(adapter, SandboxBillers):
        biller = await sandbox_biller_credentials(session, sandbox, account_key)
        if biller is not None:
            candidates.append(biller)
    return candidates


def sandbox_credentials(rt: Runtime, adapter: PaymentAdapter) -> ProviderCredentials | None:
    """The shared test-mode account, or None when test mode is off."""
    return _sandbox(rt, adapter)


async def sandbox_biller_credentials(
    session: AsyncSession, sandbox: ProviderCredentials, biller_code: str
) -> ProviderCredentials | None:
    """A sandbox that serves billers names a merchant by its biller_code (signed with the sandbox's keys): the
    sandbox account as that merchant's, its merchant_code the biller code."""
    merchant = await repository.by_biller_code(session, biller_code)
    if merchant is None or merchant.biller_code != biller_code:
        return None
    return ProviderCredentials(
        livemode=False,
        merchant_id=merchant.id,
        settings={**sandbox.settings, "merchant_code": merchant.biller_code},
        secrets=sandbox.secrets,
        base_url=sandbox.base_url,
    )
