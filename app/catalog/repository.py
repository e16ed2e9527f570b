"""The catalog's SQL: purposes, notice versions, the cookie declaration, and the version counter every change
moves on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.catalog.models import CatalogVersion, Cookie, CookieCategory, PolicyVersion, Purpose
from app.core import sql
from app.core.sql import Insert

_PURPOSES, _POLICIES, _VERSION, _CATEGORIES, _COOKIES = (
    sql.table_of(Purpose),
    sql.table_of(PolicyVersion),
    sql.table_of(CatalogVersion),
    sql.table_of(CookieCategory),
    sql.table_of(Cookie),
)
CHANGED = "catalog_changed"  # the PostgreSQL notification channel of catalog changes

_INSERT_PURPOSE = Insert(_PURPOSES, "purpose")
_INSERT_POLICY = Insert(_POLICIES, "policy")
_INSERT_COOKIE = Insert(_COOKIES, "cookie")
_ALL_CATEGORIES = select(_CATEGORIES).order_by(_CATEGORIES.c.position)
_ALL_COOKIES = select(_COOKIES).order_by(_COOKIES.c.category, _COOKIES.c.name, _COOKIES.c.provider)
_CURRENT_VERSION = select(_VERSION.c.version).where(_VERSION.c.id == 1)
_BUMP = (
    update(_VERSION)
    .where(_VERSION.c.id == 1)
    .values(version=_VERSION.c.version + 1)
    .returning(_VERSION.c.version)
)
_NOTIFY = select(func.pg_notify(CHANGED, bindparam("version")).label("sent"))
_ALL_PURPOSES = select(_PURPOSES)
_ALL_POLICIES = select(_POLICIES.c.version, _POLICIES.c.effective_from, _POLICIES.c.sections).order_by(
    _POLICIES.c.effective_from.desc()
)


async def list_purposes(session: AsyncSession) -> Sequence[Purpose]:
    return (
        (
            await session.execute(
                select(Purpose).order_by(col(Purpose.code)).execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )


async def get_purpose(session: AsyncSession, code: str) -> Purpose | None:
    return await session.get(Purpose, code, populate_existing=True)


async def codes_with_basis(session: AsyncSession, basis: str) -> set[str]:
    return set(
        (await session.execute(select(col(Purpose.code)).where(col(Purpose.legal_basis) == basis))).scalars()
    )


async def insert_purpose(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_PURPOSE(values))


async def update_purpose(session: AsyncSession, code: str, changes: dict[str, Any]) -> None:
    await sql.execute(session, update(_PURPOSES).where(_PURPOSES.c.code == code).values(**changes))


async def list_policies(session: AsyncSession) -> Sequence[PolicyVersion]:
    statement = select(PolicyVersion).order_by(col(PolicyVersion.effective_from).desc())
    return (await session.execute(statement)).scalars().all()


async def policy_in_force(session: AsyncSession, now: datetime) -> PolicyVersion | None:
    statement = (
        select(PolicyVersion)
        .where(col(PolicyVersion.effective_from) <= now)
        .order_by(col(PolicyVersion.effective_from).desc())
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_policy(session: AsyncSession, version: str) -> PolicyVersion | None:
    return await session.get(PolicyVersion, version)


async def insert_policy(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_POLICY(values))


async def changed(session: AsyncSession) -> None:
    """Move the catalog's version on, in the change's transaction. On PostgreSQL every worker is also told,
    when the transaction commits (NOTIFY)."""
    version = (await sql.run(session, _BUMP))[0]["version"]
    if sql.dialect_of(session) == "postgresql":
        await sql.run(session, _NOTIFY, {"version": str(version)})


async def version(session: AsyncSession) -> int:
    current: int = (await sql.run(session, _CURRENT_VERSION))[0]["version"]
    return current


Rows = list[dict[str, Any]]


async def snapshot(session: AsyncSession) -> tuple[int, Rows, Rows, Rows, Rows]:
    """The catalog as a worker caches it: its version, every purpose, every notice version (newest first),
    the cookie categories and the cookies. The version is read first, so that a change committed meanwhile
    makes the copy look older than it is (and be read again), never newer."""
    current = await version(session)
    return (
        current,
        await sql.run(session, _ALL_PURPOSES),
        await sql.run(session, _ALL_POLICIES),
        await sql.run(session, _ALL_CATEGORIES),
        await sql.run(session, _ALL_COOKIES),
    )


# --- the cookie declaration ---------------------------------------------------------------------------------


async def get_cookie(session: AsyncSession, cookie_id: uuid.UUID) -> Cookie | None:
    return await session.get(Cookie, cookie_id, populate_existing=True)


async def cookie_named(session: AsyncSession, name: str, provider: str) -> Cookie | None:
    statement = select(Cookie).where(col(Cookie.name) == name, col(Cookie.provider) == provider)
    return (await session.execute(statement)).scalar_one_or_none()


async def insert_cookie(session: AsyncSession, values: dict[str, Any]) -> None:
    await sql.write(session, _INSERT_COOKIE(values))


async def update_cookie(session: AsyncSession, cookie_id: uuid.UUID, changes: dict[str, Any]) -> None:
    await sql.execute(session, update(_COOKIES).where(_COOKIES.c.id == cookie_id).values(**changes))


async def delete_cookie(session: AsyncSession, cookie_id: uuid.UUID) -> int:
    return await sql.modify(session, delete(_COOKIES).where(_COOKIES.c.id == cookie_id))


async def get_cookie_category(session: AsyncSession, code: str) -> CookieCategory | None:
    return await session.get(CookieCategory, code, populate_existing=True)


async def update_cookie_category(session: AsyncSession, code: str, changes: dict[str, Any]) -> None:
    await sql.execute(session, update(_CATEGORIES).where(_CATEGORIES.c.code == code).values(**changes))
