"""Migrations: reversible, and the schema they build is exactly the models' schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import migrate
from app.core.db import async_url
from app.models import metadata


@pytest.fixture
def scratch_url(database_url: str, tmp_path) -> Iterator[str]:
    """An empty database of the same kind as the test database."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/scratch.db"
        return
    server = make_url(database_url)
    name = f"privacy_scratch_{uuid.uuid4().hex[:8]}"
    admin = server.set(drivername="postgresql+asyncpg", database="postgres")

    async def run(sql: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as connection:
            await connection.execute(text(sql))
        await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _inspect(url: str, fn):
    async def go():
        engine = create_async_engine(async_url(url))
        async with engine.connect() as connection:
            result = await connection.run_sync(fn)
        await engine.dispose()
        return result

    return asyncio.run(go())


def _tables(url: str) -> set[str]:
    return _inspect(url, lambda sync: set(inspect(sync).get_table_names()))


def _schema_diff(url: str) -> list:
    return _inspect(url, lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                                       metadata))


def test_upgrade_downgrade_upgrade_and_no_drift(scratch_url: str):
    migrate.upgrade(scratch_url)
    assert set(metadata.tables) <= _tables(scratch_url)
    assert _schema_diff(scratch_url) == []

    migrate.downgrade(scratch_url, "base")
    assert _tables(scratch_url) <= {"alembic_version"}

    migrate.upgrade(scratch_url)
    assert _schema_diff(scratch_url) == []
    purposes = _inspect(scratch_url, lambda sync: sync.execute(text("SELECT count(*) FROM purpose")).scalar_one())
    # the six of 0002, preferences and consent_records (0010), and the policy's five sources (0016)
    assert purposes == 13


def test_every_migration_steps_down_and_up_again(scratch_url: str):
    migrate.upgrade(scratch_url)
    head = migrate.head_revision()
    migrate.downgrade(scratch_url, "-1")
    migrate.upgrade(scratch_url)
    assert _inspect(scratch_url, lambda s: s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()) == head


def test_migration_files_are_named_by_date_and_slug():
    import re

    names = [p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py") if p.name != "__init__.py"]
    assert names and all(re.fullmatch(r"\d{8}_\d{4}_[a-z0-9_]+\.py", n) for n in names), names

