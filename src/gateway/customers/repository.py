"""Every SQL statement about customers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.auth_types import MerchantScope
from gateway.customers.models import Customer
from gateway.db import flush_in_savepoint, insert_new_many, is_in, value_chunks
from gateway.pagination import keyset_page


def code_key(code: str) -> str:
    """Codes are matched case-insensitively: `pa01` and `PA01` are one customer."""
    return code.upper()


def _scoped(scope: MerchantScope) -> Select[Customer]:
    return select(Customer).where(Customer.merchant_id == scope.merchant_id, Customer.livemode == scope.livemode)


async def get(session: AsyncSession, scope: MerchantScope, customer_id: str, *, lock: bool = False) -> Customer | None:
    stmt = _scoped(scope).where(Customer.id == customer_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_page(
    session: AsyncSession, scope: MerchantScope, code: str | None, limit: int, starting_after: str | None
) -> tuple[list[Customer], bool]:
    stmt = _scoped(scope)
    if code is not None:
        stmt = stmt.where(Customer.code_key == code_key(code))
    return await keyset_page(session, stmt, Customer.id, limit, starting_after)


async def code_taken(session: AsyncSession, scope: MerchantScope, code: str, *, besides: str | None = None) -> bool:
    """Whether another customer of the merchant (in this mode) has the code, in any case."""
    holder = await by_code(session, scope, code)
    return holder is not None and holder.id != besides


async def write_unless_code_taken(session: AsyncSession, scope: MerchantScope, write: Callable[[], Customer]) -> bool:
    """Run `write` (which builds a new customer or changes one) and flush it; False when a concurrent request
    took the code first. The caller's check before is the common case; the unique index decides a race."""
    written: list[tuple[str, str]] = []

    def add() -> None:
        customer = write()
        written.append((customer.code, customer.id))  # a rolled-back savepoint expires the object
        session.add(customer)

    refused = await flush_in_savepoint(session, add)
    if refused is None:
        return True
    code, customer_id = written[0]
    if await code_taken(session, scope, code, besides=customer_id):
        return False
    raise refused


async def by_code(session: AsyncSession, scope: MerchantScope, code: str, *, lock: bool = False) -> Customer | None:
    stmt = select(Customer).where(
        Customer.merchant_id == scope.merchant_id,
        Customer.livemode == scope.livemode,
        Customer.code_key == code_key(code),
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_by_id(session: AsyncSession, customer_id: str) -> Customer | None:
    """The customer's row lock orders every change to its balance and its bills (take it before any bill's)."""
    return (
        await session.execute(
            select(Customer)
            .where(Customer.id == customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def by_payment_codes(
    session: AsyncSession, codes: Sequence[str], livemode: bool, merchant_id: str | None
) -> Customer | None:
    """The customer a transfer's content names, locked; `merchant_id` None for the shared sandbox account."""
    if not codes:
        return None
    stmt = select(Customer).where(Customer.payment_code.in_(list(codes)), Customer.livemode == livemode)
    if merchant_id is not None:
        stmt = stmt.where(Customer.merchant_id == merchant_id)
    found = {
        c.payment_code: c
        for c in (await session.execute(stmt.with_for_update().execution_options(populate_existing=True))).scalars()
    }
    for code in codes:  # the first code the content carries wins
        if code in found:
            return found[code]
    return None


# --- bulk (POST /v1/bills/import): plain rows in chunks, never one statement or one ORM object per customer ---

_CUSTOMERS = cast(Table, Customer.__table__)


async def ids_by_code_keys(session: AsyncSession, scope: MerchantScope, keys: Iterable[str]) -> dict[str, str]:
    """code_key → id of the merchant's customers with those codes."""
    found: dict[str, str] = {}
    for chunk in value_chunks(session, keys):
        stmt = select(_CUSTOMERS.c.code_key, _CUSTOMERS.c.id).where(
            _CUSTOMERS.c.merchant_id == scope.merchant_id,
            _CUSTOMERS.c.livemode == scope.livemode,
            is_in(session, _CUSTOMERS.c.code_key, chunk),
        )
        found.update({key: customer_id for key, customer_id in (await session.execute(stmt)).all()})
    return found


async def existing_ids(session: AsyncSession, scope: MerchantScope, ids: Iterable[str]) -> set[str]:
    """Which of these ids are the merchant's customers (in this mode)."""
    found: set[str] = set()
    for chunk in value_chunks(session, ids):
        stmt = select(_CUSTOMERS.c.id).where(
            _CUSTOMERS.c.merchant_id == scope.merchant_id,
            _CUSTOMERS.c.livemode == scope.livemode,
            is_in(session, _CUSTOMERS.c.id, chunk),
        )
        found.update((await session.execute(stmt)).scalars())
    return found


async def insert_many_ignoring_taken(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """INSERT … ON CONFLICT (merchant, mode, code_key) DO NOTHING for many customers (rows keyed by column name);
    the code_keys actually inserted — a code another transaction took meanwhile is left to the caller."""
    conflict = ["merchant_id", "livemode", "code_key"]
    return set(await insert_new_many(session, Customer, rows, conflict_columns=conflict, returning="code_key"))


async def with_positive_balance(session: AsyncSession, ids: Iterable[str]) -> list[str]:
    """Which of these customers hold a balance now (read again: a payment may have credited one meanwhile)."""
    found: list[str] = []
    for chunk in value_chunks(session, ids):
        stmt = select(_CUSTOMERS.c.id).where(is_in(session, _CUSTOMERS.c.id, chunk), _CUSTOMERS.c.balance > 0)
        found.extend((await session.execute(stmt)).scalars())
    return found
