"""Who may call what: role and scope requirements, each one dependency that is also the bearer scheme the
OpenAPI document names (`bearerAuth`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from app.auth.principals import Principal, Role, Scope
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken

BEARER = "A JWT from `POST /v1/auth/token`, `privacy token`, or the configured identity provider."


class require(HTTPBearer):  # noqa: N801 - reads as a function: Depends(require(Role.staff, Scope.admin))
    """A dependency admitting the given roles; a staff caller must also hold every scope named. It is the
    bearer scheme itself (an HTTPBearer), so that FastAPI documents it and solves one dependency per route
    rather than a check and the scheme beneath it (bench/README.md)."""

    def __init__(self, roles: Role | Iterable[Role], scopes: Scope | Iterable[Scope] = ()) -> None:
        super().__init__(auto_error=False, scheme_name="bearerAuth", description=BEARER)
        self.allowed = {roles} if isinstance(roles, Role) else set(roles)
        self.needed = {scopes} if isinstance(scopes, Scope) else set(scopes)

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]  # a principal, not credentials
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        if not token or scheme.lower() != "bearer":
            raise Unauthorized("A bearer token is required")
        try:
            principal: Principal = request.app.state.runtime.tokens.verify(token)
        except InvalidToken as exc:
            raise Unauthorized(f"The bearer token was refused: {exc}") from exc
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


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)
