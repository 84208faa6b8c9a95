"""Idempotency keys kept in the database, so they hold across every process sharing it (CONTRACT §2).

A request claims its key (scope + key) with an INSERT that conflicts on the unique index: a concurrent
twin blocks on that index until the first commits, then replays its response.

Who holds a key: while the request is inside a transaction, that transaction's row lock (the INSERT's, or
SELECT … FOR UPDATE when it takes a key over), so a crash or a lost connection frees it with the
transaction. A request that must call a provider over the network commits a checkpoint first (the key names
the resource created so far) and then holds no transaction: for that stretch the key carries a short lease
(`locked_until`) that the owner renews every `RENEW_EVERY_SECONDS` and reclaims with a row lock when it
resumes. A dead owner (SIGKILL, a 5xx whose release could not reach the database) stops renewing, so its key
is free within `LEASE_SECONDS`; a retry then takes it over and resumes from that resource instead of creating
another. Only the owner of record may checkpoint, complete or release a key; an owner that finds its key taken
over rolls back and answers 409.

A completed key's response never changes, so each process also keeps recent ones in memory
(`idempotency.cache`): a replay is then answered without touching the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import Table, bindparam, delete, or_, select, update
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

# How long a key outlives an owner that stopped renewing it (a crash, or a release the database refused), and
# how often a live owner renews it while it calls a provider: several renewals may fail before it lapses.
LEASE_SECONDS = 5.0
RENEW_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    replayed: bool = False
    problem: bool = False


Operation = Callable[[UnitOfWork, str | None], Awaitable[StoredResponse]]


_TABLE = cast(Table, IdempotencyKey.__table__)
_KEYS = _TABLE.c
# The statements of every idempotent request, built once (reused: see gateway.db). Bind names must differ from
# column names in an UPDATE. Plain rows, not ORM objects: a change to a key is always an explicit statement.
_LOCK = (
    select(
        _KEYS.method,
        _KEYS.path,
        _KEYS.fingerprint,
        _KEYS.resource_id,
        _KEYS.owner,
        _KEYS.locked_until,
        _KEYS.response_status,
        _KEYS.response_body,
    )
    .where(_KEYS.scope == bindparam("scope"), _KEYS.key == bindparam("key"))
    .with_for_update()
)
_OURS_UNFINISHED = (
    _KEYS.scope == bindparam("w_scope"),
    _KEYS.key == bindparam("w_key"),
    _KEYS.owner == bindparam("w_owner"),
    _KEYS.response_status.is_(None),
)
_TAKE_OVER = (
    update(_TABLE)
    .where(_KEYS.scope == bindparam("w_scope"), _KEYS.key == bindparam("w_key"), _KEYS.response_status.is_(None))
    .values(owner=bindparam("b_owner"), locked_until=bindparam("b_until", type_=UTCDateTime()))
)
_CHECKPOINT = (
    update(_TABLE)
    .where(*_OURS_UNFINISHED)
    .values(
        resource_id=bindparam("b_resource"),
        recovery_point="resource_created",
        locked_until=bindparam("b_until", type_=UTCDateTime()),
    )
)
_RENEW = update(_TABLE).where(*_OURS_UNFINISHED).values(locked_until=bindparam("b_until", type_=UTCDateTime()))
_RECLAIM = select(_KEYS.id).where(*_OURS_UNFINISHED).with_for_update()
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
    uow = UnitOfWork(rt.db)
    session = await uow.begin()
    try:
        claimed = await _claim(session, rt, request, owner)
    except BaseException:
        # In use, reused, or the database failed: nothing here is ours to release.
        await uow.rollback()
        raise
    if claimed.response_status is not None:
        await uow.commit()
        replayed = _replay(rt, request, claimed)
        _remember(rt, request, replayed)
        return replayed
    holder = _KeyHolder(rt, request, owner)
    uow.hold_with(holder)
    try:
        response = await operation(uow, claimed.resource_id)
        if not await _complete(uow.session, rt, request, owner, response.status, response.body):
            raise _taken_over()
        await uow.commit()
        _remember(rt, request, response)
        return response
    except GatewayError as exc:
        await uow.rollback()
        await holder.end_lease()
        if exc.status < 500 and "Retry-After" not in exc.headers:
            # A refusal after the request was accepted is its final answer: the same key gets it again.
            await _store_refusal(rt, request, owner, exc)
        else:  # a 5xx, or a conflict that says to retry: nothing final
            await _release(rt, request, owner)
        raise
    except BaseException:
        await uow.rollback()
        await holder.end_lease()
        await _release(rt, request, owner)
        raise
    finally:
        await holder.end_lease()


@dataclass(frozen=True)
class _Request:
    scope: str
    key: str
    method: str
    path: str
    digest: str


@dataclass(frozen=True)
class _Claimed:
    resource_id: str | None = None
    response_status: int | None = None
    response_body: str | None = None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _ours(request: _Request, owner: str, **values: Any) -> dict[str, Any]:
    return {"w_scope": request.scope, "w_key": request.key, "w_owner": owner, **values}


def _new_key(request: _Request, owner: str, now: datetime, locked_until: datetime) -> dict[str, Any]:
    return {
        "scope": request.scope,
        "key": request.key,
        "method": request.method,
        "path": request.path,
        "fingerprint": request.digest,
        "recovery_point": "started",
        "locked_until": locked_until,
        "owner": owner,
        "created_at": now,
    }


def _lease_end(rt: Runtime) -> datetime:
    return rt.clock.now() + timedelta(seconds=LEASE_SECONDS)


async def _claim(session: AsyncSession, rt: Runtime, request: _Request, owner: str) -> _Claimed:
    now = rt.clock.now()
    values = _new_key(request, owner, now, _lease_end(rt))
    if await insert_returning_id(session, IdempotencyKey, values, ["scope", "key"]) is not None:
        return _Claimed()  # ours, and row-locked by the INSERT itself until this transaction ends
    row = (await session.execute(_LOCK, {"scope": request.scope, "key": request.key})).one()
    _check_same_request(request, row.method, row.path, row.fingerprint)
    if row.response_status is not None:
        return _Claimed(row.resource_id, row.response_status, row.response_body)
    if row.owner == owner:  # ours since a checkpoint (see _store_refusal)
        return _Claimed(row.resource_id)
    if row.locked_until is not None and row.locked_until > now:
        raise IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still in progress; retry shortly.", headers={"Retry-After": "1"}
        )
    # The earlier attempt died or failed with a 5xx: take over (in the database, under the row lock just taken)
    # and resume from its recovery point.
    await session.execute(
        _TAKE_OVER, {"w_scope": request.scope, "w_key": request.key, "b_owner": owner, "b_until": _lease_end(rt)}
    )
    log.info("idempotency.resumed", resource_id=row.resource_id)
    return _Claimed(row.resource_id)


def _taken_over() -> GatewayError:
    return IdempotencyKeyInUse(
        "Another attempt with this Idempotency-Key took the request over; retry to get its answer.",
        headers={"Retry-After": "1"},
    )


class _KeyHolder:
    """Holds one request's key around its checkpoints (see the module docstring)."""

    def __init__(self, rt: Runtime, request: _Request, owner: str) -> None:
        self._rt, self._request, self._owner = rt, request, owner
        self._renewing: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def checkpointed(self, session: AsyncSession, resource_id: str) -> None:
        params = _ours(self._request, self._owner, b_resource=resource_id, b_until=_lease_end(self._rt))
        if _rowcount(await session.execute(_CHECKPOINT, params)) != 1:
            raise _taken_over()

    def released(self) -> None:
        self._stop = asyncio.Event()
        self._renewing = asyncio.create_task(self._renew(self._stop))

    async def resumed(self, session: AsyncSession) -> None:
        await self.end_lease()
        if (await session.execute(_RECLAIM, _ours(self._request, self._owner))).first() is None:
            raise _taken_over()

    async def end_lease(self) -> None:
        renewing, self._renewing = self._renewing, None
        if renewing is not None:
            self._stop.set()
            await renewing

    async def _renew(self, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RENEW_EVERY_SECONDS)
            if stop.is_set():
                return
            try:
                async with self._rt.db.transaction() as session:
                    params = _ours(self._request, self._owner, b_until=_lease_end(self._rt))
                    renewed = _rowcount(await session.execute(_RENEW, params))
            except Exception as exc:  # the database is away: the lease lapses unless a later renewal succeeds
                log.warning("idempotency.lease_not_renewed", error=type(exc).__name__)
                continue
            if renewed == 0:
                log.warning("idempotency.lease_lost")
                return


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


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


def _replay(rt: Runtime, request: _Request, claimed: _Claimed) -> StoredResponse:
    assert claimed.response_status is not None and claimed.response_body is not None
    body = rt.secret_box.decrypt(claimed.response_body, context=_body_context(request.scope, request.key))
    return _replayed(claimed.response_status, body.encode())


def _replayed(status: int, body: bytes) -> StoredResponse:
    return StoredResponse(status, body, replayed=True, problem=status >= 400)


async def _complete(
    session: AsyncSession, rt: Runtime, request: _Request, owner: str, status: int, body: bytes
) -> bool:
    """Store the final answer, if the key is still ours (False when another attempt took it over)."""
    # Responses can carry secrets (a new API key, a webhook secret) and payers' details: encrypted at rest.
    sealed = rt.secret_box.encrypt(body.decode(), context=_body_context(request.scope, request.key))
    params = _ours(request, owner, b_status=status, b_body=sealed, b_now=rt.clock.now())
    return _rowcount(await session.execute(_COMPLETE, params)) == 1


async def _store_refusal(rt: Runtime, request: _Request, owner: str, exc: GatewayError) -> None:
    body = problem_body(exc.status, exc.code, exc.title, exc.detail, errors=exc.errors)
    try:
        async with rt.db.transaction() as session:
            # Claimed again: the row is gone if our rolled-back transaction created it, still another attempt's if
            # our take-over was rolled back with it, ours if it survived a checkpoint. Should another attempt hold
            # it now, or have answered, that attempt's answer stands.
            claimed = await _claim(session, rt, request, owner)
            if claimed.response_status is None:
                await _complete(session, rt, request, owner, exc.status, body)
    except GatewayError:
        pass  # another attempt holds the key now
    except Exception:
        log.exception("idempotency.store_failed")


async def _release(rt: Runtime, request: _Request, owner: str) -> None:
    """Nothing final is stored for a 5xx: unlock so the retry can run at once (only our own lock). When the
    database cannot be reached, the lease (no longer renewed) lapses by itself."""
    try:
        async with rt.db.transaction() as session:
            await session.execute(_RELEASE, _ours(request, owner))
    except Exception:
        log.warning("idempotency.release_failed")


async def purge_expired(rt: Runtime) -> int:
    now = rt.clock.now()
    cutoff = now - timedelta(hours=rt.settings.idempotency_retention_hours)
    async with rt.db.transaction() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.created_at < cutoff,
                or_(IdempotencyKey.locked_until.is_(None), IdempotencyKey.locked_until < now),
            )
        )
    return _rowcount(result)
