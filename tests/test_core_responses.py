"""core.responses.shared_answers_response: a batch body made of answers serialized once."""

from __future__ import annotations

import json

import pytest

from app.core import responses
from app.core.responses import shared_answers_response
from app.decisions.schemas import Decision, DecisionBatchResult


def _decision(reason: str, basis: str | None = "consent") -> Decision:
    return Decision(allowed=reason == "consent_granted", legal_basis=basis, reasons=[reason])


def test_the_body_is_what_the_response_model_would_serialize():
    granted, withdrawn, unknown = _decision("consent_granted"), _decision("consent_withdrawn"), \
        _decision("unknown_purpose", None)
    answers = [granted, withdrawn, granted, unknown, granted]
    response = shared_answers_response("results", answers)
    assert response.media_type == "application/json"
    assert response.body == DecisionBatchResult(results=answers).model_dump_json().encode()
    assert json.loads(response.body)["results"][3] == {"allowed": False, "legal_basis": None,
                                                       "reasons": ["unknown_purpose"]}


def test_answers_built_per_request_cannot_grow_the_cache_without_bound(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(responses, "_SERIALIZED", {})
    monkeypatch.setattr(responses, "_LIMIT", 8)
    for _ in range(50):
        body = shared_answers_response("results", [_decision("consent_granted") for _ in range(3)]).body
        assert json.loads(body)["results"] == [{"allowed": True, "legal_basis": "consent",
                                                "reasons": ["consent_granted"]}] * 3
        assert len(responses._SERIALIZED) <= 8
