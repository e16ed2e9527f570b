"""Statements built once, compiled once per dialect, and sent as their SQL with positional values.

That skips SQLAlchemy's work on every execution (ORM compile state, cache key walk, parameter construction,
result set-up). On PostgreSQL, outside a transaction, the SQL goes to asyncpg directly: there is no
transaction for SQLAlchemy to begin, and its execution machinery would cost more than the statement.
SQLAlchemy offers no public way to have the driver's exceptions translated for such a call, so this module
maps them itself, from asyncpg's documented exception classes, to what SQLAlchemy would have raised (or to
core.db.DatabaseUnavailable when the connection failed, as the engine's error hook does)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db import CONNECTION, DatabaseUnavailable, connection_failed, discard, in_transaction

_REQUIRED = object()


class Prebuilt:
    """A statement compiled for one dialect: its SQL, per positional parameter its key, its own bound value
    (or _REQUIRED) and its bind processor, and per result column its name and result processor."""

    _cache: ClassVar[dict[tuple[int, str], tuple[Any, Prebuilt]]] = {}

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not compiled.positional:
            raise ValueError(f"{dialect.name}: prebuilt statements need a driver with positional parameters")
        if any(bind.expanding or bind.literal_execute or bind.callable for bind in compiled.binds.values()):
            raise ValueError(
                "a prebuilt statement takes no expanding (IN), literal-execute or callable parameters"
            )
        self.sql: str = compiled.string
        self.slots = tuple(
            (
                bind.key,
                _REQUIRED if bind.required else bind.value,
                bind.type.dialect_impl(dialect).bind_processor(dialect),
            )
            for bind in (compiled.binds[name] for name in compiled.positiontup or ())
        )
        columns = getattr(statement, "exported_columns", ())
        self.names = tuple(column.key for column in columns)
        self.processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        self.writes = bool(getattr(statement, "is_dml", False))

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> Prebuilt:
        """Cached by identity: prebuilt statements live as long as the process (the cache keeps them, so that
        their ids are not reused). A statement built per call would be compiled per call, and kept."""
        key = (id(statement), dialect.name)
        cached = cls._cache.get(key)
        if cached is None:
            cached = cls._cache[key] = (statement, cls(statement, dialect))
        return cached[1]

    def values(self, params: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for key, default, process in self.slots:
            value = params.get(key, default)
            if value is _REQUIRED:
                raise KeyError(f"no value for the parameter {key!r}")
            values.append(process(value) if process else value)
        return tuple(values)

    def rows(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        processors = self.processors
        return [
            dict(
                zip(
                    self.names,
                    (
                        process(value) if process else value
                        for process, value in zip(processors, row, strict=True)
                    ),
                    strict=True,
                )
            )
            for row in rows
        ]


async def run(
    session: AsyncSession, statement: Any, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows (as dicts) of a statement built once, at import, executed with `params` in the session's
    connection (and transaction, if it has one). Values and results pass through their types' processors;
    parameters not given take the statement's own bound values, and a parameter without one must be given.
    A write counts as one (see count_write)."""
    return await fetch(session, statement, params, counted=True)


async def fetch(
    session: AsyncSession, statement: Any, params: dict[str, Any] | None, *, counted: bool
) -> list[dict[str, Any]]:
    """`run`, for a caller counting its writes itself (`counted=False`: part of a write already counted)."""
    held = session.info.get(CONNECTION)
    if held is None:  # the first statement of this transaction checks a connection out: keep it at hand
        connection = await session.connection()
        direct = connection.dialect.name == "postgresql" and not in_transaction(session)
        driver = (await connection.get_raw_connection()).driver_connection if direct else None
        held = session.info[CONNECTION] = (connection, driver)
    connection, driver = held
    prebuilt = Prebuilt.of(statement, connection.dialect)
    if prebuilt.writes and counted:
        count_write(session)
    values = prebuilt.values(params or {})
    if driver is not None:
        try:
            return prebuilt.rows(await driver.fetch(prebuilt.sql, *values))
        except BaseException as error:
            translated = await _as_sqlalchemy_would(connection, error, prebuilt.sql, values)
            if translated is error:
                raise
            raise translated from error
    result = await connection.exec_driver_sql(prebuilt.sql, values)
    return prebuilt.rows(result) if result.returns_rows else []


async def execute(
    session: AsyncSession, statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None
) -> Result[*tuple[Any, ...]]:
    """A statement built for this call (a list's filters, a report), through SQLAlchemy as usual."""
    if getattr(statement, "is_dml", False):
        count_write(session)
    result: Result[*tuple[Any, ...]] = await session.execute(statement, params)
    return result


async def modify(
    session: AsyncSession, statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None
) -> int:
    """An UPDATE or DELETE built for this call; how many rows it changed."""
    result = await execute(session, statement, params)
    return int(getattr(result, "rowcount", 0))


def count_write(session: AsyncSession, *, written: bool = True) -> None:
    """Outside a transaction a session writes once: each write stands on its own there, so a second one
    would leave the first behind if it failed. `written=False` only checks (a guarded write that may find its
    guard moved, and write nothing)."""
    if in_transaction(session):
        return
    if session.info.get("wrote"):
        raise RuntimeError("a second write outside a transaction: call core.db.transaction(session) first")
    if written:
        session.info["wrote"] = True


async def _as_sqlalchemy_would(
    connection: AsyncConnection, error: BaseException, sql: str, values: tuple[Any, ...]
) -> BaseException:
    """The exception SQLAlchemy's engine would have raised for a driver error on this connection. A failed
    connection, and a statement cut short (cancelled: its connection is in an unknown state), invalidate it,
    so that the pool does not hand it out again (with every older connection when the server went away)."""
    if connection_failed(error) or not isinstance(error, Exception):
        await discard(connection, error)
        return error if not isinstance(error, Exception) else DatabaseUnavailable(type(error).__name__)
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(sql, values, error, hide_parameters=True)
    if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
        return sa_exc.DBAPIError(sql, values, error, hide_parameters=True)
    return error
