"""The register extract (GDPR Art. 15) and the portable copy (Art. 20): built from the current data at each
download, as JSON, as a zip of CSV files, or as a bilingual HTML page."""

from __future__ import annotations

import html
import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.auth.principals import Principal
from app.catalog import service as catalog
from app.catalog.schemas import ControllerRead, LegalBasis, Localized, PurposeRead
from app.consent import service as consent
from app.consent.schemas import ConsentEventRead, ConsentHistoryItem, ConsentStateRead, EvidenceRead
from app.core import csv_safe
from app.core.time import utc_now
from app.core.types import UTCTimestamp
from app.disclosures import service as disclosures
from app.disclosures.schemas import DisclosureRead
from app.marketing import service as marketing
from app.marketing.schemas import Channels
from app.notices.schemas import NoticeDeliveryRead
from app.rights_requests.models import RightsRequest
from app.rights_requests.schemas import RequestRead
from app.subjects import service as subjects
from app.subjects.schemas import DataItemRead, SubjectRead

T = TypeVar("T")


class PurposeSummary(BaseModel):
    code: str
    name: Localized
    legal_basis: LegalBasis
    retention: dict[str, Any] = Field(description="The purpose's retention rule, as in GET /v1/purposes.")
    categories: list[str]
    sources: list[str] = Field(description="Where the subject's data for this purpose came from.")


class RightDescription(BaseModel):
    right: str
    description: Localized


class ConsentsSection(BaseModel):
    current: list[ConsentStateRead]
    history: list[ConsentHistoryItem]


class Package(BaseModel):
    """Everything held on the subject, and what the subject may do about it."""

    generated_at: UTCTimestamp
    request_id: str
    controller: ControllerRead
    subject: SubjectRead
    personal_data: list[DataItemRead]
    consents: ConsentsSection
    marketing: Channels
    disclosures: list[DisclosureRead]
    rights_requests: list[RequestRead]
    notices: list[NoticeDeliveryRead] = Field(
        description="The privacy notice versions you were given, when and how (GDPR Art. 13, 14)."
    )
    purposes: list[PurposeSummary]
    rights: list[RightDescription]


RIGHTS = [
    (
        "access",
        "Du har rätt att få veta vilka uppgifter vi har om dig och få en kopia av dem.",
        "You have the right to know what data we hold about you and to get a copy of it.",
    ),
    (
        "rectification",
        "Du har rätt att få felaktiga uppgifter rättade.",
        "You have the right to have inaccurate data rectified.",
    ),
    (
        "erasure",
        "Du har rätt att få dina uppgifter raderade, utom det som lag kräver att vi sparar.",
        "You have the right to have your data erased, except what the law requires us to keep.",
    ),
    (
        "restriction",
        "Du har rätt att begränsa behandlingen av dina uppgifter.",
        "You have the right to restrict the processing of your data.",
    ),
    (
        "objection",
        "Du har rätt att invända mot behandling som grundar sig på berättigat intresse, och alltid mot "
        "direktmarknadsföring.",
        "You have the right to object to processing based on legitimate interest, and always to direct "
        "marketing.",
    ),
    (
        "portability",
        "Du har rätt att få ut dina uppgifter i ett maskinläsbart format.",
        "You have the right to receive your data in a machine-readable format.",
    ),
    (
        "withdraw_consent",
        "Du kan när som helst återkalla ett samtycke, lika enkelt som du gav det.",
        "You can withdraw a consent at any time, as easily as you gave it.",
    ),
    (
        "complaint",
        "Du kan klaga hos Integritetsskyddsmyndigheten (IMY), www.imy.se.",
        "You can complain to the Swedish Authority for Privacy Protection (IMY), www.imy.se.",
    ),
]


async def _every_page(fetch: Callable[[str | None], Awaitable[tuple[list[T], str | None]]]) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    while True:
        page, cursor = await fetch(cursor)
        items += page
        if cursor is None:
            return items


async def build(
    session: AsyncSession, request: RightsRequest, requests: list[RequestRead], *, caller: Principal
) -> Package:
    subject_id = request.subject_id
    assert subject_id is not None, "a request matched to no subject has no package (service.package)"
    subject = await subjects.read_subject(session, subject_id, caller)

    async def items_page(cursor: str | None) -> tuple[list[Any], str | None]:
        found, next_cursor = await subjects.list_items(
            session, subject_id, caller=caller, category=None, purpose=None, limit=500, cursor=cursor
        )
        return list(found), next_cursor

    items = await _every_page(items_page)

    async def history_page(cursor: str | None) -> tuple[list[Any], str | None]:
        found, next_cursor = await consent.history(
            session, subject_id, caller=caller, limit=500, cursor=cursor
        )
        return list(found), next_cursor

    history = await _every_page(history_page)
    sources: dict[str, set[str]] = {}
    for item in items:
        sources.setdefault(item.purpose, set()).add(item.source)
    purposes = [PurposeRead.model_validate(p) for p in await catalog.list_purposes(session)]
    states = await consent.current(session, subject_id, caller=caller)
    renewal_due = await consent.renewal_due(session, states)
    return Package(
        generated_at=utc_now(),
        request_id=str(request.id),
        controller=catalog.controller(runtime.of(session).settings),
        subject=SubjectRead.model_validate(subject),
        personal_data=[subjects.render_item(session, i, caller) for i in items],
        consents=ConsentsSection(
            current=[
                ConsentStateRead.model_validate(s).model_copy(
                    update={"renewal_due": s.purpose in renewal_due}
                )
                for s in states
            ],
            history=[
                ConsentHistoryItem(
                    **ConsentEventRead.model_validate(e).model_dump(),
                    recorded_by=e.recorded_by,
                    evidence=EvidenceRead.of(e),
                )
                for e in history
            ],
        ),
        marketing=Channels(**await marketing.channels(session, subject_id, caller=caller)),
        disclosures=await _every_page(
            lambda cursor: disclosures.list_for_subject(
                session, subject_id, caller=caller, limit=500, cursor=cursor
            )
        ),
        rights_requests=requests,
        notices=[
            NoticeDeliveryRead.model_validate(d)
            for d in await subjects.notice_deliveries(session, subject_id, caller=caller)
        ],
        purposes=[
            PurposeSummary(
                code=p.code,
                name=p.name,
                legal_basis=p.legal_basis,
                retention=p.retention.model_dump(mode="json"),
                categories=p.categories,
                sources=sorted(sources.get(p.code, set())),
            )
            for p in purposes
        ],
        rights=[RightDescription(right=r, description=Localized(sv=sv, en=en)) for r, sv, en in RIGHTS],
    )


# --- formats
# ---------------------------------------------------------------------------------------------------


def _flat(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rows(section: Any) -> list[dict[str, Any]]:
    if isinstance(section, list):
        return section
    return [section]


def sections(package: Package) -> dict[str, list[dict[str, Any]]]:
    data = package.model_dump(mode="json")
    return {
        "controller": _rows(data["controller"]),
        "subject": _rows(data["subject"]),
        "personal_data": data["personal_data"],
        "consents": data["consents"]["current"],
        "consent_history": data["consents"]["history"],
        "marketing": [{"channel": c, "state": s} for c, s in data["marketing"].items()],
        "disclosures": data["disclosures"],
        "rights_requests": data["rights_requests"],
        "notices": data["notices"],
        "purposes": data["purposes"],
        "rights": data["rights"],
    }


def to_csv_zip(package: Package) -> bytes:
    """One CSV file per section; nested values as JSON in their cell."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, rows in sections(package).items():
            text = io.StringIO()
            columns = list(dict.fromkeys(key for row in rows for key in row)) or ["empty"]
            writer = csv_safe.DictWriter(text, columns)  # no cell a spreadsheet would run as a formula
            writer.writeheader()
            for row in rows:
                writer.writerow({key: _flat(row.get(key)) for key in columns})
            archive.writestr(f"{name}.csv", text.getvalue())
    return buffer.getvalue()


TITLES = {
    "controller": ("Personuppgiftsansvarig", "Controller"),
    "subject": ("Du", "You"),
    "personal_data": ("Uppgifter om dig", "Your personal data"),
    "consents": ("Samtycken", "Consents"),
    "consent_history": ("Samtyckeshistorik", "Consent history"),
    "marketing": ("Marknadsföring", "Marketing"),
    "disclosures": ("Mottagare av dina uppgifter", "Recipients of your data"),
    "rights_requests": ("Dina begäranden", "Your requests"),
    "notices": ("Integritetspolicyer du har fått", "Privacy notices you were given"),
    "purposes": ("Ändamål, rättslig grund och lagringstid", "Purposes, legal bases and retention"),
    "rights": ("Dina rättigheter", "Your rights"),
}


def to_html(package: Package) -> str:
    """A readable page in Swedish and English: one table per section."""
    parts = [
        '<!doctype html><html lang="sv"><head><meta charset="utf-8"><title>Registerutdrag / Your '
        "data</title>",
        '<meta name="viewport" content="width=device-width, '
        'initial-scale=1"><style>body{font-family:sans-serif;'
        "max-width:70em;margin:2em auto}table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px "
        "solid "
        "#ccc;padding:.3em .6em;text-align:left;vertical-align:top}</style></head><body>",
        "<h1>Registerutdrag <small>/ Your data</small></h1>",
        f"<p>Skapat / Generated: {html.escape(package.generated_at.isoformat())}</p>",
    ]
    for name, rows in sections(package).items():
        sv, en = TITLES[name]
        parts.append(f'<h2 id="{name}">{html.escape(sv)} <small>/ {html.escape(en)}</small></h2>')
        if not rows:
            parts.append("<p>Inget / Nothing</p>")
            continue
        columns = list(dict.fromkeys(key for row in rows for key in row))
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>")
        for row in rows:
            parts.append(
                "<tr>" + "".join(f"<td>{html.escape(_flat(row.get(c)))}</td>" for c in columns) + "</tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def download(package: Package, fmt: str) -> tuple[bytes, str, dict[str, str]]:
    """The package as a file to hand over: its bytes, media type and headers (JSON and the CSV archive as
    attachments; HTML shown in the browser)."""
    name = f"wesafe-data-{package.subject.id}"
    if fmt == "csv":
        disposition = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
        return to_csv_zip(package), "application/zip", disposition
    if fmt == "html":
        return to_html(package).encode(), "text/html; charset=utf-8", {}
    disposition = {"Content-Disposition": f'attachment; filename="{name}.json"'}
    return package.model_dump_json().encode(), "application/json", disposition
