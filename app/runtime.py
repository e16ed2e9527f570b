"""What lives as long as the process, built once at startup: the settings, the keys (field encryption,
contact hashes, receipt and link signing), the mailer, the token verifier, the catalog cache and the
rate limit on visitors' cookie choices.

Every session carries it (core.db.create_sessionmaker's `info`), so a service reaches it from the session
it already has (`runtime.of(session)`), and a route from the app (`RuntimeDep`): nothing is threaded
through call chains, and each app (tests make several) has its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import configure_mappers

import app.models  # noqa: F401 - every table mapped before configure_mappers()
from app.auth.principals import Principal, principal_from_claims
from app.auth.revocation import RevokedClients
from app.catalog.cache import CatalogCache
from app.core.config import Settings
from app.core.crypto import Keys
from app.core.db import create_sessionmaker
from app.core.mail import Mailer
from app.core.ratelimit import AddressLimit, Ceiling
from app.core.security import TokenVerifier


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    keys: Keys
    mailer: Mailer
    tokens: TokenVerifier[Principal]
    catalog: CatalogCache
    visitor_limit: AddressLimit
    login_codes: Ceiling  # codes issued per minute, across all addresses (auth.service)
    unsubscribe_limit: AddressLimit
    revoked_clients: RevokedClients

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        # Services build read models from rows they wrote or cached (model_construct), with no ORM query
        # before them to configure the mappers: configure them now.
        configure_mappers()
        return cls(
            settings=settings,
            keys=Keys(settings),
            mailer=Mailer(settings),
            tokens=TokenVerifier(settings, principal_from_claims),
            catalog=CatalogCache(),
            visitor_limit=AddressLimit(settings.visitor_consent_rate_limit),
            login_codes=Ceiling(settings.login_codes_per_minute, 60),
            unsubscribe_limit=AddressLimit(settings.unsubscribe_rate_limit),
            revoked_clients=RevokedClients(shared_database=not settings.is_sqlite),
        )

    def sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        """Sessions on `engine` that carry this runtime."""
        return create_sessionmaker(engine, runtime=self)


def of(session: AsyncSession) -> Runtime:
    runtime: Runtime = session.info["runtime"]
    return runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
