"""`Idempotency-Key` on creating POSTs, as a decorator on the route.

    @router.post("/subjects", status_code=201, ...)
    @idempotent(replay=subject_again)
    async def create_subject(body: SubjectCreate, session: SessionDep, caller: StaffWriter) -> SubjectRead:
    ...

With a key, the route runs in one transaction with the key's claim: the first request with a key creates
and records what it created (`key_of` its result, by default its `id`); a retry with the same key and body
runs `replay` instead (with the resource key, and whichever of the route's arguments it names) and says
`Idempotent-Replayed: true`. The same key with another body is a 422. Without a key the route just runs.
The route declares `session` and `caller` (the key is scoped per caller)."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import operator
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Header, Request, Response

from app import runtime
from app.core.db import transaction
from app.idempotency import service

R = TypeVar("R")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe creation: the same key and body return the first result; "
        "the same key with another body is refused (422). Keys are kept for at least 24 hours.",
    ),
]

_EXTRA = (
    inspect.Parameter("idempotency_request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
    inspect.Parameter("idempotency_response", inspect.Parameter.KEYWORD_ONLY, annotation=Response),
    inspect.Parameter(
        "idempotency_key", inspect.Parameter.KEYWORD_ONLY, annotation=IdempotencyKey, default=None
    ),
)


def idempotent(
    replay: Callable[..., Awaitable[Any]], *, key_of: Callable[[Any], Any] = operator.attrgetter("id")
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    wanted = list(inspect.signature(replay).parameters)[1:]  # after the resource key

    def decorate(route: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        signature = inspect.signature(route)

        @functools.wraps(route)
        async def run(
            *,
            idempotency_request: Request,
            idempotency_response: Response,
            idempotency_key: str | None,
            **arguments: Any,
        ) -> Any:
            if idempotency_key is None:
                return await route(**arguments)
            session, caller = arguments["session"], arguments["caller"]
            # The key's claim and the creation commit together, or not at all.
            await transaction(session)
            ttl = timedelta(hours=runtime.of(session).settings.idempotency_ttl_hours)
            earlier = await service.claim(
                session,
                caller=caller.key,
                key=idempotency_key,
                fingerprint=await _fingerprint(idempotency_request),
                ttl=ttl,
            )
            if earlier is not None:
                idempotency_response.headers["Idempotent-Replayed"] = "true"
                return await replay(earlier, **{name: arguments[name] for name in wanted})
            created = await route(**arguments)
            await service.complete(
                session, caller=caller.key, key=idempotency_key, resource_key=str(key_of(created))
            )
            return created

        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *_EXTRA])  # type: ignore[attr-defined]  # read by FastAPI
        return run

    return decorate


async def _fingerprint(request: Request) -> str:
    body = await request.body()
    canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) if body else ""
    material = f"{request.method} {request.url.path}\n{canonical}"
    return hashlib.sha256(material.encode()).hexdigest()
