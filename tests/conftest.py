"""A migrated database (SQLite by default, PostgreSQL with TEST_DATABASE_URL) and the real app over it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.mail import Mail
from app.main import create_app
from tests.support import app_settings, migrated_database_url

# The whole run, measured on the 2-core development machine (docs/testing.md says why it is one process).
EXPECTED_DURATION = "about 11 minutes on SQLite and 13 on PostgreSQL"


def pytest_report_header() -> str:
    where = "PostgreSQL (TEST_DATABASE_URL)" if os.environ.get("TEST_DATABASE_URL") else "SQLite"
    return f"the whole suite takes {EXPECTED_DURATION}; this run: {where}"


@pytest.fixture(scope="session")
def database_url() -> str:
    return migrated_database_url()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return app_settings(database_url=database_url, log_level="WARNING")


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def db(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    """Sessions on the app's database, for looking behind the API (what is stored, and how).
    Keep each one short (`async with db() as session:`): on SQLite an open transaction holds the write lock."""
    return app.state.sessionmaker


@pytest.fixture
def mails(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[Mail]:
    """What the app would have mailed during the test (the mail backend is stood in for)."""
    sent: list[Mail] = []

    async def record(mail: Mail) -> None:
        sent.append(mail)

    monkeypatch.setattr(app.state.runtime.mailer, "send", record)
    return sent
