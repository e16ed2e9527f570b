"""Each worker's copy of the catalog (purposes, notice versions and the cookie declaration): they change a few
times a year, and neither a consent write nor the banner's declaration may read them from the database.

A copy knows the catalog version it was read at. On PostgreSQL every change notifies every worker (LISTEN/
NOTIFY), and the copy is dropped at once; while the listener is not connected (starting, or the database
away) every use checks the version counter instead, as it always does on SQLite. A caller that has read the
counter itself (the consent write reads it with the subject) passes it, and an older copy is read again:
a change committed through any worker is seen by the next write, whatever became of its notification."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import repository
from app.catalog.models import Cookie, CookieCategory, Purpose
from app.core.db import listen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Catalog:
    """The catalog at one version: purposes by code, the notice versions (newest effective first), and the
    cookie categories (in the banner's order) with their cookies (by name)."""

    version: int
    purposes: Mapping[str, Purpose]
    notices: tuple[tuple[datetime, str], ...]
    cookie_categories: tuple[CookieCategory, ...] = ()
    cookies: tuple[Cookie, ...] = ()
    # version → {purpose: digest of the sections that name it, in both languages}
    purpose_texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def purpose(self, code: str) -> Purpose | None:
        return self.purposes.get(code)

    def notice_in_force(self, now: datetime) -> str | None:
        return next((version for effective_from, version in self.notices if effective_from <= now), None)

    def has_notice(self, version: str) -> bool:
        return any(version == known for _, known in self.notices)

    def renewal_due(self, purpose: str, given_under: str, now: datetime) -> bool:
        """A consent given under `given_under` is due for renewal when the notice in force says something
        else about its purpose: the sections naming the purpose differ (added, removed or reworded, in
        either language). Nothing is withdrawn by it."""
        in_force = self.notice_in_force(now)
        if in_force is None or in_force == given_under or given_under not in self.purpose_texts:
            return False
        return self.purpose_texts[given_under].get(purpose) != self.purpose_texts[in_force].get(purpose)

    def renewable(self, purpose: str, now: datetime) -> bool:
        """Whether any other notice version says something else about the purpose than the one in force: if
        not, no consent to it can be due for renewal (and nobody need look)."""
        in_force = self.notice_in_force(now)
        if in_force is None:
            return False
        said = self.purpose_texts.get(in_force, {}).get(purpose)
        return any(
            texts.get(purpose) != said for version, texts in self.purpose_texts.items() if version != in_force
        )


class CatalogCache:
    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self.listening = False

    async def current(self, session: AsyncSession, *, version: int | None = None) -> Catalog:
        """The catalog, as fresh as `version` (the counter as the caller read it), or as the notifications
        (or, without them, the counter) say."""
        catalog = self._catalog
        if catalog is not None:
            if version is None and not self.listening:
                version = await repository.version(session)
            if version is None or version == catalog.version:
                return catalog
        catalog = self._catalog = await _load(session)
        return catalog

    async def held(self, session: AsyncSession) -> Catalog:
        """The copy held, without asking the counter whether it is current (loaded if there is none): for a
        hot path that reads no more than its own query (decisions). Fresh on PostgreSQL (notifications), and
        after any change made through this worker; on SQLite another worker's change is seen once this worker
        next checks the counter (any other use of the catalog)."""
        return self._catalog or await self.current(session)

    def invalidate(self) -> None:
        self._catalog = None

    @property
    def cached_version(self) -> int | None:
        """The version of the copy held, if any."""
        return None if self._catalog is None else self._catalog.version

    def listen(self, database_url: str) -> asyncio.Task[None]:
        """Drop the copy on every change notified (PostgreSQL); runs until cancelled."""

        def connected(up: bool) -> None:
            self.listening = up
            self.invalidate()  # notifications may have been missed while not listening

        return asyncio.create_task(
            listen(database_url, repository.CHANGED, lambda _payload: self.invalidate(), connected)
        )


async def _load(session: AsyncSession) -> Catalog:
    version, purposes, notices, categories, cookies = await repository.snapshot(session)
    return Catalog(
        version=version,
        purposes={row["code"]: _construct(Purpose, row) for row in purposes},
        notices=tuple((row["effective_from"], row["version"]) for row in notices),
        purpose_texts={row["version"]: purpose_texts(row["sections"]) for row in notices},
        cookie_categories=tuple(_construct(CookieCategory, row) for row in categories),
        cookies=tuple(_construct(Cookie, row) for row in cookies),
    )


def purpose_texts(sections: Mapping[str, Any]) -> dict[str, str]:
    """Each purpose named by a section of one notice version, with a digest of what the notice says about
    it: the sections naming it (id, title, body), in every language."""
    said: dict[str, list[Any]] = {}
    for language in sorted(sections):
        for section in sections[language]:
            for purpose in section.get("purposes", ()):
                said.setdefault(purpose, []).append(
                    [language, section["id"], section["title"], section["body"]]
                )
    return {
        purpose: hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
        for purpose, texts in said.items()
    }


_Row = TypeVar("_Row", Purpose, CookieCategory, Cookie)


def _construct(model: type[_Row], row: Mapping[str, Any]) -> _Row:
    """A row as its model, without validation (it was valid when written)."""
    return model.model_construct(**{c: row[c] for c in model.model_fields})
