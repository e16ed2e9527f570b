"""Health, readiness, metrics, configuration, and staying up when the database is not."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import make_url

from app.core import migrate
from app.core.config import ConfigError, Settings
from app.core.db import async_url
from app.main import create_app
from tests.support import PRODUCTION_KEYS, STAFF_ALL, app_settings, assert_problem


@contextlib.asynccontextmanager
async def serve(settings: Settings):
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http:
            yield http


async def test_healthz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_when_migrated(client):
    body = (await client.get("/readyz")).json()
    assert body["status"] == "ready" and body["schema_revision"] == body["expected_revision"] == migrate.head_revision()


async def test_readyz_is_503_on_an_unmigrated_database(tmp_path):
    async with serve(app_settings(database_url=f"sqlite:///{tmp_path}/empty.db")) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503 and response.json()["schema_revision"] is None
    assert "retry-after" in response.headers


async def test_metrics_count_requests_per_route_template(client):
    await client.get("/v1/purposes/service")
    text = (await client.get("/metrics", headers=STAFF_ALL)).text  # any staff token
    assert 'privacy_http_requests_total{method="GET",route="/v1/purposes/{code}",status="200"}' in text
    assert "privacy_http_request_duration_seconds_bucket" in text
    assert "/v1/purposes/service" not in text  # templates, never raw paths


def test_production_refuses_development_defaults_and_says_why():
    with pytest.raises(ConfigError) as refused:
        create_app(Settings(env="production"))
    message = str(refused.value)
    assert "PRIVACY_JWT_SECRET" in message and "SQLite" in message and "PRIVACY_ENCRYPTION_KEYS" in message
    assert "PRIVACY_PUBLIC_BASE_URL is not set" in message


def test_every_setting_is_in_the_configuration_document():
    documented = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    missing = [f"PRIVACY_{name.upper()}" for name in Settings.model_fields
               if f"`PRIVACY_{name.upper()}`" not in documented]
    assert missing == []


def test_production_starts_when_configured(tmp_path):
    key = tmp_path / "receipt.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    settings = Settings(env="production", database_url="postgresql://db.internal/privacy", **PRODUCTION_KEYS,
                        receipt_key_file=key, mail_backend="smtp", public_base_url="https://privacy.wesafe.se")
    assert settings.production_problems() == []
    create_app(settings)


def test_production_never_generates_a_receipt_key(tmp_path):
    settings = Settings(env="production", database_url="postgresql://db.internal/privacy", **PRODUCTION_KEYS,
                        receipt_key_file=tmp_path / "missing.pem", mail_backend="smtp",
                        public_base_url="https://privacy.wesafe.se")
    with pytest.raises(ConfigError, match="does not exist"):
        create_app(settings)
    assert not (tmp_path / "missing.pem").exists()


def test_plain_database_urls_get_async_drivers():
    assert async_url("postgresql://u@h:5432/db").startswith("postgresql+asyncpg://")
    assert async_url("postgres://u@h/db").startswith("postgresql+asyncpg://")
    assert async_url("sqlite:///./x.db") == "sqlite+aiosqlite:///./x.db"
    with pytest.raises(ValueError):
        async_url("mysql://u@h/db")


# --- the database going away and coming back -----------------------------------------------------------------


def assert_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
    for leak in ("postgres", "sqlite", "Traceback", "127.0.0.1", ".db"):
        assert leak not in response.text, leak
    assert body["detail"]


async def test_sqlite_unreachable_then_back_without_restart(tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite-specific; the PostgreSQL variant uses a proxy")
    folder = tmp_path / "later"
    url = f"sqlite:///{folder}/privacy.db"
    async with serve(app_settings(database_url=url)) as http:
        assert_unavailable(await http.get("/v1/subjects", headers=STAFF_ALL))
        assert (await http.get("/readyz")).status_code == 503
        folder.mkdir()
        await asyncio.to_thread(migrate.upgrade, url)
        assert (await http.get("/v1/subjects", headers=STAFF_ALL)).status_code == 200
        assert (await http.get("/readyz")).status_code == 200


class TCPProxy:
    """A switchable TCP forwarder: the database 'goes away' when it stops, and 'comes back' when it starts."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_postgres_unreachable_then_back_without_restart(database_url):
    if not database_url.startswith("postgres"):
        pytest.skip("PostgreSQL-specific")
    url = make_url(database_url)
    proxy = TCPProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    async with serve(app_settings(database_url=proxied)) as http:
        assert (await http.get("/v1/subjects", headers=STAFF_ALL)).status_code == 200
        await proxy.stop()
        assert_unavailable(await http.get("/v1/subjects", headers=STAFF_ALL))
        assert (await http.get("/readyz")).status_code == 503
        await proxy.start()
        # A pooled connection that died with the server answers one more 503 at most, then is replaced.
        statuses = [(await http.get("/v1/subjects", headers=STAFF_ALL)).status_code for _ in range(3)]
        assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
        assert (await http.get("/readyz")).status_code == 200
    await proxy.stop()
