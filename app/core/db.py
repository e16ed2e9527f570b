"""Engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import any_, bindparam, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.core.config import Settings


def async_url(url: str) -> str:
    """Accept plain postgresql:// and sqlite:/// URLs; the service picks its own async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")
    return parsed.render_as_string(hide_password=False)


def create_engine(settings: Settings, **overrides: Any) -> AsyncEngine:
    url = async_url(settings.database_url)
    # hide_parameters: personal data must never reach a log line through an exception message.
    # No pre-ping (a round trip on every checkout): a connection found dead is invalidated by the pool when
    # it fails, that request answers 503, and the next one gets a fresh connection.
    options: dict[str, Any] = {"hide_parameters": True}
    if settings.is_sqlite:
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(pool_size=settings.database_pool_size, max_overflow=settings.database_pool_size,
                       pool_timeout=10, connect_args={"timeout": 5, "command_timeout": 30})
    options.update(overrides)
    engine = create_async_engine(url, **options)
    if settings.is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Nearly every request writes (the audit trail), so take the write lock up front:
        # a deferred transaction that upgrades to a writer fails with SQLITE_BUSY instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read: on PostgreSQL in autocommit, so that a single query costs one
    round trip instead of three (BEGIN, query, COMMIT). SQLite keeps its ordinary sessions."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.read_sessionmaker() as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException as exc:
            if getattr(exc, "keep_changes", False):
                await session.commit()
            else:
                await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
# For routes that read and never write (the decision and marketing-check hot paths; nothing to audit).
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def among(session: AsyncSession, column: Any, values: Iterable[Any]) -> Any:
    """`column IN (values)`. On PostgreSQL as `= ANY(:array)`: one bound parameter however many values, so
    the statement compiles once, where an expanding IN renders one parameter per value on every call."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


# A write ready to run: a statement built once (with bound parameters) and the values for this time.
Write = tuple[Any, dict[str, Any]]


def insert_template(table: Any, prefix: str) -> Any:
    """INSERT of every column from bound parameters named `{prefix}_{column}`: built once, it is compiled
    once; a statement built per call with literal values costs SQLAlchemy a cache key walk every time."""
    return insert(table).values({c.name: bindparam(f"{prefix}_{c.name}", type_=c.type) for c in table.c})


def template_values(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{name}": value for name, value in values.items()}


@functools.lru_cache(maxsize=64)
def _combined(statements: tuple[Any, ...]) -> Any:
    *first, last = statements
    for number, statement in enumerate(first):
        last = last.add_cte(statement.cte(f"write_{number}"))
    return last


async def execute_together(session: AsyncSession, writes: Sequence[Write]) -> None:
    """Run writes that return nothing and do not read each other's effects. On PostgreSQL as one statement
    (all but the last as data-modifying CTEs, which PostgreSQL always runs to completion): one round trip
    instead of one each. Elsewhere, one after another. Parameter names must not clash across the writes."""
    if session.get_bind().dialect.name != "postgresql" or len(writes) < 2:
        for statement, values in writes:
            await session.execute(statement, values)
        return
    values: dict[str, Any] = {}
    for _, part in writes:
        values |= part
    await session.execute(_combined(tuple(statement for statement, _ in writes)), values)


def upsert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for the session's database (PostgreSQL or SQLite)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


async def insert_or_ignore(session: AsyncSession, table: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    result = await session.execute(upsert(session, table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
