"""SQL about merchants, their keys and routing tables, and the per-process cache of routing state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.db import UTCDateTime, flush_in_savepoint
from gateway.merchants.models import ApiKey, Merchant, ProviderAccount, ProviderHealth

ROUTING_CACHE_TTL = timedelta(seconds=1)
# (merchant, livemode) → (fresh until, provider accounts, providers cooling down); one per process (Runtime).
RoutingCache = dict[tuple[str, bool], tuple[datetime, dict[str, Any], set[str]]]


async def by_biller_code(session: AsyncSession, biller_code: str) -> Merchant | None:
    """The merchant a partner names by `biller_code`, in any case. Billers are few (one per utility, hospital or
    school of a province), so comparing upper-cased values needs no index of its own."""
    stmt = (
        select(Merchant)
        .where(func.upper(Merchant.biller_code) == biller_code.upper())
        .order_by(Merchant.id)  # two holders only after a race between spellings: the first one keeps it
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def biller_code_taken(session: AsyncSession, biller_code: str, *, besides: str | None = None) -> bool:
    """Whether another merchant has the biller code, in any case."""
    holder = await by_biller_code(session, biller_code)
    return holder is not None and holder.id != besides


async def write_unless_biller_code_taken(session: AsyncSession, write: Callable[[], Merchant]) -> bool:
    """Run `write` (which builds a new merchant or changes one) and flush it; False when a concurrent request took
    the biller code first. The caller's check before is the common case; the unique index decides a race."""
    written: list[tuple[str | None, str]] = []

    def add() -> None:
        merchant = write()
        written.append((merchant.biller_code, merchant.id))  # a rolled-back savepoint expires the object
        session.add(merchant)

    refused = await flush_in_savepoint(session, add)
    if refused is None:
        return True
    biller_code, merchant_id = written[0]
    if biller_code is not None and await biller_code_taken(session, biller_code, besides=merchant_id):
        return False
    raise refused


async def scope_of_api_key(session: AsyncSession, secret_hash: str) -> MerchantScope | None:
    """Who an unrevoked API key authenticates."""
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.merchant_id, ApiKey.livemode).where(
                ApiKey.secret_hash == secret_hash, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return MerchantScope(merchant_id=row.merchant_id, livemode=row.livemode, key_id=row.id)


async def routing_state(
    session: AsyncSession, cache: RoutingCache, scope: MerchantScope, now: datetime
) -> tuple[dict[str, ProviderAccount], set[str]]:
    """The merchant's routing settings and the providers cooling down, read at most once a second per process
    (a change made elsewhere is seen within that second; one made here, at once)."""
    key = (scope.merchant_id, scope.livemode)
    cached = cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1], cached[2]
    accounts = {
        row.provider: row
        for row in (
            await session.execute(
                select(ProviderAccount).where(
                    ProviderAccount.merchant_id == scope.merchant_id, ProviderAccount.livemode.is_(True)
                )
            )
        ).scalars()
    }
    open_breakers = set(
        (
            await session.execute(
                select(ProviderHealth.provider).where(
                    ProviderHealth.livemode == scope.livemode, ProviderHealth.opened_until > now
                )
            )
        ).scalars()
    )
    cache[key] = (now + ROUTING_CACHE_TTL, accounts, open_breakers)
    return accounts, open_breakers


def forget_routing(cache: RoutingCache, merchant_id: str | None = None) -> None:
    if merchant_id is None:
        cache.clear()
        return
    for key in [k for k in cache if k[0] == merchant_id]:
        del cache[key]


async def reset_breaker(session: AsyncSession, provider: str, livemode: bool, now: datetime) -> None:
    await session.execute(
        update(ProviderHealth)
        .where(
            ProviderHealth.provider == provider,
            ProviderHealth.livemode == livemode,
            ProviderHealth.consecutive_failures > 0,
        )
        .values(consecutive_failures=0, opened_until=None, updated_at=now)
    )


async def count_failure(
    session: AsyncSession,
    provider: str,
    livemode: bool,
    error: str,
    now: datetime,
    *,
    threshold: int,
    cool_down: timedelta,
) -> None:
    """One more consecutive technical failure; the breaker opens for `cool_down` at `threshold` of them."""
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ProviderHealth).values(
        provider=provider, livemode=livemode, consecutive_failures=1, last_error=error, updated_at=now
    )
    failures = ProviderHealth.consecutive_failures + 1
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["provider", "livemode"],
            set_={
                "consecutive_failures": failures,
                "last_error": stmt.excluded.last_error,
                "updated_at": now,
                "opened_until": case(
                    (failures >= threshold, literal(now + cool_down, UTCDateTime())),
                    else_=ProviderHealth.opened_until,
                ),
            },
        )
    )


async def billers(session: AsyncSession) -> list[tuple[str, str]]:
    """(biller_code, name) of every merchant that has a biller code, by name."""
    stmt = (
        select(Merchant.biller_code, Merchant.name)
        .where(Merchant.biller_code.is_not(None))
        .order_by(Merchant.name, Merchant.biller_code)
    )
    return [(str(code), name) for code, name in (await session.execute(stmt)).all()]
