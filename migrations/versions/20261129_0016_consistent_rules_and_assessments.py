"""Compliance rules that agree: e-mail unsubscribes withdraw e-mail consents, purposes for every source the policy names, and per-purpose assessments (LIA, DPIA).

Purposes gain the channels they are sent by (an opt-out of every one of them withdraws the purpose's consent),
their declared recipients (what a consent receipt's `thirdPartyDisclosure` says), and their assessments: a
legitimate-interest assessment (reference and outcome), required before a `legitimate_interest` purpose is
used in decisions, and a DPIA reference for a purpose marked high-risk. The default catalog gains purposes for
courses, surveys, job applications, office visits and security, in a new notice version.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 06:00:00.000000+00:00

"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channels', JSON, nullable=True))
        batch_op.add_column(sa.Column('recipients', JSON, nullable=True))
        batch_op.add_column(sa.Column('lia_reference', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('lia_outcome', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('high_risk', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('dpia_reference', sa.String(length=200), nullable=True))
    op.execute(purpose.update().values(channels=[], recipients=[]))
    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.alter_column('channels', existing_type=JSON, nullable=False)
        batch_op.alter_column('recipients', existing_type=JSON, nullable=False)
    _seed()


def downgrade() -> None:
    _unseed()
    with op.batch_alter_table('purpose', schema=None) as batch_op:
        batch_op.drop_column('dpia_reference')
        batch_op.drop_column('high_risk')
        batch_op.drop_column('lia_outcome')
        batch_op.drop_column('lia_reference')
        batch_op.drop_column('recipients')
        batch_op.drop_column('channels')


# --- data: frozen here on purpose (a data migration records what the catalog was, whatever the code becomes)

NOTICE_VERSION = "2026-11-29"
PREVIOUS_NOTICE = "2026-11-28"
EFFECTIVE_FROM = datetime(2026, 11, 29, tzinfo=UTC)

purpose = sa.table(
    "purpose",
    sa.column("code", sa.String), sa.column("name", JSON), sa.column("description", JSON),
    sa.column("legal_basis", sa.String), sa.column("retention", JSON), sa.column("retention_by_category", JSON),
    sa.column("categories", JSON), sa.column("subject_categories", JSON), sa.column("gpc", sa.Boolean),
    sa.column("channels", JSON), sa.column("recipients", JSON), sa.column("lia_reference", sa.String),
    sa.column("lia_outcome", sa.String), sa.column("high_risk", sa.Boolean), sa.column("dpia_reference", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)), sa.column("updated_at", sa.DateTime(timezone=True)),
)
policy_version = sa.table(
    "policy_version",
    sa.column("version", sa.String), sa.column("effective_from", sa.DateTime(timezone=True)),
    sa.column("published_at", sa.DateTime(timezone=True)), sa.column("published_by", sa.String),
    sa.column("sections", JSON),
)
catalog_version = sa.table("catalog_version", sa.column("id", sa.Integer), sa.column("version", sa.Integer))

# The existing purposes: by which channels each is sent, who else receives its data, and the assessment the
# legitimate-interest purpose rests on (so that decisions keep allowing it).
EXISTING = {
    "newsletter": {"channels": ["email"]},
    "marketing": {"channels": ["email", "sms", "phone", "post"],
                  "recipients": ["Meta Platforms Ireland", "LinkedIn Ireland"]},
    "customer_support": {"lia_reference": "LIA-2026-01 Kundservice", "lia_outcome": "approved"},
}


def _retention(clock: str, period: str | None, action: str, sv: str, en: str) -> dict[str, object]:
    rule: dict[str, object] = {"clock": clock, "action": action, "description": {"sv": sv, "en": en}}
    if period is not None:
        rule["period"] = period
    return rule


NEW_PURPOSES = [
    {
        "code": "courses",
        "name": {"sv": "Kurser och seminarier", "en": "Courses and seminars"},
        "description": {
            "sv": "Att ta emot din anmälan till en kurs eller ett seminarium, skicka praktisk information inför "
                  "tillfället, genomföra det och utfärda intyg.",
            "en": "Taking your registration for a course or seminar, sending practical information before it, "
                  "holding it and issuing certificates.",
        },
        "legal_basis": "contract",
        "retention": _retention(
            "after_collection", "P24M", "delete",
            "Raderas 24 månader efter anmälan.", "Deleted 24 months after registration."),
        "categories": ["name", "email", "phone", "title"],
        "subject_categories": ["course_participants"],
    },
    {
        "code": "surveys",
        "name": {"sv": "Enkäter och undersökningar", "en": "Surveys and questionnaires"},
        "description": {
            "sv": "Att samla in och sammanställa svar som du väljer att lämna i våra enkäter, så att vi kan "
                  "förbättra tjänsterna. Det är frivilligt att svara.",
            "en": "Collecting and compiling the answers you choose to give in our surveys, so that we can "
                  "improve our services. Answering is voluntary.",
        },
        "legal_basis": "consent",
        "retention": _retention(
            "after_collection", "P12M", "anonymize",
            "Svaren anonymiseras 12 månader efter att de lämnats.",
            "Answers are anonymized 12 months after they were given."),
        "categories": ["name", "email", "self_reported"],
        "subject_categories": ["customers", "contacts"],
    },
    {
        "code": "job_applications",
        "name": {"sv": "Rekrytering", "en": "Recruitment"},
        "description": {
            "sv": "Att ta emot och bedöma din ansökan när du söker arbete hos oss, och att kontakta dig under "
                  "rekryteringen.",
            "en": "Receiving and assessing your application when you apply for a job with us, and contacting "
                  "you during the recruitment.",
        },
        "legal_basis": "contract",
        "retention": _retention(
            "after_collection", "P24M", "delete",
            "Raderas 24 månader efter ansökan, eftersom en sökande enligt diskrimineringslagen (2008:567, "
            "6 kap.) kan väcka talan om diskriminering inom den tiden.",
            "Deleted 24 months after the application, since under the Swedish Discrimination Act (2008:567, "
            "ch. 6) an applicant may bring a discrimination claim within that time."),
        "categories": ["name", "address", "email", "phone", "title", "photo", "self_reported", "user_content"],
        "subject_categories": ["job_applicants"],
    },
    {
        "code": "office_visits",
        "name": {"sv": "Besök hos oss", "en": "Visiting our offices"},
        "description": {
            "sv": "Att ta emot dig när du besöker våra kontor: boka besöket, meddela den du ska träffa och "
                  "lämna ut en besöksbricka.",
            "en": "Receiving you when you visit our offices: booking the visit, telling the person you are "
                  "meeting, and issuing a visitor badge.",
        },
        "legal_basis": "legitimate_interest",
        "lia_reference": "LIA-2026-02 Besöksmottagning",
        "lia_outcome": "approved",
        "retention": _retention(
            "after_collection", "P30D", "delete",
            "Raderas 30 dagar efter besöket.", "Deleted 30 days after the visit."),
        "categories": ["name", "email", "phone", "title"],
        "subject_categories": ["contacts", "customers"],
    },
    {
        "code": "security",
        "name": {"sv": "Säkerhet i våra lokaler", "en": "Security of our premises"},
        "description": {
            "sv": "Att föra passage- och besöksloggar, så att vi vet vem som är i lokalerna och kan utreda "
                  "incidenter som inbrott eller stölder.",
            "en": "Keeping entry and visitor logs, so that we know who is on the premises and can investigate "
                  "incidents such as break-ins or theft.",
        },
        "legal_basis": "legitimate_interest",
        "lia_reference": "LIA-2026-03 Passage- och besöksloggar",
        "lia_outcome": "approved",
        "high_risk": True,
        "dpia_reference": "DPIA-2026-01 Passagesystem",
        "retention": _retention(
            "after_collection", "P12M", "delete",
            "Loggarna raderas 12 månader efter att de skapades, om de inte behövs för en pågående utredning.",
            "The logs are deleted 12 months after they were made, unless needed for an ongoing investigation."),
        "categories": ["name", "photo"],
        "subject_categories": ["contacts", "customers"],
    },
]

# The new notice's changed sections: where the data comes from (now with a purpose for each source) and why.
SECTIONS = {
    "sources": {
        "sv": ("Varifrån uppgifterna kommer",
               "De flesta uppgifter får vi av dig: när du lämnar dem direkt till oss, använder webbplatsen, "
               "anlitar någon av våra medarbetare, anmäler dig till en kurs, ett seminarium, ett nyhetsbrev "
               "eller något annat utskick, svarar på en enkät, söker arbete hos oss, besöker våra kontor eller "
               "kontaktar oss på annat sätt. Vissa uppgifter hämtar vi ur offentliga register. Varje sådan "
               "källa hör till ett ändamål i vår förteckning över ändamål (/v1/purposes)."),
        "en": ("Where the data comes from",
               "Most data comes from you: when you give it to us directly, use the website, engage one of our "
               "staff, sign up for a course, a seminar, a newsletter or another mailing, answer a survey, "
               "apply for a job with us, visit our offices or contact us in some other way. Some data comes "
               "from public registers. Each of these sources belongs to a purpose in our list of purposes "
               "(/v1/purposes)."),
    },
    "purposes": {
        "sv": ("Varför vi behandlar uppgifterna och med vilken rätt",
               "Vi behandlar personuppgifter bara med stöd av en rättslig grund. Avtal: för att leverera "
               "tjänsterna, för kurser och seminarier du anmäler dig till, och för rekrytering när du söker "
               "arbete hos oss. Rättslig förpliktelse: för fakturering och bokföring. Berättigat intresse, "
               "som du kan invända mot: för kundservice, för att ta emot besökare och för passage- och "
               "besöksloggar som skyddar våra lokaler. Varje sådant intresse har vi vägt mot ditt i en "
               "dokumenterad intresseavvägning innan behandlingen började. Samtycke: för direktmarknadsföring, "
               "nyhetsbrev, enkäter och statistik med cookies. Avregistrerar du dig från e-post upphör de "
               "utskick som bara går med e-post, och samtycket till dem räknas som återkallat. För varje "
               "ändamål anger förteckningen (/v1/purposes) rättslig grund, lagringstid, och den lag som "
               "bestämmer tiden när det finns en."),
        "en": ("Why we process the data, and on what basis",
               "We process personal data only on a legal basis. Contract: to deliver the services, for the "
               "courses and seminars you sign up for, and for recruitment when you apply for a job with us. "
               "Legal obligation: for invoicing and bookkeeping. Legitimate interest, which you can object "
               "to: for customer support, for receiving visitors, and for the entry and visitor logs that "
               "protect our premises. We weighed each such interest against yours in a documented assessment "
               "before the processing began. Consent: for direct marketing, newsletters, surveys and "
               "statistics cookies. If you unsubscribe from e-mail, the mailings sent only by e-mail stop and "
               "your consent to them counts as withdrawn. For each purpose the list (/v1/purposes) gives the "
               "legal basis, the retention period, and the law that sets the period where there is one."),
    },
}


def _with_sections(sections: list[dict[str, str]], lang: str) -> list[dict[str, str]]:
    """The earlier notice's sections, with the changed ones replaced in place (or added last)."""
    changed = {sid: {"id": sid, "title": texts[lang][0], "body": texts[lang][1]} for sid, texts in SECTIONS.items()}
    kept = [changed.pop(s["id"], s) for s in sections]
    return [*kept, *changed.values()]


def _seed() -> None:
    now = datetime.now(UTC)
    connection = op.get_bind()
    for code, values in EXISTING.items():
        op.execute(purpose.update().where(purpose.c.code == code).values(**values))
    op.bulk_insert(purpose, [
        {"retention_by_category": {}, "gpc": False, "channels": [], "recipients": [], "lia_reference": None,
         "lia_outcome": None, "high_risk": False, "dpia_reference": None, **p, "created_at": now, "updated_at": now}
        for p in NEW_PURPOSES
    ])
    previous = connection.execute(
        sa.select(policy_version.c.sections).where(policy_version.c.version == PREVIOUS_NOTICE)
    ).scalar_one_or_none() or {"sv": [], "en": []}
    op.bulk_insert(policy_version, [{
        "version": NOTICE_VERSION, "effective_from": EFFECTIVE_FROM, "published_at": now,
        "published_by": "migration 0016",
        "sections": {lang: _with_sections(previous.get(lang, []), lang) for lang in ("sv", "en")},
    }])
    op.execute(catalog_version.update().where(catalog_version.c.id == 1)
               .values(version=catalog_version.c.version + 1))


def _unseed() -> None:
    codes = [p["code"] for p in NEW_PURPOSES]
    for table in ("consent_state", "consent_event"):
        rows = sa.table(table, sa.column("purpose", sa.String), sa.column("policy_version", sa.String))
        op.execute(rows.delete().where(sa.or_(rows.c.purpose.in_(codes), rows.c.policy_version == NOTICE_VERSION)))
    op.execute(policy_version.delete().where(policy_version.c.version == NOTICE_VERSION))
    op.execute(purpose.delete().where(purpose.c.code.in_(codes)))
    op.execute(catalog_version.update().where(catalog_version.c.id == 1)
               .values(version=catalog_version.c.version + 1))
