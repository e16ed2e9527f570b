"""Engine, sessions and the one-transaction-per-request dependency."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Annotated, Any, ClassVar, Protocol

from fastapi import Depends, Request
from sqlalchemy import any_, bindparam, event, func, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
    # No overflow: connections beyond the pool would be opened and closed again under every burst (a TCP
    # and authentication handshake each); requests beyond the pool wait for a connection instead.
    options: dict[str, Any] = {"hide_parameters": True}
    if settings.is_sqlite:
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(pool_size=settings.database_pool_size, max_overflow=0,
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


def create_sessionmaker(engine: AsyncEngine, *, autocommit: bool = False) -> async_sessionmaker[AsyncSession]:
    """`autocommit`: the engine runs every statement on its own (create_statement_engine on PostgreSQL); its
    sessions say so in `info`, for `transactional`."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, info={"autocommit": autocommit})


def create_statement_engine(settings: Settings, engine: AsyncEngine) -> AsyncEngine:
    """The engine of requests whose every statement stands alone (reads, and single-statement writes): on
    PostgreSQL a pool of its own in autocommit, so that a statement costs one round trip, not three (BEGIN,
    statement, COMMIT), and no connection has its isolation level switched and reset at every checkout.
    SQLite shares `engine`, in ordinary transactions."""
    return engine if settings.is_sqlite else create_engine(settings, isolation_level="AUTOCOMMIT")


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.statement_sessionmaker() as session:
        yield session


@contextlib.asynccontextmanager
async def _one_commit(session: AsyncSession) -> AsyncIterator[None]:
    try:
        yield
        await session.commit()
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            await session.commit()
        else:
            await session.rollback()
        raise


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session, _one_commit(session):
        yield session


async def get_atomic_session(request: Request) -> AsyncIterator[AsyncSession]:
    """For routes whose every write is one statement, atomic on its own (core.db.execute_guarded): on
    PostgreSQL in autocommit, which saves the BEGIN and COMMIT round trips; elsewhere one transaction.
    `transactional` turns it into an ordinary transaction where a route needs one after all."""
    async with request.app.state.statement_sessionmaker() as session, _one_commit(session):
        yield session


async def transactional(session: AsyncSession) -> None:
    """Make a session (not yet used) one transaction, committed with the request: an autocommit session
    becomes one; any other already is."""
    if session.info.get("autocommit"):
        await session.connection(execution_options={"isolation_level": "READ COMMITTED"})


# scope="function": the commit runs before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
AtomicSessionDep = Annotated[AsyncSession, Depends(get_atomic_session, scope="function")]
# For routes that read and never write (the decision and marketing-check hot paths; nothing to audit).
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def among(session: AsyncSession, column: Any, values: Iterable[Any]) -> Any:
    """`column IN (values)`, with the values bound now (see among_named)."""
    return among_named(session.get_bind().dialect.name, column, None, list(values))


def among_named(dialect: str, column: Any, name: str | None, values: list[Any] | None = None) -> Any:
    """`column IN (:name)`. On PostgreSQL as `= ANY(:name)`: one array parameter however many values, so the
    statement compiles once, where an expanding IN renders one parameter per value on every call. Named, a
    statement built once can use it more than once and send the values once."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, values, expanding=True))


async def execute_prebuilt(session: AsyncSession, statement: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows (as dicts) of a statement built once, at import, executed with `params` in the session's
    connection and transaction.

    It is compiled once per dialect and then sent as its SQL with positional values: that skips SQLAlchemy's
    work on every execution (ORM compile state, cache key walk, parameter construction, result set-up), which
    on the hot paths costs the application more than the statement costs the database. In an autocommit
    session on PostgreSQL it goes to asyncpg directly (there is no transaction for SQLAlchemy to begin), and
    its errors are raised as SQLAlchemy's, as if it had gone through SQLAlchemy. Values and results pass
    through their types' processors; parameters not given take the statement's own bound values, and a
    parameter without one must be given. Pending ORM changes are flushed first, as session.execute would."""
    if session.autoflush and (session.new or session.dirty or session.deleted):
        await session.flush()
    connection = await session.connection()
    prebuilt = _Prebuilt.of(statement, connection.dialect)
    values = prebuilt.values(params)
    if connection.dialect.name == "postgresql":
        adapted = (await connection.get_raw_connection()).dbapi_connection
        if adapted.autocommit:
            try:
                return prebuilt.rows(await adapted.driver_connection.fetch(prebuilt.sql, *values))
            except BaseException as error:
                translated = await _as_sqlalchemy_error(connection, adapted, error, prebuilt.sql, values)
                if translated is error:
                    raise
                raise translated from error
    result = await connection.exec_driver_sql(prebuilt.sql, values)
    return prebuilt.rows(result) if result.returns_rows else []


async def _as_sqlalchemy_error(connection: AsyncConnection, adapted: Any, error: BaseException, sql: str,
                               values: tuple[Any, ...]) -> BaseException:
    """What SQLAlchemy would have raised for a driver error: its DBAPI error class (IntegrityError and so on),
    with the connection invalidated if it was lost, so that the pool does not hand it out again. A statement
    cut short (cancelled, timed out) leaves the connection in an unknown state: it is invalidated too."""
    if not isinstance(error, Exception) or isinstance(error, (asyncio.CancelledError, TimeoutError)):
        await connection.invalidate()
        return error
    try:
        adapted._handle_exception(error)  # raises the driver error translated to the DBAPI's classes
    except Exception as translated:  # noqa: BLE001 - whatever the adapter raised, as SQLAlchemy raises it
        dialect = connection.dialect
        if not isinstance(translated, dialect.loaded_dbapi.Error):
            return translated
        lost = dialect.is_disconnect(translated, adapted, None)
        if lost:
            await connection.invalidate(translated)
        return sa_exc.DBAPIError.instance(sql, values, translated, dialect.loaded_dbapi.Error,
                                          hide_parameters=True, connection_invalidated=lost, dialect=dialect)
    return error


_REQUIRED = object()


class _Prebuilt:
    """A statement compiled for one dialect: its SQL, per positional parameter its key, its own bound value
    (or _REQUIRED) and its bind processor, and per result column its name and result processor."""

    _cache: ClassVar[dict[tuple[int, str], tuple[Any, _Prebuilt]]] = {}

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not compiled.positional:
            raise ValueError(f"{dialect.name}: prebuilt statements need a driver with positional parameters")
        if any(bind.expanding or bind.literal_execute or bind.callable for bind in compiled.binds.values()):
            raise ValueError("a prebuilt statement takes no expanding (IN), literal-execute or callable parameters")
        self.sql = compiled.string
        self.slots = tuple((bind.key, _REQUIRED if bind.required else bind.value,
                            bind.type.dialect_impl(dialect).bind_processor(dialect))
                           for bind in (compiled.binds[name] for name in compiled.positiontup or ()))
        columns = getattr(statement, "exported_columns", ())
        self.names = tuple(column.key for column in columns)
        self.processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)

    @classmethod
    def of(cls, statement: Any, dialect: Dialect) -> _Prebuilt:
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
        return [dict(zip(self.names, (process(value) if process else value
                                      for process, value in zip(processors, row, strict=True)), strict=True))
                for row in rows]


class InsertTemplate:
    """An INSERT of every column from bound parameters named `{prefix}_{column}`, built once per form and so
    compiled once: a statement built per call costs SQLAlchemy a cache key walk every time. `on_conflict`
    turns it into an upsert (it is given the INSERT and returns it with its ON CONFLICT clause)."""

    def __init__(self, table: Any, prefix: str, on_conflict: Callable[[Any], Any] | None = None) -> None:
        self.table, self.prefix, self.on_conflict = table, prefix, on_conflict

    def __call__(self, values: dict[str, Any]) -> Write:
        return self, {f"{self.prefix}_{name}": value for name, value in values.items()}

    @functools.cache  # noqa: B019 - templates live as long as the process
    def statement(self, dialect: str) -> Any:
        values = dict(zip(self.table.c.keys(), self._params(), strict=True))
        return self._finish(upsert_for(dialect, self.table).values(values))

    def after(self, guard: Any) -> Any:
        """The same INSERT taking its row from `guard` (a CTE): no row there, nothing inserted (PostgreSQL)."""
        row = select(*self._params()).select_from(guard)
        return self._finish(upsert_for("postgresql", self.table).from_select(self.table.c.keys(), row))

    def _params(self) -> list[Any]:
        return [bindparam(f"{self.prefix}_{c.name}", type_=c.type) for c in self.table.c]

    def _finish(self, statement: Any) -> Any:
        return self.on_conflict(statement) if self.on_conflict else statement


class Guard(Protocol):
    def statement(self, dialect: str) -> Any: ...


# A statement (by its template) and the values for this time.
Write = tuple[InsertTemplate, dict[str, Any]]


@functools.lru_cache(maxsize=64)
def _guarded(guard: Guard, templates: tuple[InsertTemplate, ...]) -> Any:
    matched = guard.statement("postgresql").cte("guard")
    statement = select(func.count().label("matched")).select_from(matched)
    for number, template in enumerate(templates):
        statement = statement.add_cte(template.after(matched).cte(f"write_{number}"))
    return statement


async def execute_guarded(session: AsyncSession, guard: tuple[Guard, dict[str, Any]], writes: Sequence[Write]) -> bool:
    """A compare-and-set: run `writes` only if `guard` (a write with RETURNING) matches a row. False: it did
    not, and nothing was written.

    On PostgreSQL one statement, atomic on its own (so it needs no BEGIN and COMMIT round trips in an
    autocommit session): the guard is a data-modifying CTE and every write selects its row from it, so that
    nothing is written unless the guard matched, and the guard's row lock is the first this statement takes.
    Elsewhere one statement after another, in the session's transaction."""
    dialect = session.get_bind().dialect.name
    guard_template, values = guard
    if dialect != "postgresql":
        if not await execute_prebuilt(session, guard_template.statement(dialect), values):
            return False
        for write in writes:
            await execute_write(session, write)
        return True
    values = dict(values)
    for _, part in writes:
        values |= part
    guarded = _guarded(guard_template, tuple(t for t, _ in writes))
    return bool((await execute_prebuilt(session, guarded, values))[0]["matched"])


async def execute_write(session: AsyncSession, write: Write) -> None:
    """One write on its own, in the session's transaction."""
    template, values = write
    await execute_prebuilt(session, template.statement(session.get_bind().dialect.name), values)


def upsert(session: AsyncSession, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for the session's database (PostgreSQL or SQLite)."""
    return upsert_for(session.get_bind().dialect.name, table)


def upsert_for(dialect: str, table: Any) -> Any:
    """upsert, for a statement built once per dialect."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def insert_or_ignore(session: AsyncSession, table: Any, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    result = await session.execute(upsert(session, table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
