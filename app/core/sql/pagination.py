"""Lists: keyset pagination over a statement (rows after an opaque cursor, newest first), and the optional
equality filters that lists take."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from app.core.errors import Unprocessable
from app.core.time import as_utc


def where_given(statement: Select[Any], *filters: tuple[Any, Any]) -> Select[Any]:
    """`statement` narrowed by each (column, value) filter whose value is given (not None) to rows where the
    column equals it: a list's optional filters."""
    for column, value in filters:
        if value is not None:
            statement = statement.where(column == value)
    return statement


def _encode(at: datetime, key: Any) -> str:
    raw = json.dumps([as_utc(at).isoformat(), str(key)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        at, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return as_utc(datetime.fromisoformat(at)), str(key)
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise Unprocessable("The cursor is not one this API issued", loc=["query", "cursor"]) from exc


async def paginate(
    session: AsyncSession,
    statement: Select[Any],
    *,
    order: tuple[Any, Any],
    limit: int,
    cursor: str | None,
    oldest_first: bool = False,
) -> tuple[Sequence[Any], str | None]:
    """Rows after `cursor`, newest first (or `oldest_first`) by `order` = (timestamp column, unique key
    column), and the cursor of the next page (None on the last). The key is read back from the cursor as its
    column's type."""
    at_col, key_col = order
    if cursor:
        at, key = _decode(cursor)
        try:
            typed_key = key_col.type.python_type(key)
        except ValueError as exc:
            raise Unprocessable("The cursor is not one this API issued", loc=["query", "cursor"]) from exc
        if oldest_first:
            statement = statement.where(or_(at_col > at, and_(at_col == at, key_col > typed_key)))
        else:
            statement = statement.where(or_(at_col < at, and_(at_col == at, key_col < typed_key)))
    ordering = (at_col, key_col) if oldest_first else (at_col.desc(), key_col.desc())
    rows = (await session.execute(statement.order_by(*ordering).limit(limit + 1))).scalars().all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], _encode(getattr(last, at_col.key), getattr(last, key_col.key))
