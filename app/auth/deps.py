"""Who may call what: role and scope requirements, each one dependency that is also the bearer scheme the
OpenAPI document names; and what the document says about them (`openapi_access`), derived from the routes'
own requirements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app.auth.principals import Principal, Role, Scope
from app.core.errors import Forbidden, Unauthorized
from app.core.openapi import BEARER as BEARER_SCHEME
from app.core.openapi import OAUTH2
from app.core.security import InvalidToken

BEARER = "A JWT from `POST /v1/auth/token`, `privacy token`, or the configured identity provider."


class require(HTTPBearer):  # noqa: N801 - reads as a function: Depends(require(Role.staff, Scope.admin))
    """A dependency admitting the given roles; a staff caller must also hold every scope named. It is the
    bearer scheme itself (an HTTPBearer), so that FastAPI documents it and solves one dependency per route
    rather than a check and the scheme beneath it (bench/README.md)."""

    def __init__(self, roles: Role | Iterable[Role], scopes: Scope | Iterable[Scope] = ()) -> None:
        super().__init__(auto_error=False, scheme_name=BEARER_SCHEME, description=BEARER)
        self.allowed = {roles} if isinstance(roles, Role) else set(roles)
        self.needed = {scopes} if isinstance(scopes, Scope) else set(scopes)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]  # a principal, not credentials
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not token or scheme.lower() != "bearer":
            raise Unauthorized("A bearer token is required")
        runtime = request.app.state.runtime
        try:
            principal: Principal = runtime.tokens.verify(token)
        except InvalidToken as exc:
            raise Unauthorized(f"The bearer token was refused: {exc}") from exc
        # After the verifier's cache, so that a remembered token is refused too (auth.revocation).
        if principal.client_id is not None and await runtime.revoked_clients.is_revoked(
            request.app.state.sessionmaker, principal.client_id
        ):
            raise Unauthorized("The bearer token was refused: its API client has been revoked")
        if principal.role not in self.allowed:
            raise Forbidden("This operation is not available to your role")
        if principal.role == Role.staff and not self.needed <= principal.scopes:
            missing = " ".join(sorted(self.needed - principal.scopes))
            raise Forbidden(f"This operation needs the scope(s): {missing}")
        return principal


Admin = Annotated[Principal, Depends(require(Role.staff, Scope.admin))]


def browser_callable(route: APIRoute) -> bool:
    """Whether a browser may call the route from the website: it is public (no role required) or a subject
    may call it. Staff-only and processor-only routes are not."""
    requirements = [d.call for d in _dependencies(route.dependant) if isinstance(d.call, require)]
    return all(Role.subject in r.allowed for r in requirements)


SCOPES: dict[Scope, str] = {
    Scope.subjects_read: "Find and read subjects and the personal data held on them.",
    Scope.subjects_write: "Register subjects, record and rectify their data, end relationships.",
    Scope.consents_read: "Read consents; decisions and marketing checks.",
    Scope.consents_write: "Record and withdraw consents, marketing channels and opt-outs.",
    Scope.requests_read: "Read rights requests and download their packages.",
    Scope.requests_manage: "File rights requests and move them on (verify, start, complete, reject, extend).",
    Scope.disclosures_read: "Read the disclosure log and the processor tasks.",
    Scope.disclosures_write: "Record disclosures to processors.",
    Scope.sensitive_read: "See sensitive values (payment data) unmasked.",
    Scope.audit_read: "Read the audit trail.",
    Scope.breaches_manage: "The personal data breach register: register, assess, find the subjects affected, "
    "record IMY's notification, tell the subjects, close (Art. 33, 34).",
    Scope.admin: "Administration: the catalog, processors, API clients, webhooks, holds, retention.",
}


def security_schemes(token_url: str) -> dict[str, Any]:
    """The document's two schemes: staff tokens as OAuth 2.0 client credentials with every staff scope, and
    the plain bearer tokens of subjects (the e-mail login) and processors."""
    return {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT for a subject (from `POST /v1/auth/subject-login/verify`) or a processor "
            "(its API client's, from `POST /v1/auth/token`, or one minted by `privacy token`).",
        },
        OAUTH2: {
            "type": "oauth2",
            "description": "Staff tokens: an API client's, from the client credentials grant, or one minted "
            "by `privacy token` or the configured identity provider, sent as `Authorization: Bearer`. Each "
            "operation names the scopes it needs (docs/scopes.md).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": token_url,
                    "scopes": {str(scope): SCOPES[scope] for scope in Scope},
                }
            },
        },
    }


def openapi_access(route: APIRoute) -> dict[str, Any]:
    """What the document says about who may call the route, from its `require` dependencies: the staff scopes
    as an `oauth2` requirement, `bearerAuth` for subjects and processors (either one suffices), and the roles
    (`x-roles`). A public route: nothing."""
    requirements = [d.call for d in _dependencies(route.dependant) if isinstance(d.call, require)]
    if not requirements:
        return {}
    roles = set.intersection(*(r.allowed for r in requirements))
    scopes = set().union(*(r.needed for r in requirements))
    security: list[dict[str, list[str]]] = []
    if Role.staff in roles:
        security.append({OAUTH2: sorted(str(s) for s in scopes)})
    if roles - {Role.staff}:
        security.append({BEARER_SCHEME: []})
    return {"security": security, "x-roles": [str(role) for role in Role if role in roles]}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)
