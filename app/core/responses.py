"""Response helpers: a creation's `Location`, and batch responses built from answers serialized once."""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel

R = TypeVar("R")

# The attribute that marks a creating route's endpoint with its Location template (core.openapi documents it).
CREATED_LOCATION = "created_location"

_RESPONSE = inspect.Parameter("location_response", inspect.Parameter.KEYWORD_ONLY, annotation=Response)


def created(
    location: str, *, own_response: bool = False
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """A creating route's `Location` header, on its first answer and on an idempotent replay alike (put it
    above `@idempotent`). `location` is a path template: each name is one of the route's path parameters or a
    field of the created resource, e.g. `/v1/subjects/{subject_id}/data/{id}`. The OpenAPI document declares
    the header on the route's 201 (or 202). A route that builds its own Response (`own_response`) sets the
    header itself: it is only marked, for the document."""
    names = [name for _, name, _, _ in string.Formatter().parse(location) if name]

    def decorate(route: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        if own_response:
            setattr(route, CREATED_LOCATION, location)
            return route
        signature = inspect.signature(route)
        from_path = [name for name in names if name in signature.parameters]
        from_result = [name for name in names if name not in signature.parameters]
        # FastAPI hands a route one Response (to its last parameter so annotated): share the route's own, if
        # any (@idempotent adds one), or add one.
        own = [p.name for p in signature.parameters.values() if p.annotation in (Response, "Response")]
        parameters = list(signature.parameters.values()) + ([] if own else [_RESPONSE])
        response_name = own[-1] if own else _RESPONSE.name

        @functools.wraps(route)
        async def run(**arguments: Any) -> R:
            response: Response = arguments[response_name] if own else arguments.pop(response_name)
            result = await route(**arguments)
            values = {name: arguments[name] for name in from_path}
            values.update({name: getattr(result, name) for name in from_result})
            response.headers["Location"] = location.format(**values)
            return result

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]  # read by FastAPI
        setattr(run, CREATED_LOCATION, location)
        return run

    return decorate


# id(answer) -> (answer, its JSON). The answer is held, so that its id stays its own while it is here.
_SERIALIZED: dict[int, tuple[BaseModel, bytes]] = {}
_LIMIT = 4096


def shared_answers_response(key: str, answers: Sequence[BaseModel]) -> Response:
    """`{key: [answers]}` as JSON, for batches whose answers are shared, frozen instances (one per distinct
    answer: the decisions' `decide`, the marketing check's reasons). Each distinct answer is serialized once,
    and a response is their concatenation: FastAPI would validate and serialize each of the thousand items of
    every batch again, which costs more than answering them. The route keeps its `response_model`, which
    documents the same body. Answers built per request would only fill the cache: it is emptied when full,
    so that such a mistake costs speed, never memory."""
    parts = []
    for answer in answers:
        cached = _SERIALIZED.get(id(answer))
        if cached is None:
            if len(_SERIALIZED) >= _LIMIT:
                _SERIALIZED.clear()
            cached = _SERIALIZED[id(answer)] = (answer, answer.__pydantic_serializer__.to_json(answer))
        parts.append(cached[1])
    return Response(b'{"%s":[%s]}' % (key.encode(), b",".join(parts)), media_type="application/json")
