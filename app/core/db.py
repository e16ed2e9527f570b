"""Engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
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
    options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def upsert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for the session's database (PostgreSQL or SQLite)."""
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


async def insert_or_ignore(session: AsyncSession, table: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    result = await session.execute(upsert(session, table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
