"""Writes as values: an INSERT built once per table and form, the row to insert, and the ways to run them.

Every write of the service goes through here (and core.sql.execute for the few built per call), so that
there is one way to write: a repository builds the statement, core.sql runs it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.sql.dialects import dialect_of, upsert_for
from app.core.sql.prebuilt import count_write, fetch, run


class Insert:
    """An INSERT of every column of `table` from bound parameters named `{prefix}_{column}`, built once per
    form and so compiled once. `on_conflict` turns it into an upsert (it is given the INSERT and returns it
    with its ON CONFLICT clause). Called with a row's values, it is a Write of that row."""

    def __init__(self, table: Any, prefix: str, on_conflict: Callable[[Any], Any] | None = None) -> None:
        self.table, self.prefix, self.on_conflict = table, prefix, on_conflict

    def __call__(self, values: dict[str, Any]) -> Write:
        return Write(self, {f"{self.prefix}_{name}": value for name, value in values.items()})

    @functools.cache  # noqa: B019 - templates live as long as the process
    def statement(self, dialect: str) -> Any:
        values = dict(zip(self.table.c.keys(), self._params(), strict=True))
        return self._finish(upsert_for(dialect, self.table).values(values))

    def after(self, guard: Any) -> Any:
        """The same INSERT taking its row from `guard`, a CTE: no row there, nothing inserted (PostgreSQL)."""
        row = select(*self._params()).select_from(guard)
        return self._finish(upsert_for("postgresql", self.table).from_select(self.table.c.keys(), row))

    def _params(self) -> list[Any]:
        return [bindparam(f"{self.prefix}_{c.name}", type_=c.type) for c in self.table.c]

    def _finish(self, statement: Any) -> Any:
        return self.on_conflict(statement) if self.on_conflict else statement


class Statement(Hashable, Protocol):
    """Anything that gives its statement per dialect: an Insert, or a guard (audit's chain head advance).
    Hashable: a guarded write's statement is cached by its guard and templates."""

    def statement(self, dialect: str) -> Any: ...


class Write:
    """A statement (by its template) and the values for this time."""

    __slots__ = ("template", "values")

    def __init__(self, template: Statement, values: dict[str, Any]) -> None:
        self.template, self.values = template, values


async def write(session: AsyncSession, *writes: Write) -> list[dict[str, Any]]:
    """The writes, one statement after another, in the session's transaction; the rows the last one
    returned (its RETURNING clause), if any."""
    dialect = dialect_of(session)
    rows: list[dict[str, Any]] = []
    for one in writes:
        rows = await run(session, one.template.statement(dialect), one.values)
    return rows


@functools.lru_cache(maxsize=64)
def _guarded(guard: Statement, templates: tuple[Insert, ...]) -> Any:
    matched = guard.statement("postgresql").cte("guard")
    statement = select(func.count().label("matched")).select_from(matched)
    for number, template in enumerate(templates):
        statement = statement.add_cte(template.after(matched).cte(f"write_{number}"))
    return statement


async def write_guarded(session: AsyncSession, guard: Write, writes: Sequence[Write]) -> bool:
    """A compare-and-set: run `writes` (inserts) only if `guard` (a write with RETURNING) matches a row.
    False: it did not, and nothing was written.

    On PostgreSQL one statement, atomic on its own (so it needs no BEGIN and COMMIT round trips outside a
    transaction): the guard is a data-modifying CTE and every insert selects its row from it, so that nothing
    is written unless the guard matched, and the guard's row lock is the first this statement takes.
    Elsewhere one statement after another, in the session's transaction."""
    dialect = dialect_of(session)
    count_write(session, written=False)
    if dialect != "postgresql":
        if not await fetch(session, guard.template.statement(dialect), guard.values, counted=False):
            return False
        for one in writes:
            await fetch(session, one.template.statement(dialect), one.values, counted=False)
        count_write(session)
        return True
    values = dict(guard.values)
    templates = []
    for one in writes:
        assert isinstance(one.template, Insert), "a guarded write is made of inserts"
        templates.append(one.template)
        values |= one.values
    matched = bool(
        (await fetch(session, _guarded(guard.template, tuple(templates)), values, counted=False))[0][
            "matched"
        ]
    )
    if matched:
        count_write(session)
    return matched
