"""Who is calling: the roles, the staff scopes, and the principal a verified token stands for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.core.security import InvalidToken


class Role(StrEnum):
    subject = "subject"
    staff = "staff"
    processor = "processor"
    system = "system"  # the service itself (command line, sweeps, links in mails); never in a token


# The roles a token may carry.
TOKEN_ROLES = frozenset({Role.subject, Role.staff, Role.processor})


class Scope(StrEnum):
    subjects_read = "subjects:read"
    subjects_write = "subjects:write"
    consents_read = "consents:read"
    consents_write = "consents:write"
    requests_read = "requests:read"
    requests_manage = "requests:manage"
    disclosures_read = "disclosures:read"
    disclosures_write = "disclosures:write"
    sensitive_read = "sensitive:read"
    audit_read = "audit:read"
    breaches_manage = "breaches:manage"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: from a verified token, or the system itself (Principal.system)."""

    role: Role
    sub: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The API client the token was issued to (its `client_id` claim), as a canonical UUID when it is one: a
    # revoked client's tokens are refused by it (auth.revocation). None for tokens no client holds.
    client_id: str | None = None

    @classmethod
    def system(cls, part: str = "system") -> Principal:
        """The service acting on its own; `part` names which part of it (the audit trail shows it)."""
        return cls(role=Role.system, sub=part)

    @property
    def subject_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.sub) if self.role == Role.subject else None

    @property
    def processor_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.sub) if self.role == Role.processor else None

    def has(self, scope: Scope) -> bool:
        return self.role == Role.staff and scope in self.scopes

    @property
    def key(self) -> str:
        """A stable name for the caller (idempotency keys are scoped by it)."""
        return f"{self.role}:{self.sub}"


SYSTEM = Principal.system()


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """The principal of a token whose signature and standard claims have been verified (core.security)."""
    role, sub = claims.get("role"), claims.get("sub")
    if not isinstance(role, str) or role not in TOKEN_ROLES:
        raise InvalidToken("token has no known role")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise InvalidToken("token has no valid subject")
    if role in (Role.subject, Role.processor):
        try:
            sub = str(uuid.UUID(sub))
        except ValueError as exc:
            raise InvalidToken(f"a {role} token's sub must be a UUID") from exc
    scopes: frozenset[str] = frozenset()
    if role == Role.staff:  # scopes mean nothing on other roles' tokens
        raw = claims.get("scope", "")
        if isinstance(raw, list):
            raw = " ".join(str(s) for s in raw)
        if not isinstance(raw, str):
            raise InvalidToken("token scope must be a string")
        scopes = frozenset(raw.split())
    return Principal(role=Role(role), sub=sub, scopes=scopes, client_id=_client_id(claims))


def _client_id(claims: dict[str, Any]) -> str | None:
    """The token's `client_id` claim (RFC 9068), canonical when it is a UUID (ours are): a revoked client is
    recognized however spelled. A claim that is present but not a usable string refuses the token."""
    if "client_id" not in claims:
        return None
    value = claims["client_id"]
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidToken("token client_id must be a non-empty string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value  # another issuer's client name: never one of ours
