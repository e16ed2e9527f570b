from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.openapi import AUTH, problems
from app.records import service
from app.records.schemas import RecordOfProcessing

router = APIRouter(tags=["records"])

RESPONSES = problems(*AUTH, 422) | {
    200: {
        "description": "The record, as JSON (default) or CSV.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RecordOfProcessing"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.get(
    "/records-of-processing",
    response_model=RecordOfProcessing,
    responses=RESPONSES,
    summary="The record of processing activities, GDPR Art. 30 (admin)",
    description="Generated from the live catalog, processor registry, disclosure log and configuration: the "
    "controller and contact, each purpose with its legal basis, categories of data and of "
    "subjects, recipients and third-country transfers, retention, and the security measures.",
)
async def record(session: SessionDep, _caller: Admin, format: Literal["json", "csv"] = "json") -> Response:  # noqa: A002 - the API's name
    built = await service.build(session)
    if format == "csv":
        return Response(
            service.to_csv(built),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="record-of-processing.csv"'},
        )
    return Response(built.model_dump_json(), media_type="application/json")
