"""`privacy demo`: a few subjects with personal data, so that a new user has something to look at."""

from __future__ import annotations

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


async def load_demo(settings: Settings) -> str:
    engine = create_engine(settings)
    try:
        async with Runtime.build(settings).sessions(engine)() as session:
            if await subjects.any_registered(session):
                return "the database already holds subjects: demo data not loaded"
            ids = []
            for subject_data, items in DEMO_SUBJECTS:
                subject = await subjects.create_subject(session, subject_data, actor=SYSTEM)
                for item in items:
                    await subjects.add_item(session, subject.id, item, caller=SYSTEM)
                ids.append(str(subject.id))
            await session.commit()
    finally:
        await engine.dispose()
    return (
        "loaded demo subjects:\n"
        + "\n".join(f"  {i}" for i in ids)
        + ('\ntry: privacy token --role staff --sub demo --scope "subjects:read sensitive:read audit:read"')
    )
