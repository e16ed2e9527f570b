from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.auth.deps import Admin
from app.core.db import SessionDep
from app.core.openapi import AUTH, problems
from app.records import service
from app.records.schemas import RecordOfProcessing

router = APIRouter(tags=["records"])

DESCRIPTION = (
    "Generated from the live catalog, processor registry, disclosure log and configuration: the controller "
    "and contact, each purpose with its legal basis, categories of data and of subjects, recipients and "
    "third-country transfers, retention, and the security measures."
)


def _csv(record: RecordOfProcessing) -> Response:
    return Response(
        service.to_csv(record),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="record-of-processing.csv"'},
    )


@router.get(
    "/records-of-processing",
    response_model=RecordOfProcessing,
    responses=problems(*AUTH, 422),
    summary="The record of processing activities, GDPR Art. 30 (admin)",
    description=DESCRIPTION + " As CSV: `/v1/records-of-processing.csv`.",
)
async def record(
    session: SessionDep,
    _caller: Admin,
    # Kept for links made before CSV had its own operation (docs/behaviour.md).
    format: Annotated[Literal["json", "csv"], Query(include_in_schema=False)] = "json",  # noqa: A002 - the API's name
) -> Response:
    built = await service.build(session)
    if format == "csv":
        return _csv(built)
    return Response(built.model_dump_json(), media_type="application/json")


@router.get(
    "/records-of-processing.csv",
    response_class=Response,
    responses=problems(*AUTH)
    | {200: {"description": "The record as CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="The record of processing activities as CSV (admin)",
    description=DESCRIPTION,
)
async def record_csv(session: SessionDep, _caller: Admin) -> Response:
    return _csv(await service.build(session))
