"""Batch responses built from answers serialized once."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Response
from pydantic import BaseModel

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
