"""`privacy demo`: a few subjects with personal data, so that a new user has something to look at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.auth.principals import SYSTEM
from app.catalog.schemas import Category, Source
from app.core.config import Settings
from app.core.db import create_engine
from app.runtime import Runtime
from app.subjects import service as subjects
from app.subjects.schemas import DataItemCreate, SubjectCreate

DEMO_SUBJECTS = [
    (
        SubjectCreate(email="anna.svensson@example.se", name="Anna Svensson", external_ref="crm-1001"),
        [
            DataItemCreate(
                category=Category.phone, value="070-123 45 67", source=Source.direct, purpose="service"
            ),
            DataItemCreate(
                category=Category.address,
                value="Storgatan 1, 111 22 Stockholm",
                source=Source.direct,
                purpose="billing",
            ),
            DataItemCreate(
                category=Category.payment,
                value="4111 1111 1111 1111",
                source=Source.direct,
                purpose="billing",
            ),
        ],
    ),
    (
        SubjectCreate(email="erik.lind@example.se", name="Erik Lind", external_ref="crm-1002"),
        [
            DataItemCreate(
                category=Category.email,
                value="erik.lind@example.se",
                source=Source.newsletter_signup,
                purpose="newsletter",
            ),
            DataItemCreate(
                category=Category.ip_address, value="192.0.2.10", source=Source.website, purpose="analytics"
            ),
        ],
    ),
    (
        SubjectCreate(email="sara.nilsson@example.se", name="Sara Nilsson", external_ref="crm-1003"),
        [
            DataItemCreate(
                category=Category.self_reported,
                value="Prefers contact in the afternoon",
                source=Source.contact,
                purpose="customer_support",
            ),
        ],
    ),
]


@dataclass(frozen=True)
class DemoSubject:
    name: str
    email: str
    id: uuid.UUID
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Demo:
    """What `privacy demo` found or did: `loaded` now, or already there; no subjects when the database holds
    other subjects than the demo's (then nothing is loaded)."""

    loaded: bool
    subjects: list[DemoSubject]


async def load_demo(settings: Settings) -> Demo:
    """Load the demo subjects into an empty database; in a database that already holds them, find them."""
    engine = create_engine(settings)
    try:
        async with Runtime.build(settings).sessions(engine)() as session:
            if await subjects.any_registered(session):
                found = []
                for data, items in DEMO_SUBJECTS:
                    subject = await subjects.find_by_email(session, str(data.email))
                    if subject is None:
                        return Demo(loaded=False, subjects=[])
                    found.append(_described(data, items, subject.id))
                return Demo(loaded=False, subjects=found)
            loaded = []
            for data, items in DEMO_SUBJECTS:
                subject = await subjects.create_subject(session, data, actor=SYSTEM)
                for item in items:
                    await subjects.add_item(session, subject.id, item, caller=SYSTEM)
                loaded.append(_described(data, items, subject.id))
            await session.commit()
    finally:
        await engine.dispose()
    return Demo(loaded=True, subjects=loaded)


def _described(data: SubjectCreate, items: list[DataItemCreate], subject_id: uuid.UUID) -> DemoSubject:
    return DemoSubject(
        name=data.name or "",
        email=str(data.email),
        id=subject_id,
        categories=tuple(item.category.value for item in items),
    )


# The first look's token: reading subjects and the audit trail, and nothing sensitive (the card stays masked).
DEMO_SCOPES = "subjects:read audit:read"


def describe(demo: Demo, *, base_url: str, program: str = "privacy") -> str:
    """What `privacy demo` prints: who is there, and commands to run next, ready to paste."""
    if not demo.subjects:
        return "the database already holds other subjects: demo data not loaded (use an empty database)"
    width = max(len(s.name) for s in demo.subjects), max(len(s.email) for s in demo.subjects)
    lines = ["loaded the demo subjects:" if demo.loaded else "the demo subjects are already loaded:", ""]
    lines += [
        f"  {s.name:<{width[0]}}  {s.email:<{width[1]}}  {s.id}  ({', '.join(s.categories)})"
        for s in demo.subjects
    ]
    first = demo.subjects[0]
    lines += [
        "",
        f"next, with the server running (privacy serve) at {base_url}:",
        "",
        f'  TOKEN=$({program} token --role staff --sub demo --scope "{DEMO_SCOPES}")',
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/v1/subjects/{first.id}"',
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/v1/subjects/{first.id}/data"'
        "   # the card is masked",
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/v1/audit-events?subject_id={first.id}"',
        "",
        f"the privacy center: {base_url}/privacy-center, signed in as {first.email};",
        f"in development the login code is at {base_url}/dev/mail",
    ]
    return "\n".join(lines)
