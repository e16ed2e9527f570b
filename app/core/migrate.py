"""Alembic, driven from code: `privacy migrate`, `privacy serve`, the tests.

On PostgreSQL every upgrade and downgrade runs under a session-level advisory lock on a fixed key, so that
replicas starting together (each container migrates before it serves) take turns: the first migrates, the
others wait, then find the schema at head and do nothing. The lock is held by a connection of its own,
beside the one Alembic migrates on, and ends with that connection even if the process dies. SQLite needs
no lock: one file, one host, and its own write lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

import migrations
from app.core import sqlite_file
from app.core.config import Settings
from app.core.db import async_url
from app.core.sql.locks import advisory_lock, advisory_unlock, try_advisory_lock

MIGRATIONS_DIR = Path(migrations.__file__).parent
# pg_advisory_lock's key: fixed, so that every process of this service contends for the same lock.
MIGRATION_LOCK_KEY = 0x5753_5052_4956_4D47  # "WSPRIVMG"

log = logging.getLogger("app.migrate")


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if database_url:
        config.attributes["database_url"] = database_url
    return config


@contextmanager
def migration_lock(database_url: str | None = None) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock MIGRATION_LOCK_KEY for the block (waiting for it if another process
    holds it); nothing on SQLite. Call it outside any running event loop, as Alembic's env.py is."""
    url = database_url or Settings().database_url
    if not async_url(url).startswith("postgresql"):
        yield
        return
    loop = asyncio.new_event_loop()
    engine = create_async_engine(async_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    connection: AsyncConnection | None = None

    async def acquire() -> AsyncConnection:
        conn = await engine.connect()
        try:
            started = time.monotonic()
            if not await try_advisory_lock(conn, MIGRATION_LOCK_KEY):
                log.info("another process is migrating the database; waiting for it")
                await advisory_lock(conn, MIGRATION_LOCK_KEY)
        except BaseException:
            await conn.close()
            raise
        log.info(
            "migration lock acquired",
            extra={"lock": MIGRATION_LOCK_KEY, "waited_seconds": round(time.monotonic() - started, 1)},
        )
        return conn

    async def release() -> None:
        try:
            if connection is not None:
                # The lock ends with its connection anyway: a connection already lost is no error here.
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await advisory_unlock(connection, MIGRATION_LOCK_KEY)
                with contextlib.suppress(SQLAlchemyError, OSError):
                    await connection.close()
        finally:
            await engine.dispose()

    try:
        # This loop only holds the lock's connection: it sits idle (not running) while Alembic runs its own.
        connection = loop.run_until_complete(acquire())
        yield
    finally:
        try:
            loop.run_until_complete(release())
        finally:
            loop.close()


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    # A new SQLite file is made 0600 before Alembic's connection would create it world-readable.
    sqlite_file.create_private(database_url or Settings().database_url)
    with migration_lock(database_url):
        command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str | None = None, revision: str = "base") -> None:
    with migration_lock(database_url):
        command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
