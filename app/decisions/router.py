from __future__ import annotations

from fastapi import APIRouter, Response

from app.consent.deps import ConsentReader
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.openapi import AUTH, BODY, problems
from app.core.responses import shared_answers_response
from app.decisions import service
from app.decisions.schemas import Decision, DecisionBatch, DecisionBatchResult, DecisionRequest, Reason

router = APIRouter(prefix="/decisions", tags=["decisions"])


@router.post(
    "",
    response_model=Decision,
    responses=problems(*AUTH, *BODY, 404),
    summary="May we process this subject's data for this purpose?",
    description="Reads current state only. An unknown subject is a 404; an unknown purpose is answered "
    "`allowed: false` with the reason `unknown_purpose`.",
)
async def decide(body: DecisionRequest, session: SessionDep, _caller: ConsentReader) -> Decision:
    decision = await service.decide_one(session, body.subject_id, body.purpose)
    if decision.reasons == [Reason.unknown_subject]:
        raise NotFound("Subject not found")
    return decision


@router.post(
    "/batch",
    response_model=DecisionBatchResult,
    responses=problems(*AUTH, *BODY),
    summary="Many decisions at once (up to 1000)",
    description="Results in input order; unknown subjects and purposes are answered in place "
    "(`unknown_subject`, `unknown_purpose`) rather than failing the batch.",
)
async def decide_batch(body: DecisionBatch, session: SessionDep, _caller: ConsentReader) -> Response:
    asked = [(item.subject_id, item.purpose) for item in body.items]
    return shared_answers_response("results", await service.decide_many(session, asked))
