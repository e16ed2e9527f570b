"""Helpers shared by the tests: tokens minted in the test, unique data, problem assertions."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email
import functools
import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.auth.principals import Scope
from app.core import migrate
from app.core.config import Settings
from app.core.security import mint_token


@functools.cache
def migrated_database_url() -> str:
    """The test database, migrated once per run: PostgreSQL from TEST_DATABASE_URL, else a fresh SQLite file.
    The schema comes from the migrations, never from create_all()."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        folder = tempfile.mkdtemp(prefix="privacy-test-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        url = f"sqlite:///{folder}/test.db"
    migrate.upgrade(url)
    return url


_KEY_FOLDER = tempfile.mkdtemp(prefix="privacy-test-keys-")
atexit.register(shutil.rmtree, _KEY_FOLDER, ignore_errors=True)


def app_settings(**overrides: Any) -> Settings:
    """Settings for an app under test: its receipt key in a temporary folder, not the working directory."""
    return Settings(**{"env": "test", "receipt_key_file": f"{_KEY_FOLDER}/receipt-key.pem",
                       "audit_checkpoint_dir": f"{_KEY_FOLDER}/audit-checkpoints", **overrides})


# Keys as docs/configuration.md has operators generate them: production refuses weak ones (core.keystrength).
PRODUCTION_KEYS = {
    "jwt_secret": "fb0f39485540637712d0dc5ad5a009926d4e3b80582303df7a22fcafb8878661",
    "hash_key": "8f0f48a3900c7fb3f0b66e08650e120ffb645f53da14591492314548e988d270",
    "encryption_keys": "k1:tcp+l86HU6Bxgf+3cREzXE/owavFlpxdLa9QLn+DcLg=",
    "audit_keys": "a1:D2TK5hUIq0uVT2uTordnBtm0t9kPWBk4XIN3BqOSBXQ=",
}

# The tests' JWT configuration is the default one (or whatever PRIVACY_JWT_* the environment sets).
TOKEN_SETTINGS = Settings(env="test")
ALL_SCOPES = tuple(s.value for s in Scope)


# Tokens minted at import (STAFF_ALL, ADMIN, ...) must outlive the whole run, which takes longer than the
# service's 15-minute default lifetime on a loaded machine.
TEST_TOKEN_TTL_SECONDS = 6 * 3600


def token(role: str, sub: str, *scopes: str, **kwargs: Any) -> str:
    kwargs.setdefault("ttl_seconds", TEST_TOKEN_TTL_SECONDS)
    return mint_token(TOKEN_SETTINGS, role=role, sub=sub, scopes=scopes, **kwargs)


def claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a staff token the tests' JWT configuration accepts (five minutes left), with `overrides`;
    an override of None leaves that claim out."""
    now = int(time.time())
    base = {
        "iss": TOKEN_SETTINGS.jwt_issuer,
        "aud": TOKEN_SETTINGS.jwt_audience,
        "sub": "tester",
        "role": "staff",
        "scope": "subjects:read",
        "iat": now,
        "exp": now + 300,
    }
    return {k: v for k, v in (base | overrides).items() if v is not None}


def auth(role: str, sub: str, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, sub, *scopes)}"}


def staff(*scopes: str) -> dict[str, str]:
    return auth("staff", "tester", *scopes)


STAFF_ALL = staff(*ALL_SCOPES)
ADMIN = staff("admin")


def as_subject(subject_id: str | uuid.UUID) -> dict[str, str]:
    return auth("subject", str(subject_id))


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}@example.se"


async def make_subject(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"email": unique_email(), "name": "Test Person", **fields}
    response = await client.post("/v1/subjects", json=body, headers=staff("subjects:write"))
    assert response.status_code == 201, response.text
    return response.json()


async def add_item(client: httpx.AsyncClient, subject_id: str, **fields: Any) -> dict[str, Any]:
    body = {"category": "phone", "value": "070-123 45 67", "source": "direct", "purpose": "service", **fields}
    response = await client.post(f"/v1/subjects/{subject_id}/data", json=body, headers=staff("subjects:write"))
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


async def make_processor(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Processor {uuid.uuid4().hex[:6]}", "dpa_reference": "DPA-1", "country": "SE",
            "contact_email": "privacy@processor.example", **fields}
    response = await client.post("/v1/processors", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def as_processor(processor_id: str | uuid.UUID) -> dict[str, str]:
    return auth("processor", str(processor_id))


REQUEST_MANAGER = staff("requests:manage", "requests:read")


async def complete_request(client: httpx.AsyncClient, subject_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    """File a rights request and take it through verify, start and complete; the completed request."""
    filed = await client.post("/v1/rights-requests", json={"type": type_, "subject_id": subject_id, **fields},
                              headers=REQUEST_MANAGER)
    assert filed.status_code == 201, filed.text
    for action in ("verify", "start", "complete"):
        response = await client.post(f"/v1/rights-requests/{filed.json()['id']}/actions", json={"action": action},
                                     headers=REQUEST_MANAGER)
        assert response.status_code == 200, response.text
    return response.json()


async def report_disclosure(client: httpx.AsyncClient, processor_id: str, subject_id: str, categories: list[str],
                            purpose: str) -> dict[str, Any]:
    """WeSafe records that it disclosed the subject's data to the processor (staff with `disclosures:write`).
    A processor's own reports are accepted only for subjects disclosed to it (docs/security.md)."""
    response = await client.post("/v1/disclosures", headers=staff("disclosures:write"),
                                 json={"subject_id": subject_id, "categories": categories, "purpose": purpose,
                                       "recipient_id": processor_id})
    assert response.status_code == 201, response.text
    return response.json()


async def restore_cookie_categories(client: httpx.AsyncClient) -> None:
    """The cookie categories as migration 0010 seeded them (the contract tests edit them at random)."""
    seeded = importlib.import_module("migrations.versions.20261128_0010_cookie_declaration_and_visitor_consents")
    for code, purpose, _required, sv, en in seeded.CATEGORIES:
        body = {"name": {"sv": sv[0], "en": en[0]}, "description": {"sv": sv[1], "en": en[1]}}
        restored = await client.patch(f"/v1/cookie-categories/{code}", headers=ADMIN,
                                      json=body | ({"purpose": purpose} if purpose else {}))
        assert restored.status_code == 200, restored.text


class Inbox:
    """A real SMTP server's mailbox (aiosmtpd calls handle_DATA): where the tests read the codes the service
    mails, as a person would."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.port = 0  # where smtp_inbox() listens for it

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[email.message.Message]:
        return [m for m in self.messages if (m["To"] or "").lower() == address.lower()]

    def code_for(self, address: str) -> str:
        message = self.to(address)[-1]
        return re.search(r"\b(\d{6})\b", message.get_payload(decode=True).decode()).group(1)

    async def wait_for_mail(self, address: str, *, after: int = 0, within: float = 10) -> str:
        """The body of the newest mail to `address`, once more than `after` mails have reached it."""
        deadline = time.monotonic() + within
        while len(self.to(address)) <= after:
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail reached {address}")
            await asyncio.sleep(0.05)
        return str(self.to(address)[-1].get_payload(decode=True).decode())

    async def wait_for_code(self, address: str, *, after: int = 0, within: float = 10) -> str:
        """The code in the newest mail with a code to `address` among those after the first `after`, once one
        has come (another mail, such as a request's answer sent after its commit, may arrive in between)."""
        deadline = time.monotonic() + within
        while True:
            for message in reversed(self.to(address)[after:]):
                found = re.search(r"\b(\d{6})\b", message.get_payload(decode=True).decode())
                if found:
                    return found.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail with a code reached {address}")
            await asyncio.sleep(0.05)


@contextlib.contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    """A real SMTP server on a free port of 127.0.0.1 (the inbox's `port`) until the block ends: the
    mailbox it delivers to."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LiveServer:
    """The service running in its own process (uvicorn), as clients outside the test reach it."""

    port: int
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def uvicorn_command(port: int) -> list[str]:
    """uvicorn serving the app on `port` of 127.0.0.1 (live_server's default command)."""
    return [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log"]


@contextlib.contextmanager
def live_server(
    folder: Path,
    port: int | None = None,
    *,
    command: Callable[[int], list[str]] = uvicorn_command,
    **settings: str,
) -> Iterator[LiveServer]:
    """The service in a subprocess (`command(port)`: uvicorn unless told), on the suite's migrated database
    (SQLite, or PostgreSQL with TEST_DATABASE_URL) and a free port of 127.0.0.1, until the block ends.
    `settings` are PRIVACY_* variables over the defaults below; the server's output is in folder/server.log,
    shown if it does not start."""
    import pytest

    port = port or free_port()
    env = {
        **os.environ,
        "PRIVACY_ENV": "development",
        "PRIVACY_DATABASE_URL": migrated_database_url(),
        "PRIVACY_RECEIPT_KEY_FILE": str(folder / "receipt-key.pem"),
        "PRIVACY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "PRIVACY_LOG_LEVEL": "WARNING",
        **settings,
    }
    log = folder / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command(port), env=env, stdout=output, stderr=subprocess.STDOUT)
    server = LiveServer(port=port, log=log, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start in 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
