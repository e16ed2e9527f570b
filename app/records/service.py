"""The record of processing activities (GDPR Art. 30), generated from what the service holds and how it is
configured, never maintained by hand."""

from __future__ import annotations

import io
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app import runtime
from app.breaches import service as breaches
from app.catalog import service as catalog
from app.catalog.schemas import SENSITIVE_CATEGORIES, LegalBasis, LiaOutcome, PurposeRead
from app.core import csv_safe
from app.core.config import Settings
from app.core.time import rfc3339, utc_now
from app.disclosures import service as disclosures
from app.processors import service as processors
from app.processors.countries import is_third_country
from app.records.schemas import (
    ActivityEntry,
    AssessmentEntry,
    BreachRegisterEntry,
    RecipientEntry,
    RecordOfProcessing,
)


def security_measures(settings: Settings) -> list[str]:
    keyring = settings.encryption_keyring
    return [
        "Encryption at rest (AES-256-GCM) of the sensitive categories "
        f"({', '.join(sorted(SENSITIVE_CATEGORIES))}); "
        f"{len(keyring)} key(s) configured, new values under key id '{next(iter(keyring))}'; values shown "
        "masked "
        "without the sensitive:read scope.",
        "E-mail addresses and phone numbers used for lookups, marketing opt-outs and login kept only as "
        "keyed "
        "hashes (HMAC-SHA256).",
        "Every read and change of personal data recorded in an append-only audit trail, hash-chained per "
        "subject "
        "and verifiable (privacy audit verify).",
        f"Access only with signed bearer tokens ({', '.join(settings.jwt_algorithms)}), by role (subject, "
        "staff, "
        "processor) and staff scope; a subject reaches only its own data, a processor only what concerns it.",
        "Consent receipts signed (ES256) with a published key.",
        "Webhooks signed (Standard Webhooks, HMAC-SHA256), "
        + ("https only" if settings.env == "production" else "http allowed outside production")
        + ", never to loopback, link-local or private addresses.",
        "Retention rules per purpose and data category applied by the retention sweep; legal holds "
        "respected.",
        "Responses carrying personal data are never cached (Cache-Control: no-store).",
        f"Database: {'SQLite (development)' if settings.is_sqlite else 'PostgreSQL'}.",
    ]


def _assessments(purpose: PurposeRead) -> AssessmentEntry:
    lia_required = purpose.legal_basis == LegalBasis.legitimate_interest
    return AssessmentEntry(
        lia_reference=purpose.lia_reference,
        lia_outcome=purpose.lia_outcome,
        lia_required=lia_required,
        high_risk=purpose.high_risk,
        dpia_reference=purpose.dpia_reference,
        usable=(
            not lia_required
            or (purpose.lia_reference is not None and purpose.lia_outcome == LiaOutcome.approved)
        )
        and (not purpose.high_risk or purpose.dpia_reference is not None),
    )


async def build(session: AsyncSession) -> RecordOfProcessing:
    settings = runtime.of(session).settings
    registry = {p.id: p for p in await processors.all_processors(session)}
    received = await disclosures.recipients_by_purpose(session)

    def entry(processor_id: uuid.UUID) -> RecipientEntry:
        p = registry[processor_id]
        return RecipientEntry(
            id=p.id,
            name=p.name,
            country=p.country,
            third_country=is_third_country(p.country),
            dpa_reference=p.dpa_reference,
            contact_email=p.contact_email,
            **processors.render(p, None).model_dump(
                include={
                    "transfer",
                    "tia_reference",
                    "sub_processors",
                    "dpa_signed_on",
                    "dpa_expires_on",
                    "ended_at",
                }
            ),
            safeguard=processors.safeguard(p),
        )

    activities = []
    for purpose in (PurposeRead.model_validate(p) for p in await catalog.list_purposes(session)):
        recipients = sorted((entry(r) for r in received.get(purpose.code, ())), key=lambda r: r.name)
        activities.append(
            ActivityEntry(
                purpose=purpose.code,
                name=purpose.name,
                description=purpose.description,
                legal_basis=purpose.legal_basis,
                data_categories=list(purpose.categories),
                subject_categories=list(purpose.subject_categories),
                recipients=recipients,
                third_country_transfers=[
                    f"{r.name} ({r.country}): {r.safeguard}" for r in recipients if r.third_country
                ],
                retention=purpose.retention.model_dump(mode="json"),
                retention_by_category={
                    c: r.model_dump(mode="json") for c, r in purpose.retention_by_category.items()
                },
                assessments=_assessments(purpose),
            )
        )
    controller = catalog.controller(settings)
    by_status = await breaches.register_summary(session)
    return RecordOfProcessing(
        generated_at=utc_now(),
        controller=controller,
        data_protection_contact=controller.contact_email,
        activities=activities,
        processors=[entry(p) for p in registry],
        transfers=processors.transfers_of(list(registry.values())),
        security_measures=security_measures(settings),
        breach_register=BreachRegisterEntry(
            kept=True,
            retention=breaches.RETENTION,
            total=sum(by_status.values()),
            by_status=by_status,
        ),
    )


def to_csv(record: RecordOfProcessing) -> str:
    """One row per processing activity, with the controller and the measures on each: a spreadsheet's view."""
    text = io.StringIO()
    writer = csv_safe.Writer(text)  # no cell a spreadsheet would run as a formula
    writer.writerow(
        [
            "controller",
            "contact",
            "purpose",
            "name_sv",
            "name_en",
            "legal_basis",
            "data_categories",
            "subject_categories",
            "recipients",
            "third_country_transfers",
            "retention",
            "retention_by_category",
            "lia",
            "dpia",
            "security_measures",
            "transfers",
            "breach_register",
        ]
    )
    # The record as a whole, repeated on each row as the measures are: every third-country transfer the
    # registry holds (onward transfers to sub-processors too), and the breach register (Art. 33(5)).
    transfers = "; ".join(
        f"{t.recipient} ({t.country}{f', via {t.via}' if t.via else ''}): {t.safeguard}"
        + (f" (ended {rfc3339(t.ended_at)})" if t.ended_at else "")
        for t in record.transfers
    )
    register = record.breach_register
    by_status = ", ".join(f"{status} {n}" for status, n in sorted(register.by_status.items()))
    breach_register = (
        f"Register kept (Art. 33(5), GET /v1/breaches). {register.retention} "
        f"Breaches held: {register.total}" + (f" ({by_status})." if by_status else ".")
    )
    for a in record.activities:
        writer.writerow(
            [
                record.controller.name,
                record.data_protection_contact,
                a.purpose,
                a.name.sv,
                a.name.en,
                a.legal_basis,
                "; ".join(a.data_categories),
                "; ".join(a.subject_categories),
                "; ".join(f"{r.name} ({r.country}, DPA {r.dpa_reference})" for r in a.recipients),
                "; ".join(a.third_country_transfers),
                a.retention.get("description", {}).get("en", ""),
                "; ".join(
                    f"{c}: {r.get('description', {}).get('en', '')}"
                    for c, r in a.retention_by_category.items()
                ),
                f"{a.assessments.lia_reference} ({a.assessments.lia_outcome})"
                if a.assessments.lia_reference
                else ("MISSING" if a.assessments.lia_required else ""),
                a.assessments.dpia_reference or ("MISSING" if a.assessments.high_risk else ""),
                " | ".join(record.security_measures),
                transfers,
                breach_register,
            ]
        )
    return text.getvalue()
