"""What differs between PostgreSQL and SQLite in the statements the service builds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core table (SQLModel sets `__table__` on table classes but does not declare it)."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel's metaclass, undeclared
    return table


def dialect_of(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "the service's sessions are made bound to its engine"
    return bind.dialect.name


def upsert_for(dialect: str, table: Any) -> Any:
    """An INSERT that takes ON CONFLICT clauses, for `dialect` (PostgreSQL or SQLite)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def among(dialect: str, column: Any, name: str | None = None, values: list[Any] | None = None) -> Any:
    """`column IN (:name)`. On PostgreSQL as `= ANY(:name)`: one array parameter however many values, so the
    statement compiles once, where an expanding IN renders one parameter per value on every call. Named, a
    statement built once can use it more than once and send the values once; with `values`, bound now."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, values, expanding=True))
