"""Engine, sessions and column types. Only the request or worker boundary commits; services flush."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    Executable,
    Integer,
    MetaData,
    String,
    Table,
    any_,
    bindparam,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumColumn(TypeDecorator[E]):
    """A closed set kept as its value in a plain VARCHAR (no native enum, no check constraint: the schema the
    migrations built), read back as the StrEnum member; a value outside the set is refused on the way in."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (customer, metadata, next_action, provider_data) are read on every payment: orjson, not json.
# hide_parameters: a statement's parameters (account numbers, payer names, sealed secrets) never reach an
# exception's text, so no traceback can log them.
_ENGINE_OPTIONS: dict[str, Any] = {
    "json_serializer": _json_dumps,
    "json_deserializer": orjson.loads,
    "hide_parameters": True,
}


def create_engine(database_url: str, *, pool_size: int = 32) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30}, **_ENGINE_OPTIONS)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=max(pool_size // 4, 4),
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
        **_ENGINE_OPTIONS,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling defers BEGIN and upgrades read locks to write locks mid-way,
    # which deadlocks concurrent writers. Take the write lock up front instead: SQLite then serialises
    # writers the way row locks serialise them on PostgreSQL.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends normally, rolls back on any exception."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "postgresql"


def dialect_insert(name: str) -> Callable[[Table], Any]:
    return postgresql.insert if name == "postgresql" else sqlite.insert


# SQLite limits a statement's variables: a long IN list is sent in chunks.
SQLITE_IN_CHUNK = 1000


def value_chunks(session: AsyncSession, values: Iterable[str]) -> Iterator[list[str]]:
    """Distinct `values` in lists for `is_in`: all at once on PostgreSQL (one array parameter), in chunks on
    SQLite."""
    items = sorted(set(values))
    size = len(items) if dialect_name(session) == "postgresql" else SQLITE_IN_CHUNK
    for start in range(0, len(items), max(size, 1)):
        yield items[start : start + size]


def is_in(session: AsyncSession, column: ColumnElement[str], values: list[str]) -> ColumnElement[bool]:
    """`column IN values` for a bulk lookup. PostgreSQL gets `= ANY($1)`, one array parameter: `IN ($1, …, $n)` is
    planned as a linear search of the list per row, and a table that has just grown (not yet analysed) is then
    scanned whole — 600 ms per 1,000 values against 10,000 rows, measured; ANY probes the index per value."""
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


async def plan_bulk_statements_each_time(session: AsyncSession) -> None:
    """For the rest of this transaction, PostgreSQL plans each statement with its actual parameters. A prepared
    statement run often gets a generic plan, in which `= ANY($1)` over a 10,000-value array is a linear search per
    row (not the hashed lookup a known array gets): an import's lookups then grew from 20 ms to past the 30 s
    statement timeout as the table filled (measured in bench S6)."""
    if dialect_name(session) == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


_BULK_INSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...] | None, str | None], Any] = {}


async def insert_many(
    session: AsyncSession,
    model: type[Base],
    rows: list[dict[str, Any]],
    *,
    conflict_columns: list[str] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """Many rows in one go (each keyed by column name, all with the same keys), skipping those whose unique key
    (`conflict_columns`) exists when given; the `returning` column of the rows written.

    PostgreSQL: ONE statement whatever the count — `INSERT … SELECT * FROM unnest($1::type[], …)`, one array
    parameter per column, so asyncpg encodes every value in C and the server plans once (SQLAlchemy's multi-row
    VALUES processes each parameter in Python: ~3 times the CPU per row, measured on 10,000 bills). SQLite: executemany
    (multi-row VALUES)."""
    if not rows:
        return []
    table = model.__table__
    assert isinstance(table, Table)
    names = list(rows[0])
    if dialect_name(session) != "postgresql":
        statement: Any = dialect_insert(dialect_name(session))(table)
        if conflict_columns is not None:
            statement = statement.on_conflict_do_nothing(index_elements=conflict_columns)
        if returning is None:
            await session.execute(statement, rows)
            return []
        return list((await session.execute(statement.returning(table.c[returning]), rows)).scalars())
    assert session.bind is not None
    dialect = session.bind.dialect
    key = (table.name, tuple(names), tuple(conflict_columns) if conflict_columns else None, returning)
    statement = _BULK_INSERTS.get(key)
    if statement is None:
        arrays = ", ".join(
            f"CAST(:c{i} AS {table.c[name].type.compile(dialect=dialect)}[])" for i, name in enumerate(names)
        )
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"  # noqa: S608 (names come from the table)
        if conflict_columns is not None:
            sql += f" ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING"
        if returning is not None:
            sql += f" RETURNING {returning}"
        statement = _BULK_INSERTS[key] = text(sql)
    params = {f"c{i}": values for i, values in enumerate(_column_values(session, table, names, rows))}
    result = await session.execute(statement, params)
    return list(result.scalars()) if returning is not None else []


def _column_values(
    session: AsyncSession, table: Table, names: list[str], rows: list[dict[str, Any]]
) -> list[list[Any]]:
    """One list per column, each value as the driver takes it (the column type's bind processing: JSON serialized,
    enums as their value)."""
    assert session.bind is not None
    dialect = session.bind.dialect
    columns = []
    for name in names:
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        values = [row[name] for row in rows]
        if process is not None:
            try:  # a column of few distinct values (a timestamp, a status, empty metadata): each processed once
                processed = {v: process(v) for v in set(values)} if len(values) > 1 else None
            except TypeError:  # unhashable (JSON documents)
                processed = None
            values = [processed[v] for v in values] if processed is not None else [process(v) for v in values]
        columns.append(values)
    return columns


_UNIQUE_VIOLATION = "23505"


async def insert_new_many(
    session: AsyncSession,
    model: type[Base],
    rows: list[dict[str, Any]],
    *,
    conflict_columns: list[str] | None = None,
    returning: str | None = None,
) -> list[Any]:
    """`insert_many` for rows that are new but for a rare race: on PostgreSQL, asyncpg's binary COPY straight into
    the table (no SQL parameters to encode, no ON CONFLICT to probe: a third less time on both sides than the
    unnest INSERT, measured on 10,000 bills). With `conflict_columns`, the COPY runs in a savepoint: when a key is
    taken already (a concurrent import won a race), the COPY is rolled back whole and the rows go in through
    `insert_many` … ON CONFLICT DO NOTHING instead, which skips the taken ones. The `returning` column of the rows
    written. SQLite: `insert_many`."""
    if not rows or dialect_name(session) != "postgresql":
        return await insert_many(session, model, rows, conflict_columns=conflict_columns, returning=returning)
    table = model.__table__
    assert isinstance(table, Table)
    # A column NULL in every row (as sent: a JSON column's None may be the JSON null) is left out, NULL by
    # default: fewer values to encode and send.
    columns = dict(zip(rows[0], _column_values(session, table, list(rows[0]), rows), strict=True))
    names = [
        name
        for name, values in columns.items()
        if table.c[name].server_default is not None or any(v is not None for v in values)
    ]
    records = list(zip(*(columns[name] for name in names), strict=True))
    try:
        # The savepoint also makes sure the transaction has begun on the driver's connection (its BEGIN is lazy).
        async with session.begin_nested():
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            assert driver is not None
            await driver.copy_records_to_table(table.name, records=records, columns=names)
    except Exception as exc:
        if conflict_columns is None or getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        return await insert_many(session, model, rows, conflict_columns=conflict_columns, returning=returning)
    return [row[returning] for row in rows] if returning is not None else []


# Hot statements are built once and reused, their values bound at execution: SQLAlchemy memoises a statement
# object's cache key, so reuse skips construction, coercion and cache-key generation — most of the CPU a
# statement costs on a hot path (bench/RESULTS.md). Dialect-neutral ones are module constants next to their
# callers; these depend on the dialect.
_CONFLICT_INSERTS: dict[tuple[str, str, tuple[str, ...], bool], Executable] = {}


def _insert_on_conflict(session: AsyncSession, table: Table, conflict_columns: list[str], returning_id: bool) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for `table`, built once per dialect (the columns come from the values)."""
    name = dialect_name(session)
    cache_key = (name, table.name, tuple(conflict_columns), returning_id)
    statement = _CONFLICT_INSERTS.get(cache_key)
    if statement is None:
        built = dialect_insert(name)(table).on_conflict_do_nothing(index_elements=conflict_columns)
        statement = _CONFLICT_INSERTS[cache_key] = built.returning(table.c.id) if returning_id else built
    return statement


async def insert_ignoring_conflict(
    session: AsyncSession, model: type[Base], values: Mapping[str, Any], conflict_columns: list[str]
) -> bool:
    """INSERT that does nothing when the unique key already exists; True when a row was written.

    This is how a repeated notification or a retried posting becomes a no-op without an exception
    that would poison the surrounding transaction. `values` are keyed by column name.
    """
    table = model.__table__
    assert isinstance(table, Table)
    result = await session.execute(_insert_on_conflict(session, table, conflict_columns, False), dict(values))
    return bool(getattr(result, "rowcount", 0) == 1)


async def insert_returning_id(
    session: AsyncSession, model: type[Base], values: Mapping[str, Any], conflict_columns: list[str]
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row's id, or None when the key already existed."""
    table = model.__table__
    assert isinstance(table, Table)
    statement = _insert_on_conflict(session, table, conflict_columns, True)
    return (await session.execute(statement, dict(values))).scalar_one_or_none()


async def flush_in_savepoint(session: AsyncSession, write: Callable[[], object]) -> IntegrityError | None:
    """Run `write` (which adds or changes rows) and flush it inside a savepoint; the unique-index error that refused
    it, if any, with the transaction still usable. Entering the savepoint flushes what is pending, so `write` must
    make its change only when called."""
    try:
        async with session.begin_nested():
            write()
            await session.flush()
    except IntegrityError as exc:
        return exc
    return None


class CheckpointHolder(Protocol):
    """What keeps a request's claim (its idempotency key) while the request holds no transaction."""

    async def checkpointed(self, session: AsyncSession, resource_id: str) -> None:
        """Inside the transaction a checkpoint commits: record how far the request got."""

    def released(self) -> None:
        """The checkpoint committed: from now until `resumed` no transaction holds the claim."""

    async def resumed(self, session: AsyncSession) -> None:
        """First thing in the resumed transaction: hold the claim again (or find it lost and raise)."""


class UnitOfWork:
    """A request's database work, which may be split around a network call to a provider.

    Most requests are one transaction. A request that must call a provider over the network first commits
    what it has (`checkpoint`), talks to the provider holding no transaction and no lock, then continues in
    a new transaction (`resume`). A `CheckpointHolder` (the idempotency key) records the recovery point in
    the transaction being committed and keeps the request's claim while no transaction does.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._session: AsyncSession | None = None
        self._holders: list[CheckpointHolder] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("no open transaction")
        return self._session

    def hold_with(self, holder: CheckpointHolder) -> None:
        self._holders.append(holder)

    async def begin(self) -> AsyncSession:
        self._session = self._db.sessionmaker()
        await self._session.begin()
        return self._session

    async def commit(self) -> None:
        session, self._session = self.session, None
        try:
            await session.commit()
        finally:
            await session.close()

    async def rollback(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                await session.rollback()
            finally:
                await session.close()

    async def checkpoint(self, resource_id: str) -> None:
        for holder in self._holders:
            await holder.checkpointed(self.session, resource_id)
        await self.commit()
        for holder in self._holders:
            holder.released()

    async def resume(self) -> AsyncSession:
        session = await self.begin()
        for holder in self._holders:
            await holder.resumed(session)
        return session

    async def __aenter__(self) -> UnitOfWork:
        await self.begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None and self._session is not None:
            await self.commit()
        else:
            await self.rollback()
