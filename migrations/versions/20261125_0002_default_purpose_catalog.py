"""Default purpose catalog: what WeSafe processes, on which legal basis, for how long.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:40:00+00:00

"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

purpose = sa.table(
    "purpose",
    sa.column("code", sa.String),
    sa.column("name", JSON),
    sa.column("description", JSON),
    sa.column("legal_basis", sa.String),
    sa.column("retention", JSON),
    sa.column("categories", JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)

# Frozen here on purpose: a data migration records what the catalog was, whatever the code becomes.
PURPOSES = [
    {
        "code": "service",
        "name": {"sv": "Leverans av våra tjänster", "en": "Delivering our services"},
        "description": {
            "sv": "Att fullgöra avtalet med dig: ge dig tillgång till tjänsterna, hålla kontakt om dem och "
                  "hantera ditt konto.",
            "en": "Performing our contract with you: giving you access to the services, keeping in touch "
                  "about them and managing your account.",
        },
        "legal_basis": "contract",
        "retention": {
            "clock": "after_relationship_end", "period": "P12M", "action": "delete",
            "description": {"sv": "Raderas 12 månader efter att kundrelationen upphört.",
                            "en": "Deleted 12 months after the customer relationship ends."},
        },
        "categories": ["name", "address", "email", "phone", "title", "username", "photo", "user_content"],
    },
    {
        "code": "billing",
        "name": {"sv": "Fakturering och bokföring", "en": "Invoicing and bookkeeping"},
        "description": {
            "sv": "Att fakturera dig och att uppfylla bokföringslagens krav på att spara räkenskapsinformation.",
            "en": "Invoicing you, and keeping accounting records as the Swedish Bookkeeping Act requires.",
        },
        "legal_basis": "legal_obligation",
        "retention": {
            "clock": "bookkeeping", "action": "delete",
            "description": {
                "sv": "Sparas till utgången av det sjunde året efter det kalenderår då uppgiften samlades in "
                      "(bokföringslagen 7 kap. 2 §), även om du begär radering.",
                "en": "Kept until the end of the seventh year after the calendar year of collection (Swedish "
                      "Bookkeeping Act, ch. 7 § 2), even if you ask for erasure.",
            },
        },
        "categories": ["name", "address", "email", "payment"],
    },
    {
        "code": "customer_support",
        "name": {"sv": "Kundservice", "en": "Customer support"},
        "description": {
            "sv": "Att hantera ditt ärende när du kontaktar oss, följa upp det och ge bättre service nästa gång "
                  "du hör av dig.",
            "en": "Handling your case when you contact us, following it up, and serving you better the next "
                  "time you get in touch.",
        },
        "legal_basis": "legitimate_interest",
        "retention": {
            "clock": "after_collection", "period": "P24M", "action": "delete",
            "description": {"sv": "Raderas 24 månader efter att uppgiften samlades in.",
                            "en": "Deleted 24 months after collection."},
        },
        "categories": ["name", "email", "phone", "self_reported", "user_content"],
    },
    {
        "code": "marketing",
        "name": {"sv": "Direktmarknadsföring", "en": "Direct marketing"},
        "description": {
            "sv": "Erbjudanden från oss via e-post, sms, telefon eller post. Du kan när som helst tacka nej, "
                  "och ett nej gäller tills du själv ändrar det.",
            "en": "Offers from us by e-mail, text message, phone or post. You can say no at any time, and a no "
                  "stands until you change it yourself.",
        },
        "legal_basis": "consent",
        "retention": {
            "clock": "until_withdrawn", "period": "P30D", "action": "delete",
            "description": {"sv": "Raderas senast 30 dagar efter att samtycket återkallats.",
                            "en": "Deleted at the latest 30 days after consent is withdrawn."},
        },
        "categories": ["name", "address", "email", "phone"],
    },
    {
        "code": "newsletter",
        "name": {"sv": "Nyhetsbrev", "en": "Newsletter"},
        "description": {
            "sv": "Att skicka nyhetsbrev och andra utskick som du har anmält dig till.",
            "en": "Sending the newsletters and mailings you signed up for.",
        },
        "legal_basis": "consent",
        "retention": {
            "clock": "until_withdrawn", "period": "P30D", "action": "delete",
            "description": {"sv": "Raderas senast 30 dagar efter att du avslutat prenumerationen.",
                            "en": "Deleted at the latest 30 days after you unsubscribe."},
        },
        "categories": ["name", "email"],
    },
    {
        "code": "analytics",
        "name": {"sv": "Kund- och marknadsanalys", "en": "Customer and market analysis"},
        "description": {
            "sv": "Att förstå hur webbplatsen och tjänsterna används (cookies för statistik), så att vi kan "
                  "förbättra dem.",
            "en": "Understanding how the website and services are used (statistics cookies), so that we can "
                  "improve them.",
        },
        "legal_basis": "consent",
        "retention": {
            "clock": "after_collection", "period": "P13M", "action": "anonymize",
            "description": {"sv": "Anonymiseras 13 månader efter insamling.",
                            "en": "Anonymized 13 months after collection."},
        },
        "categories": ["ip_address", "username"],
    },
]


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(purpose, [{**p, "created_at": now, "updated_at": now} for p in PURPOSES])


def downgrade() -> None:
    op.execute(purpose.delete().where(purpose.c.code.in_([p["code"] for p in PURPOSES])))
