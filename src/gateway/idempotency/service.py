"""Idempotency keys kept in the database, so they hold across every process sharing it (CONTRACT §2).

A request claims its key (scope + key) with an INSERT that conflicts on the unique index: a concurrent
twin blocks on that index until the first commits, then replays its response. A request that must call a
provider over the network commits a checkpoint first (the key names the resource created so far and stays
locked for `idempotency_lock_seconds`); a retry after a crash or a 5xx takes the key over and resumes from
that resource instead of creating another.

A completed key's response never changes, so each process also keeps recent ones in memory
(`idempotency.cache`): a replay is then answered without touching the database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import orjson
import structlog
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.db import UnitOfWork, UTCDateTime, insert_returning_id
from gateway.errors import (
    GatewayError,
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    problem_body,
)
from gateway.idempotency.cache import Completed
from gateway.idempotency.models import IdempotencyKey
from gateway.runtime import Runtime

log = structlog.get_logger("gateway.idempotency")


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    replayed: bool = False
    problem: bool = False


Operation = Callable[[UnitOfWork, str | None], Awaitable[StoredResponse]]


_TABLE = cast(Table, IdempotencyKey.__table__)
_KEYS = _TABLE.c
# The statements of every idempotent request, built once (reused: see gateway.db).
_LOCK = (
    select(IdempotencyKey)
    .where(IdempotencyKey.scope == bindparam("scope"), IdempotencyKey.key == bindparam("key"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_OURS_UNFINISHED = (  # (bind names must differ from column names in an UPDATE)
    _KEYS.scope == bindparam("w_scope"),
    _KEYS.key == bindparam("w_key"),
    _KEYS.owner == bindparam("w_owner"),
    _KEYS.response_status.is_(None),
)
_COMPLETE = (
    update(_TABLE)
    .where(*_OURS_UNFINISHED)
    .values(
        response_status=bindparam("b_status"),
        response_body=bindparam("b_body"),
        recovery_point="finished",
        locked_until=None,
        completed_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
_RELEASE = update(_TABLE).where(*_OURS_UNFINISHED).values(locked_until=None)


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(" " <= c <= "~" for c in key):
        raise IdempotencyKeyInvalid("Idempotency-Key must be 1-255 printable ASCII characters.")
    return key


def fingerprint(body: bytes) -> str:
    """The request body as canonical JSON: key order and white space do not make two requests differ."""
    if not body.strip():
        canonical = b""
    else:
        try:
            canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
        except orjson.JSONDecodeError:
            canonical = body
    return hashlib.sha256(canonical).hexdigest()


async def run_idempotent(
    rt: Runtime, *, scope: str, key: str | None, method: str, path: str, body: bytes, operation: Operation
) -> StoredResponse:
    if key is None:
        async with UnitOfWork(rt.db) as uow:
            return await operation(uow, None)
    request = _Request(scope, key, method, path if len(path) <= 255 else "sha256:" + _sha(path), fingerprint(body))
    known = rt.completed_responses.get(scope, key)
    if known is not None:
        _check_same_request(request, known.method, known.path, known.digest)
        return _replayed(known.status, known.body)
    owner = secrets.token_hex(16)
    lock_for = timedelta(seconds=rt.settings.idempotency_lock_seconds)
    uow = UnitOfWork(rt.db)
    session = await uow.begin()
    try:
        record = await _claim(session, rt, request, owner, lock_for)
    except BaseException:
        # In use, reused, or the database failed: nothing here is ours to release.
        await uow.rollback()
        raise
    if record.response_status is not None:
        await uow.commit()
        replayed = _replay(rt, record)
        _remember(rt, request, replayed)
        return replayed
    record_id = record.id

    async def _checkpoint(s: AsyncSession, resource_id: str) -> None:
        await s.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == record_id, IdempotencyKey.owner == owner)
            .values(resource_id=resource_id, recovery_point="resource_created", locked_until=rt.clock.now() + lock_for)
        )

    uow.on_checkpoint(_checkpoint)
    try:
        response = await operation(uow, record.resource_id)
        await _complete(uow.session, rt, request, owner, response.status, response.body)
        await uow.commit()
        _remember(rt, request, response)
        return response
    except GatewayError as exc:
        await uow.rollback()
        if exc.status < 500:
            # A refusal after the request was accepted is its final answer: the same key gets it again.
            await _store_refusal(rt, request, owner, exc)
        else:
            await _release(rt, request, owner)
        raise
    except BaseException:
        await uow.rollback()
        await _release(rt, request, owner)
        raise


@dataclass(frozen=True)
class _Request:
    scope: str
    key: str
    method: str
    path: str
    digest: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def _claim(
    session: AsyncSession,
    rt: Runtime,
    request: _Request,
    owner: str,
    lock_for: timedelta,
) -> IdempotencyKey:
    now = rt.clock.now()
    values = {
        "scope": request.scope,
        "key": request.key,
        "method": request.method,
        "path": request.path,
        "fingerprint": request.digest,
        "recovery_point": "started",
        "locked_until": now + lock_for,
        "owner": owner,
        "created_at": now,
    }
    new_id = await insert_returning_id(session, IdempotencyKey, values, ["scope", "key"])
    if new_id is not None:
        # Ours, and row-locked by the INSERT itself until this transaction ends: no need to read it back.
        return IdempotencyKey(id=new_id, **values)
    record = (await session.execute(_LOCK, {"scope": request.scope, "key": request.key})).scalar_one()
    _check_same_request(request, record.method, record.path, record.fingerprint)
    if record.response_status is not None or record.owner == owner:
        return record
    if record.locked_until is not None and record.locked_until > now:
        raise IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still in progress; retry shortly.", headers={"Retry-After": "1"}
        )
    # The earlier attempt died or failed with a 5xx: take over and resume from its recovery point.
    record.locked_until = now + lock_for
    record.owner = owner
    log.info("idempotency.resumed", recovery_point=record.recovery_point)
    return record


def _check_same_request(request: _Request, method: str, path: str, digest: str) -> None:
    if (method, path, digest) != (request.method, request.path, request.digest):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request; use a new key for a new request."
        )


def _remember(rt: Runtime, request: _Request, response: StoredResponse) -> None:
    # A compact copy: orjson's output keeps its whole (8 KiB) working buffer, ten times a payment's size.
    body = bytes(memoryview(response.body))
    entry = Completed(request.method, request.path, request.digest, response.status, body)
    rt.completed_responses.put(request.scope, request.key, entry)


def _body_context(scope: str, key: str) -> str:
    return f"idempotency:{scope}:{key}"


def _replay(rt: Runtime, record: IdempotencyKey) -> StoredResponse:
    assert record.response_status is not None and record.response_body is not None
    body = rt.secret_box.decrypt(record.response_body, context=_body_context(record.scope, record.key))
    return _replayed(record.response_status, body.encode())


def _replayed(status: int, body: bytes) -> StoredResponse:
    return StoredResponse(status, body, replayed=True, problem=status >= 400)


async def _complete(
    session: AsyncSession, rt: Runtime, request: _Request, owner: str, status: int, body: bytes
) -> None:
    # Responses can carry secrets (a new API key, a webhook secret) and payers' details: encrypted at rest.
    sealed = rt.secret_box.encrypt(body.decode(), context=_body_context(request.scope, request.key))
    await session.execute(
        _COMPLETE,
        {
            "w_scope": request.scope,
            "w_key": request.key,
            "w_owner": owner,
            "b_status": status,
            "b_body": sealed,
            "b_now": rt.clock.now(),
        },
    )


async def _store_refusal(rt: Runtime, request: _Request, owner: str, exc: GatewayError) -> None:
    body = problem_body(exc.status, exc.code, exc.title, exc.detail, errors=exc.errors)
    try:
        async with rt.db.transaction() as session:
            # The key row is gone if our first transaction created it; if it survived a checkpoint, it is ours
            # unless another attempt took it over, and then its answer stands.
            record = await _claim(session, rt, request, owner, timedelta(0))
            if record.owner == owner:
                await _complete(session, rt, request, owner, exc.status, body)
    except GatewayError:
        pass  # another attempt holds the key now
    except Exception:
        log.exception("idempotency.store_failed")


async def _release(rt: Runtime, request: _Request, owner: str) -> None:
    """Nothing final is stored for a 5xx: unlock so the retry can run at once (only our own lock)."""
    try:
        async with rt.db.transaction() as session:
            await session.execute(_RELEASE, {"w_scope": request.scope, "w_key": request.key, "w_owner": owner})
    except Exception:
        log.warning("idempotency.release_failed")


async def purge_expired(rt: Runtime) -> int:
    cutoff = rt.clock.now() - timedelta(hours=rt.settings.idempotency_retention_hours)
    async with rt.db.transaction() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff, IdempotencyKey.locked_until.is_(None))
        )
    return int(getattr(result, "rowcount", 0) or 0)
