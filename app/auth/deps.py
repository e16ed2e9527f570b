"""Who may call what: the principal from the bearer token, and role/scope requirements as aliases."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.principals import Principal, Role, Scope
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken

bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth",
                    description="A JWT from `POST /v1/auth/token`, `privacy token`, or the configured identity provider.")


async def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    return _verified(request, credentials)


def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None:
        raise Unauthorized("A bearer token is required")
    try:
        principal: Principal = request.app.state.runtime.tokens.verify(credentials.credentials)
        return principal
    except InvalidToken as exc:
        raise Unauthorized(f"The bearer token was refused: {exc}") from exc


def require(
    roles: Role | Iterable[Role], scopes: Scope | Iterable[Scope] = ()
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting the given roles; a staff caller must also hold every scope named. It verifies
    the token itself rather than depending on get_principal: one dependency less for FastAPI to solve on every
    request (bench/README.md)."""
    allowed = {roles} if isinstance(roles, Role) else set(roles)
    needed = {scopes} if isinstance(scopes, Scope) else set(scopes)

    async def check(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
        principal = _verified(request, credentials)
        if principal.role not in allowed:
            raise Forbidden("This operation is not available to your role")
        if principal.role == Role.staff and not needed <= principal.scopes:
            missing = " ".join(sorted(needed - principal.scopes))
            raise Forbidden(f"This operation needs the scope(s): {missing}")
        return principal

    return check


AnyCaller = Annotated[Principal, Depends(get_principal)]
Admin = Annotated[Principal, Depends(require(Role.staff, Scope.admin))]
