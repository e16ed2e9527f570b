"""Configuration from the environment (PRIVACY_*), validated once at startup."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.keystrength import key_problems

log = logging.getLogger(__name__)

# Development defaults: usable out of the box, refused in production.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
DEV_ENCRYPTION_KEYS = "dev:ZGV2LW9ubHktaW5zZWN1cmUtYWVzLWtleS0wMTIzNDU="  # 32 bytes, base64
DEV_HASH_KEY = "dev-only-insecure-contact-hash-key"
DEV_AUDIT_KEYS = "dev:ZGV2LW9ubHktaW5zZWN1cmUtYXVkaXQtbWFjLWtleSE="  # 32 bytes, base64
DEFAULT_DATABASE_URL = "sqlite:///./privacy.db"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"

SUPPORTED_JWT_ALGORITHMS = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says why."""


def _split_list(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [part for part in value.replace(",", " ").split() if part]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVACY_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=20, ge=1, le=200)
    database_retry_after_seconds: int = Field(default=5, ge=1)
    # PostgreSQL: how long a statement may run (the server's statement_timeout; the client gives up a second
    # later, for a server that no longer answers at all) and a connection may take to open; 0: no limit.
    database_statement_timeout_seconds: float = Field(default=5.0, ge=0, le=3600)
    # How long a request waits for a connection when all of the pool's are in use, before it answers 503.
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_public_keys: Path | None = None
    jwt_issuer: str = "wesafe-privacy"
    jwt_audience: str = "wesafe-privacy-api"
    jwt_algorithms: Annotated[list[str], NoDecode] = ["HS256", "RS256", "ES256"]
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # Short, so that a leaked token is soon worthless; a revoked client's tokens are refused at once anyway
    # (auth.revocation), but tokens no client holds (`privacy token`, subjects') can only run out.
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)

    # "kid:base64key,kid2:base64key"; the first key encrypts, every key decrypts (rotation).
    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEYS)
    # Key of the HMAC that turns e-mail addresses and phone numbers into lookup hashes.
    hash_key: SecretStr = SecretStr(DEV_HASH_KEY)

    # Keys of the audit trail's HMAC-SHA256, "kid:base64key[,kid2:base64key]", each of 32 bytes or more:
    # the first signs new events and checkpoints, every key verifies (rotation: new key first, then the old).
    audit_keys: SecretStr = SecretStr(DEV_AUDIT_KEYS)
    # Where `privacy audit checkpoint` appends signed checkpoints of every audit chain's head (JSON lines),
    # and `privacy audit verify` reads them: a place the database's users cannot rewrite.
    audit_checkpoint_dir: Path = Path("privacy-audit-checkpoints")

    # ES256 key that signs consent receipts; generated here on first start outside production.
    receipt_key_file: Path = Path("privacy-receipt-key.pem")

    # Webhook delivery: never to loopback, link-local or private addresses, unless this (development and
    # tests only; refused in production) says otherwise.
    webhook_allow_private_addresses: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A delivery is leased for the send's timeout plus this margin, taken just before it is sent: a worker
    # that dies mid-send leaves it to another worker after that long.
    webhook_lease_margin_seconds: float = Field(default=15.0, gt=0, le=600)
    # Sends a worker has in flight at once (each endpoint's one at a time, so a slow one holds up no other).
    webhook_concurrency: int = Field(default=8, ge=1, le=100)
    # After a database error the worker waits 0.5 s, doubling up to this, with jitter, then goes on.
    worker_backoff_max_seconds: float = Field(default=30.0, gt=0, le=600)
    # A pause after each batch of the retention sweep, so that a large sweep leaves the database room.
    retention_pause_seconds: float = Field(default=0.0, ge=0, le=60)
    # A recipient task open longer than this is overdue.
    processor_task_overdue_days: int = Field(default=30, ge=1)

    # Mail to subjects (login codes, notices about their requests): `console` logs them (development);
    # `smtp` sends them.
    mail_backend: Literal["console", "smtp"] = "console"
    mail_from: str = "WeSafe dataskydd <dataskydd@wesafe.se>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    subject_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)

    # Browsers on these origins may call the public and subjects' endpoints (CORS); comma-separated. None by
    # default; in development, the demo site's (http://localhost:8000).
    cors_origins: Annotated[list[str], NoDecode] = []
    cors_max_age_seconds: int = Field(default=600, ge=0, le=86400)
    # Cookie choices recorded per client address and worker: a number per second, minute, hour or day.
    visitor_consent_rate_limit: str = "30/minute"
    # Login and proof codes issued per minute across all addresses, per worker (docs/security.md#login-codes):
    # past it, code requests answer 429, so that a flood over many addresses cannot make the service a mail
    # cannon.
    login_codes_per_minute: int = Field(default=120, ge=1)
    # One-click unsubscribes per client address and worker. Mailbox providers post them from shared addresses:
    # keep it generous (docs/security.md, "Marketing contacts and opt-outs").
    unsubscribe_rate_limit: str = "120/minute"
    # Consent receipts mailed on request, per subject and worker (docs/behaviour.md, "Consent receipts").
    receipt_mail_rate_limit: str = "5/hour"

    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (uvicorn's forwarded_allow_ips):
    # addresses or networks, comma-separated, or `*` (any peer: only when nothing else reaches the service).
    forwarded_allow_ips: Annotated[list[str], NoDecode] = ["127.0.0.1"]
    # Where `privacy serve --workers N` keeps the workers' metric files (PROMETHEUS_MULTIPROC_DIR); the
    # service owns it: emptied of its metric files at every start.
    metrics_dir: Path = Path("privacy-metrics")

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    idempotency_ttl_hours: int = Field(default=24, ge=24)
    log_level: str = "INFO"

    controller_name: str = "WeSafe IT"
    controller_email: str = "dataskydd@wesafe.se"
    controller_website: str = "https://www.wesafe.se"
    # Where clients reach the API (unsubscribe links, receipts' policy URLs). Required in production; in
    # development `privacy serve` derives it from --host and --port when it is not set.
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                f"PRIVACY_PUBLIC_BASE_URL: {value!r} is not a URL like https://privacy.wesafe.se"
            )
        return value.strip().rstrip("/")

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (PRIVACY_FORWARDED_ALLOW_IPS)"
                ) from None
        if not value:
            raise ValueError("PRIVACY_FORWARDED_ALLOW_IPS is empty: name the proxies, or 127.0.0.1")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        origins = [origin.rstrip("/") for origin in value]
        for origin in origins:
            if "*" in origin or not origin.startswith(("https://", "http://")) or origin.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path, no wildcard)")
        return origins

    @field_validator("visitor_consent_rate_limit", "unsubscribe_rate_limit", "receipt_mail_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from app.core.ratelimit import parse_rate  # here: ratelimit's errors import the settings

        parse_rate(value)  # raises ValueError on a bad rate
        return value

    @property
    def allowed_origins(self) -> list[str]:
        """The CORS origins: those configured, or in development the demo site's."""
        if "cors_origins" not in self.model_fields_set and self.env == "development":
            return ["http://localhost:8000"]
        return self.cors_origins

    @field_validator("jwt_algorithms", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _parse_lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("jwt_algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str]) -> list[str]:
        unknown = [alg for alg in value if alg not in SUPPORTED_JWT_ALGORITHMS]
        if unknown:
            raise ValueError(f"unsupported JWT algorithm(s): {', '.join(unknown)} ('none' is never accepted)")
        if not value:
            raise ValueError("at least one JWT algorithm is required")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def encryption_keyring(self) -> dict[str, bytes]:
        """Key id → 32-byte AES key, in configured order (the first encrypts)."""
        keys: dict[str, bytes] = {}
        for entry in self.encryption_keys.get_secret_value().split(","):
            kid, sep, b64 = entry.strip().partition(":")
            if not sep or not kid:
                raise ConfigError("PRIVACY_ENCRYPTION_KEYS must look like 'kid:base64key[,kid2:base64key]'")
            try:
                key = base64.b64decode(b64, validate=True)
            except binascii.Error as exc:
                raise ConfigError(f"PRIVACY_ENCRYPTION_KEYS: key {kid!r} is not valid base64") from exc
            if len(key) != 32:
                raise ConfigError(f"PRIVACY_ENCRYPTION_KEYS: key {kid!r} must be 32 bytes (AES-256)")
            keys[kid] = key
        return keys

    @cached_property
    def audit_keyring(self) -> dict[str, bytes]:
        """Key id → audit MAC key (32+ bytes), in configured order (the first signs)."""
        keys: dict[str, bytes] = {}
        for entry in self.audit_keys.get_secret_value().split(","):
            kid, sep, b64 = entry.strip().partition(":")
            if not sep or not kid or len(kid) > 32:
                raise ConfigError("PRIVACY_AUDIT_KEYS must look like 'kid:base64key[,kid2:base64key]'")
            try:
                key = base64.b64decode(b64, validate=True)
            except binascii.Error as exc:
                raise ConfigError(f"PRIVACY_AUDIT_KEYS: key {kid!r} is not valid base64") from exc
            if len(key) < 32:
                raise ConfigError(f"PRIVACY_AUDIT_KEYS: key {kid!r} must be at least 32 bytes")
            keys[kid] = key
        return keys

    def production_problems(self) -> list[str]:
        """What makes this configuration unfit for production (empty when fit)."""
        # Every key by its bytes: long enough, no development key under any name, enough entropy.
        problems = key_problems(
            {
                "PRIVACY_JWT_SECRET": [(None, self.jwt_secret.get_secret_value().encode())],
                "PRIVACY_ENCRYPTION_KEYS": list(self.encryption_keyring.items()),
                "PRIVACY_HASH_KEY": [(None, self.hash_key.get_secret_value().encode())],
                "PRIVACY_AUDIT_KEYS": list(self.audit_keyring.items()),
            },
            development_keys=[
                DEV_JWT_SECRET.encode(),
                DEV_HASH_KEY.encode(),
                *(base64.b64decode(dev.partition(":")[2]) for dev in (DEV_ENCRYPTION_KEYS, DEV_AUDIT_KEYS)),
            ],
        )
        if self.is_sqlite:
            problems.append("PRIVACY_DATABASE_URL points at SQLite; production needs PostgreSQL")
        if self.mail_backend == "console":
            problems.append("PRIVACY_MAIL_BACKEND is console; production mail must go out by smtp")
        if self.webhook_allow_private_addresses:
            problems.append(
                "PRIVACY_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on; webhooks could reach internal services"
            )
        if "receipt_key_file" not in self.model_fields_set:
            problems.append(
                "PRIVACY_RECEIPT_KEY_FILE is not set; point it at the EC P-256 key that signs receipts"
            )
        if "public_base_url" not in self.model_fields_set:
            problems.append(
                "PRIVACY_PUBLIC_BASE_URL is not set; set the https:// address where clients reach the API "
                "(unsubscribe links and receipts point there)"
            )
        elif not self.public_base_url.startswith("https://"):
            problems.append("PRIVACY_PUBLIC_BASE_URL must be an https:// address in production")
        return problems

    def check(self) -> None:
        """Refuse an unusable configuration; warn about development defaults."""
        self.encryption_keyring  # noqa: B018 - validates the key list
        self.audit_keyring  # noqa: B018 - validates the key list
        problems = self.production_problems()
        if self.env == "production" and problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
        if self.env == "development" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            log.warning("using the development JWT secret: tokens are forgeable; set PRIVACY_JWT_SECRET")
