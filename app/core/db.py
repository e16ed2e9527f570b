"""The database: the engine, one session per request, the one way to ask for a transaction, and what a
driver error means for the caller.

On PostgreSQL a session runs each statement on its own (autocommit) until `transaction()` is asked for:
a read costs one round trip instead of three (BEGIN, statement, COMMIT), and a write that is one statement
(core.sql.write_guarded) is atomic by itself. A request that writes more than once asks for a transaction
first; core.sql refuses a second write outside one. SQLite has no autocommit here: its sessions are
always one transaction (BEGIN IMMEDIATE), and `transaction()` only records that one was asked for, so that
both databases hold code to the same rule.
"""

from __future__ import annotations

import asyncio
import logging
import select
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.util import await_

from app.core import sqlite_file
from app.core.config import Settings

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database could not be reached, or stopped answering: the request may be tried again shortly."""


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
    # hide_parameters: personal data must never reach a log line through an exception message.
    # No pre-ping (a round trip on every checkout): a connection the server closed (a restart) is known
    # closed without one, and replaced on checkout (_closed_by_server); one found dead when it fails is
    # invalidated, that request answers 503, and the next one gets a fresh connection.
    # No overflow: connections beyond the pool would be opened and closed again under every burst (a TCP and
    # authentication handshake each); requests beyond the pool wait for a connection instead, for at most
    # database_pool_timeout_seconds.
    options: dict[str, Any] = {"hide_parameters": True}
    if settings.is_sqlite:
        options["connect_args"] = {"timeout": 30}
    else:
        options.update(
            pool_size=settings.database_pool_size,
            max_overflow=0,
            pool_timeout=settings.database_pool_timeout_seconds,
            isolation_level="AUTOCOMMIT",
            connect_args=_postgresql_timeouts(settings.database_statement_timeout_seconds),
        )
    options.update(overrides)
    engine = create_async_engine(async_url(settings.database_url), **options)
    if settings.is_sqlite:
        # Before every connection: a new file is made 0600, where SQLite would make it 0644.
        event.listen(engine.sync_engine, "do_connect", sqlite_file.creator(settings.database_url))
        _configure_sqlite(engine)
    else:
        event.listen(engine.sync_engine, "do_connect", _connect)
        event.listen(engine.sync_engine, "handle_error", _on_driver_error)
        event.listen(engine.sync_engine, "checkout", _closed_by_server)
    return engine


def _postgresql_timeouts(statement_timeout: float) -> dict[str, Any]:
    """asyncpg's connect arguments for a statement timeout (0: none). The server cancels a statement that
    runs longer (SQLSTATE 57014: 503); the client gives up a second later, for a server that no longer
    answers at all (frozen, or its host gone), and opening a connection gets as long as a statement."""
    if not statement_timeout:
        return {"timeout": 30, "command_timeout": None}
    return {
        "timeout": statement_timeout,
        "command_timeout": statement_timeout + 1,
        "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))},
    }


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pool's checkout hook: a pooled connection that the server has closed (a restart, a crash, an
    administrator's terminate) is known without a round trip. Either the driver has seen its socket end
    already, or the server's last words (its FATAL message, the end of the stream) wait unread on the socket:
    an idle connection has nothing to read otherwise. Checked out, it would cost the request a 503.
    InvalidatePoolError has SQLAlchemy's pool discard it and every connection opened before now (the server
    that made them is gone) and check out a fresh one in its place, so the request's statements go to the
    new connection and none was ever sent on the dead one."""
    driver = dbapi_connection.driver_connection
    if driver.is_closed() or _unread(driver):
        raise sa_exc.InvalidatePoolError("the server closed the connection")


def _unread(driver: asyncpg.Connection) -> bool:
    """Whether the server sent something the driver has not read yet (one poll(2), no round trip)."""
    transport = getattr(driver, "_transport", None)  # asyncpg has no public accessor for its socket
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


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

    writers = _SqliteWriters()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Nearly every request writes (the audit trail), so take the write lock up front: a deferred
        # transaction that upgrades to a writer fails with SQLITE_BUSY instead of waiting.
        writers.enter(connection.info)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.leave(connection.info)
            raise

    # Checked in: its transaction has ended (committed, or rolled back on return), whoever ended it. Or the
    # connection was invalidated, or detached from the pool (a session garbage-collected unclosed): its
    # transaction ends with it, and the next writer must not wait for a checkin that never comes.
    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        writers.leave(record.info)

    @event.listens_for(engine.sync_engine, "invalidate")
    def _on_invalidate(_dbapi_connection: Any, record: Any, _error: Any) -> None:
        writers.leave(record.info)

    @event.listens_for(engine.sync_engine, "detach")
    def _on_detach(_dbapi_connection: Any, record: Any) -> None:
        writers.leave(record.info)


class _SqliteWriters:
    """One transaction at a time per process on SQLite, waiting in line for an asyncio lock.

    SQLite allows one writer, and every transaction here is one (BEGIN IMMEDIATE). Left to SQLite, the
    others wait in its busy handler, which polls with sleeps growing to 100 ms: a transaction that ends is
    followed by whichever poller wakes first, newcomers overtake writers that have waited for seconds, and
    with 16 writers a few requests in a hundred waited 2 s and more. In line for a lock, each takes its turn
    as soon as the one before it ends (first come, first served). Processes still share the database file
    through the busy handler (several workers): SQLite is the single-machine default, PostgreSQL the
    database for more."""

    # How long a transaction waits for its turn, as SQLite's busy timeout: then 503.
    TIMEOUT = 30.0
    _HELD = "sqlite_writer"  # in the connection's info while it holds the turn

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def enter(self, info: dict[str, Any]) -> None:
        if info.get(self._HELD):
            return  # the same connection's next transaction, not yet checked in: its turn goes on
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        try:
            await_(asyncio.wait_for(lock.acquire(), self.TIMEOUT))
        except TimeoutError:
            raise DatabaseUnavailable("SQLITE_BUSY: no turn to write within the busy timeout") from None
        info[self._HELD] = lock

    def leave(self, info: dict[str, Any]) -> None:
        lock = info.pop(self._HELD, None)
        if lock is not None:
            lock.release()


class _Session(Session):
    """The service's sessions: what they keep in `info` about their connection (core.sql's direct path) is
    forgotten when their transaction ends and the connection goes back to the pool."""


@event.listens_for(_Session, "after_transaction_end")
def _connection_released(session: Session, _transaction: Any) -> None:
    session.info.pop(CONNECTION, None)


# session.info key: the session's checked-out connection, as core.sql uses it (see _Session).
CONNECTION = "connection"


def create_sessionmaker(engine: AsyncEngine, **info: Any) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; `info` rides on every session (the process's collaborators, app.runtime)."""
    return async_sessionmaker(
        engine,
        class_=AsyncSession,
        sync_session_class=_Session,
        expire_on_commit=False,
        autoflush=False,
        info=info,
    )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed once, before the response is sent, or rolled back on any error.
    Outside a transaction on PostgreSQL there is nothing to commit: each statement committed as it ran."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            if in_transaction(session) or (
                session.info.get("wrote") and session.bind.dialect.name != "postgresql"
            ):
                await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's transaction has committed (never if it rolls back)."""
    event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


async def transaction(session: AsyncSession) -> None:
    """Make the rest of this session's work one transaction (READ COMMITTED), committed with the request.

    Asked for, first thing, by whatever writes more than one statement (and again by whatever it calls that
    does: asked for twice, it is one). Reads already run stood on their own (in READ COMMITTED they saw what a
    statement inside the transaction would have seen); a write already run would stand apart from the
    transaction, so that is refused."""
    if in_transaction(session):
        return
    if session.info.get("wrote"):
        raise RuntimeError("a transaction asked for after a write: ask for it before the first write")
    session.info["transaction"] = True
    bind = session.bind
    assert bind is not None, "the service's sessions are made bound to its engine"
    if bind.dialect.name == "postgresql":
        if session.in_transaction():
            await session.commit()  # autocommit: nothing to commit; it hands the connection back
        await session.connection(execution_options={"isolation_level": "READ COMMITTED"})


def in_transaction(session: AsyncSession) -> bool:
    return bool(session.info.get("transaction"))


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session that is one transaction, committed at the end of the block (work outside requests: the
    retention sweep, the webhook worker, the command line)."""
    async with sessions() as session:
        await transaction(session)
        yield session
        await session.commit()


async def listen(
    database_url: str, channel: str, on_message: Callable[[str], None], on_connection: Callable[[bool], None]
) -> None:
    """Keep a connection of its own LISTENing on a PostgreSQL `channel`, calling `on_message` with each
    notification's payload, and `on_connection` when it comes up (True) or goes down (False). Reconnects after
    a loss, waiting longer each time (up to 30 s); runs until cancelled."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.5
    while True:
        connection = None
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
            lost = asyncio.Event()
            # Bound now: the old connection's listener must not set the next connection's event.
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            await connection.add_listener(
                channel, lambda _connection, _pid, _channel, payload: on_message(payload)
            )
            on_connection(True)
            delay = 0.5
            while not lost.is_set():
                try:
                    await asyncio.wait_for(lost.wait(), timeout=30)
                except TimeoutError:
                    await connection.fetchval("SELECT 1", timeout=5)  # a silent network loses nothing else
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever broke the connection, it is made again
            log.warning("listener on %s lost: %s", channel, type(error).__name__)
        finally:
            on_connection(False)
            if connection is not None and not connection.is_closed():
                connection.terminate()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30)


@asynccontextmanager
async def savepoint(session: AsyncSession, *, keep: bool) -> AsyncIterator[None]:
    """A savepoint in the session's transaction, released at the end of the block (`keep`) or rolled back:
    what a dry run does to count what a change would do."""
    nested = await session.begin_nested()
    try:
        yield
    except BaseException:
        await nested.rollback()
        raise
    await (nested.commit() if keep else nested.rollback())


# --- what a driver error means ---------------------------------------------------------------------------

# SQLite reports a missing database file or a held lock as OperationalError, as it does a bad statement:
# only these codes mean "unavailable, try again".
_SQLITE_UNAVAILABLE = {
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
}


def connection_failed(error: BaseException) -> bool:
    """Whether a driver error means the database is out of reach: the connection could not be made or was
    lost, the server is shutting down or starting up, or a statement timed out (a frozen server). Everything
    else (a constraint, a bad value, a bug) is not, whatever its class."""
    if isinstance(
        error,
        asyncpg.PostgresConnectionError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.CannotConnectNowError
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError,
    ):
        return True
    # The driver's protocol cannot go on: the server ended the connection while it sat idle (an
    # administrator's terminate, a restart), and its last words arrived just before the next statement.
    if isinstance(error, asyncpg.InternalClientError):
        return True
    if isinstance(error, asyncpg.InterfaceError):
        return "connection" in str(error) and ("closed" in str(error) or "lost" in str(error))
    # asyncpg raises these from the socket (refused, reset, unreachable) and for its timeouts.
    return isinstance(error, OSError | asyncio.TimeoutError)


def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    """The engine's connect hook: the driver raises socket errors and timeouts as they are, which SQLAlchemy
    passes on untranslated; they mean the server is out of reach."""
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        if connection_failed(error):
            raise DatabaseUnavailable(type(error).__name__) from error
        raise


def _on_driver_error(context: ExceptionContext) -> BaseException | None:
    """The engine's error hook: a connection failure becomes DatabaseUnavailable, its connection discarded."""
    original = context.original_exception
    cause = original.__cause__ if original.__cause__ is not None else original  # SQLAlchemy's adapter wraps
    if connection_failed(cause) or connection_failed(original):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = _server_gone(cause)
        return DatabaseUnavailable(type(cause).__name__)
    return None


def _server_gone(error: BaseException) -> bool:
    """Of a connection failure: whether it says the server went away (refused, lost, shut down), so that
    every connection to it is stale. A timeout or a confused driver leaves only this connection in doubt."""
    return not isinstance(error, asyncio.TimeoutError | asyncpg.InternalClientError)


async def discard(connection: AsyncConnection, error: BaseException) -> None:
    """Invalidate a connection whose driver failed outside SQLAlchemy's execution (core.sql's direct path),
    as the engine does for its own (_on_driver_error): when the server went away, with every connection
    the pool opened before now, so that the next requests do not each find one of them dead."""
    if connection_failed(error) and _server_gone(error):
        fairy = connection.sync_connection.connection if connection.sync_connection is not None else None
        if fairy is not None:
            # What SQLAlchemy's Connection does on a disconnect (Pool._invalidate: it has no public name);
            # each connection older than now is replaced on its next checkout.
            connection.sync_engine.pool._invalidate(fairy, error, _checkin=False)
    await connection.invalidate()


_SQLSTATE_KINDS = {
    "08": "unavailable",  # connection exception
    "53": "unavailable",  # insufficient resources: too many connections, out of memory or disk
    "57": "unavailable",  # operator intervention: starting up, shutting down, admin shutdown, cancelled
    "22": "invalid",  # data exception: a value the column cannot hold (a NUL byte in text, say)
    "23": "conflict",  # integrity constraint violation
}


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    """The SQLSTATE PostgreSQL answered with, if any (from SQLAlchemy's asyncpg adapter, or asyncpg)."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def problem_kind(error: BaseException) -> str | None:
    """How a database error answers a request: `unavailable` (503), `conflict` (409, a constraint: the
    services check what they expect, this is the net for concurrent writers), `invalid` (422, a value the
    column cannot hold), or None (a bug: 500)."""
    if isinstance(error, DatabaseUnavailable | sa_exc.TimeoutError):  # TimeoutError: the pool is exhausted
        return "unavailable"
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    if error.connection_invalidated or isinstance(error, sa_exc.InterfaceError):
        return "unavailable"
    # PostgreSQL says what went wrong by SQLSTATE class, whichever exception class the driver wraps it in
    # (asyncpg's CannotConnectNowError and TooManyConnectionsError arrive as a plain DBAPIError).
    state = _sqlstate(error)
    if state is not None and state[:2] in _SQLSTATE_KINDS:
        return _SQLSTATE_KINDS[state[:2]]
    if isinstance(error, sa_exc.OperationalError):
        code = getattr(error.orig, "sqlite_errorname", None)
        if code is None:  # PostgreSQL: an OperationalError is about the connection or the server
            return "unavailable"
        unavailable = any(
            code == c or code.startswith(c + "_") for c in _SQLITE_UNAVAILABLE
        )  # extended codes
        return "unavailable" if unavailable else None
    if isinstance(error, sa_exc.IntegrityError):
        return "conflict"
    if isinstance(error, sa_exc.DataError):
        return "invalid"
    return None
