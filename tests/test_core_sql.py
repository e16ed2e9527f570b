"""core.sql: statements compiled once and sent past SQLAlchemy's per-execution work (on PostgreSQL outside a
transaction straight to asyncpg) must still behave as SQLAlchemy would: values and results through their
types, errors as SQLAlchemy's, a lost connection invalidated. And outside a transaction a session writes
once: a second write, or a transaction asked for after a write, is refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy import Float, Integer, bindparam, func, literal, select, text
from sqlalchemy import exc as sa_exc

from app.audit.models import AuditChainHead
from app.catalog.models import Purpose
from app.core.db import DatabaseUnavailable, connection_failed, transaction, unit_of_work
from app.core.sql import Insert, among, run, write
from app.core.types import UTCDateTime

_PURPOSES = Purpose.__table__
_HEADS = AuditChainHead.__table__
# Built once, as the hot paths build theirs: a typed parameter, a JSON result and a bound literal.
_PURPOSE_AT = select(_PURPOSES.c.code, _PURPOSES.c.name, bindparam("at", type_=UTCDateTime()).label("at"),
                     literal(7).label("seven")).where(_PURPOSES.c.code == bindparam("code"))
_NEW_HEAD = Insert(_HEADS, "head")
# One name twice, another between: PostgreSQL's $n is reused, SQLite's ? is repeated.
_TWICE = select(bindparam("a", type_=Integer).label("first"), bindparam("b", type_=Integer).label("second"),
                bindparam("a", type_=Integer).label("again"))
_SLEEP = select(func.pg_sleep(bindparam("seconds", type_=Float)).label("slept"))


async def test_values_and_results_pass_through_their_types(app: FastAPI):
    at = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    async with app.state.sessionmaker() as session:
        rows = await run(session, _PURPOSE_AT, {"code": "newsletter", "at": at})
        none = await run(session, _PURPOSE_AT, {"code": "no_such_purpose", "at": at})
    assert none == []
    [row] = rows
    assert row["code"] == "newsletter"
    assert isinstance(row["name"], dict) and row["name"]["en"]  # JSON decoded, on SQLite too
    assert row["at"] == at and row["at"].tzinfo is not None  # a UTC datetime back, on SQLite too
    assert row["seven"] == 7  # the statement's own bound value


async def test_a_name_used_twice_gets_its_value_in_both_places(app: FastAPI):
    async with app.state.sessionmaker() as session:
        assert await run(session, _TWICE, {"a": 1, "b": 2}) == [{"first": 1, "second": 2, "again": 1}]


async def test_a_parameter_left_out_is_an_error_not_a_null(app: FastAPI):
    async with app.state.sessionmaker() as session:
        with pytest.raises(KeyError, match="'b'"):
            await run(session, _TWICE, {"a": 1})


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(app: FastAPI):
    chain = str(uuid.uuid4())
    insert = _NEW_HEAD({"chain": chain, "seq": 1, "hash": "0" * 64})
    async with app.state.sessionmaker() as session:
        await transaction(session)
        await write(session, insert)
        # The app's handler turns this class into a 409; a raw driver error would be a 500.
        with pytest.raises(sa_exc.IntegrityError):
            await write(session, insert)
        await session.rollback()
    async with app.state.sessionmaker() as session:
        await session.execute(_HEADS.delete().where(_HEADS.c.chain == chain))
        await session.commit()


@pytest.fixture
def direct_driver(settings) -> None:
    """The direct asyncpg path exists on PostgreSQL only (its autocommit sessions)."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL: its autocommit sessions go to the driver directly")


@pytest.mark.usefixtures("direct_driver")
async def test_a_lost_connection_is_invalidated_and_reported_as_such(app: FastAPI):
    # The driver says so three ways, depending on how much of the server's goodbye it has read by the next
    # statement: the connection was closed mid-operation, it is closed, or the driver's protocol is in no
    # state to go on. Which one comes is a race; these pauses give each of them its chance, several times.
    for idle in [0, 0.0005, 0.001, 0.2] * 4:
        async with app.state.sessionmaker() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
            async with app.state.sessionmaker() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await other.commit()
            await asyncio.sleep(idle)
            connection = await session.connection()
            # The app answers 503 to this, and the pool does not hand the connection out again.
            with pytest.raises(DatabaseUnavailable):
                await run(session, _PURPOSE_AT, {"code": "newsletter", "at": datetime.now(UTC)})
            assert connection.invalidated
        async with app.state.sessionmaker() as session:
            assert await run(session, _PURPOSE_AT, {"code": "newsletter", "at": datetime.now(UTC)})


@pytest.mark.usefixtures("direct_driver")
async def test_a_connection_lost_inside_a_transaction_is_reported_as_such(app: FastAPI):
    # The same three ways, through SQLAlchemy's execution (a transaction) and the engine's error hook.
    for idle in [0, 0.0005, 0.001, 0.2] * 4:
        async with app.state.sessionmaker() as session:
            await transaction(session)
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
            async with app.state.sessionmaker() as other:
                await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await other.commit()
            await asyncio.sleep(idle)
            connection = await session.connection()
            with pytest.raises(DatabaseUnavailable):
                await run(session, _PURPOSE_AT, {"code": "newsletter", "at": datetime.now(UTC)})
            assert connection.invalidated


def test_a_driver_in_no_state_to_go_on_counts_as_a_lost_connection():
    # The third way above; which of the three a test sees is a race, so this one is pinned here.
    error = asyncpg.InternalClientError("cannot switch to state 11; another operation (2) is in progress")
    assert connection_failed(error)


@pytest.mark.usefixtures("direct_driver")
async def test_a_statement_cut_short_leaves_its_connection_invalidated(app: FastAPI):
    async with app.state.sessionmaker() as session:
        connection = await session.connection()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run(session, _SLEEP, {"seconds": 5}), timeout=0.2)
        # Mid-statement, the connection's state is unknown: it must not go back to the pool as it is.
        assert connection.invalidated


async def test_a_statement_whose_sql_depends_on_its_values_is_refused(app: FastAPI):
    async with app.state.sessionmaker() as session:
        dialect = session.get_bind().dialect.name
        statement = select(_PURPOSES.c.code).where(among(dialect, _PURPOSES.c.code, "codes"))
        if dialect == "postgresql":  # one array parameter there: fine
            assert await run(session, statement, {"codes": ["newsletter"]})
        else:
            with pytest.raises(ValueError, match="expanding"):
                await run(session, statement, {"codes": ["newsletter"]})


def _head(chain: str) -> object:
    return _NEW_HEAD({"chain": chain, "seq": 1, "hash": "0" * 64})


async def test_a_second_write_outside_a_transaction_is_refused(app: FastAPI):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with app.state.sessionmaker() as session:
        await write(session, _head(first))
        with pytest.raises(RuntimeError, match="second write outside a transaction"):
            await write(session, _head(second))
        with pytest.raises(RuntimeError, match="after a write"):
            await transaction(session)
        await session.commit()
    async with app.state.sessionmaker() as session:
        chains = set((await session.execute(select(_HEADS.c.chain).where(_HEADS.c.chain.in_([first, second]))))
                     .scalars())
        await session.execute(_HEADS.delete().where(_HEADS.c.chain == first))
        await session.commit()
    assert chains == {first}  # the refused write was never sent


async def test_writes_in_a_transaction_stand_or_fall_together(app: FastAPI):
    chain = str(uuid.uuid4())
    with pytest.raises(sa_exc.IntegrityError):
        async with unit_of_work(app.state.sessionmaker) as session:
            await write(session, _head(chain))
            await write(session, _head(chain))  # the same key again: the transaction fails as a whole
    async with app.state.sessionmaker() as session:
        left = (await session.execute(select(_HEADS.c.chain).where(_HEADS.c.chain == chain))).all()
    assert left == []
