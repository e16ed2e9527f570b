"""The first privacy notice, in Swedish and English.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:45:00+00:00

"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSION = "2026-11"
EFFECTIVE_FROM = datetime(2026, 11, 1, tzinfo=UTC)

policy_version = sa.table(
    "policy_version",
    sa.column("version", sa.String),
    sa.column("effective_from", sa.DateTime(timezone=True)),
    sa.column("published_at", sa.DateTime(timezone=True)),
    sa.column("published_by", sa.String),
    sa.column("sections", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def _section(id_: str, sv: tuple[str, str], en: tuple[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    return {"id": id_, "title": sv[0], "body": sv[1]}, {"id": id_, "title": en[0], "body": en[1]}


SECTIONS = [
    _section(
        "controller",
        ("Vem ansvarar för dina uppgifter",
         "WeSafe IT är personuppgiftsansvarig. Det betyder att vi bestämmer varför och hur dina "
         "personuppgifter behandlas och att vi svarar för att dina rättigheter respekteras. Frågor om "
         "hur vi hanterar dina uppgifter, och begäran om att utöva dina rättigheter, skickar du till "
         "dataskydd@wesafe.se. Övriga kontaktvägar finns på www.wesafe.se."),
        ("Who is responsible for your data",
         "WeSafe IT is the controller of your personal data. We decide why and how it is processed, and "
         "we answer for your rights being respected. Send questions about how we handle your data, and "
         "requests to exercise your rights, to dataskydd@wesafe.se. Other ways to reach us are listed on "
         "www.wesafe.se."),
    ),
    _section(
        "categories",
        ("Vilka uppgifter vi behandlar",
         "Beroende på hur du använder våra tjänster kan vi behandla: namn, adress, e-postadress, "
         "telefonnummer, titel, användarnamn, fotografier, betalkorts-, kreditkorts- och andra "
         "bankuppgifter, uppgifter som du frivilligt lämnar till oss, innehåll som du själv publicerar "
         "samt IP-adresser. Vi samlar aldrig in fler uppgifter än vad ändamålet kräver, och väljer de "
         "minst känsliga uppgifter som räcker."),
        ("What data we process",
         "Depending on how you use our services, we may process: name, address, e-mail address, phone "
         "number, title, username, photographs, payment card, credit card and other banking details, "
         "information you choose to give us, content you publish yourself, and IP addresses. We never "
         "collect more than a purpose needs, and choose the least sensitive data that will do."),
    ),
    _section(
        "sources",
        ("Varifrån uppgifterna kommer",
         "Oftast från dig själv: när du lämnar uppgifter direkt till oss, besöker vår webbplats, anlitar "
         "någon av våra medarbetare, anmäler dig till en kurs, ett seminarium, ett nyhetsbrev eller ett "
         "annat utskick, svarar på en enkät eller undersökning, eller på annat sätt kontaktar oss, till "
         "exempel när du söker jobb hos oss eller besöker oss. Vissa uppgifter hämtar vi från offentliga "
         "register."),
        ("Where the data comes from",
         "Mostly from you: when you give us information directly, visit our website, engage one of our "
         "staff, sign up for a course, a seminar, a newsletter or another mailing, answer a survey or "
         "questionnaire, or contact us in another way, for example when you apply for a job with us or "
         "visit us. Some data comes from public registers."),
    ),
    _section(
        "purposes",
        ("Varför vi behandlar uppgifterna och med vilken rätt",
         "Vi behandlar personuppgifter bara när vi har en laglig grund. För att leverera tjänsterna du har "
         "avtalat om (avtal). För fakturering och bokföring (rättslig förpliktelse). För kundservice och "
         "uppföljning (berättigat intresse, som du kan invända mot). För direktmarknadsföring, nyhetsbrev "
         "och kund- och marknadsanalys med cookies (samtycke). Den aktuella förteckningen över ändamål, "
         "rättslig grund och lagringstid finns alltid i vår katalog över ändamål."),
        ("Why we process the data, and on what basis",
         "We process personal data only on a legal basis. To deliver the services you have agreed to "
         "(contract). For invoicing and bookkeeping (legal obligation). For customer support and follow-up "
         "(legitimate interest, which you can object to). For direct marketing, newsletters and customer "
         "and market analysis with cookies (consent). The current list of purposes, legal bases and "
         "retention periods is always available in our catalog of purposes."),
    ),
    _section(
        "recipients",
        ("Vilka som får ta del av uppgifterna",
         "Vi lämnar bara ut personuppgifter när du har samtyckt till det eller när det behövs för att "
         "uppfylla avtal eller lag. Ibland behöver andra företag vissa uppgifter för att vi ska kunna "
         "leverera en tjänst. De får dem först efter att ha skrivit under ett sekretess- och "
         "biträdesavtal, och de har samma skyldigheter mot dig som vi. Varje utlämnande registreras, så att "
         "vi kan tala om för dig vem som har fått dina uppgifter och meddela dem om du får uppgifterna "
         "rättade eller raderade."),
        ("Who receives the data",
         "We disclose personal data only with your consent or when a contract or the law requires it. "
         "Sometimes other companies need some data for us to deliver a service. They receive it only after "
         "signing a confidentiality and data processing agreement, and they owe you the same obligations we "
         "do. Every disclosure is recorded, so that we can tell you who received your data and inform them "
         "when your data is rectified or erased."),
    ),
    _section(
        "retention",
        ("Hur länge vi sparar uppgifterna",
         "Vi sparar dina uppgifter så länge du är kund hos oss, och i övrigt bara så länge ett ändamål "
         "kräver det. När kundrelationen upphör raderas eller anonymiseras uppgifterna inom rimlig tid, "
         "enligt lagringstiden för varje ändamål. Uppgifter som samlats in för fakturering sparas så länge "
         "bokföringslagen kräver, det vill säga till utgången av det sjunde året efter det år de samlades "
         "in."),
        ("How long we keep the data",
         "We keep your data for as long as you are our customer, and otherwise only as long as a purpose "
         "requires. When the customer relationship ends, the data is deleted or anonymized within a "
         "reasonable time, following each purpose's retention period. Data collected for invoicing is kept "
         "as long as the Bookkeeping Act requires: until the end of the seventh year after the year it was "
         "collected."),
    ),
    _section(
        "security",
        ("Hur vi skyddar uppgifterna",
         "Bara de medarbetare som behöver uppgifterna i sitt arbete får tillgång till dem. Känsliga "
         "uppgifter, som betalkortsuppgifter, omfattas av särskilda behörighetskontroller, lagras krypterade "
         "och visas maskerade. Varje läsning och ändring av personuppgifter loggas i en logg som inte kan "
         "ändras i efterhand utan att det märks."),
        ("How we protect the data",
         "Only staff who need the data for their work can access it. Sensitive data, such as payment card "
         "details, is under stricter access control, stored encrypted and shown masked. Every read and "
         "change of personal data is recorded in a log that cannot be altered afterwards without it "
         "showing."),
    ),
    _section(
        "rights",
        ("Dina rättigheter",
         "Du har rätt att få ett registerutdrag över de uppgifter vi behandlar om dig, att få felaktiga "
         "uppgifter rättade, att få uppgifter raderade (utom sådant som lag kräver att vi sparar), att "
         "begränsa behandlingen, att invända mot behandling som grundar sig på berättigat intresse och att "
         "få ut dina uppgifter i ett maskinläsbart format. Mot direktmarknadsföring kan du alltid invända, "
         "och då upphör den. Ett samtycke kan du återkalla när som helst, lika enkelt som du gav det. Vi "
         "svarar på din begäran inom en månad; i undantagsfall kan tiden förlängas med två månader, och då "
         "får du veta varför."),
        ("Your rights",
         "You have the right to a copy of the data we process about you, to have inaccurate data "
         "rectified, to have data erased (except what the law requires us to keep), to restrict "
         "processing, to object to processing based on legitimate interest, and to receive your data in a "
         "machine-readable format. You can always object to direct marketing, and it then stops. You can "
         "withdraw a consent at any time, as easily as you gave it. We answer your request within one "
         "month; in exceptional cases this can be extended by two months, and you will be told why."),
    ),
    _section(
        "complaints",
        ("Klagomål",
         "Om du anser att vi behandlar dina personuppgifter felaktigt kan du lämna klagomål till "
         "Integritetsskyddsmyndigheten (IMY, tidigare Datainspektionen), www.imy.se. Hör gärna av dig "
         "till oss först, så försöker vi rätta till det."),
        ("Complaints",
         "If you believe we process your personal data wrongly, you can complain to the Swedish Authority "
         "for Privacy Protection (Integritetsskyddsmyndigheten, IMY, formerly Datainspektionen), "
         "www.imy.se. Do get in touch with us first, and we will try to put it right."),
    ),
]


def upgrade() -> None:
    op.bulk_insert(policy_version, [{
        "version": VERSION,
        "effective_from": EFFECTIVE_FROM,
        "published_at": datetime.now(UTC),
        "published_by": "migration",
        "sections": {"sv": [sv for sv, _ in SECTIONS], "en": [en for _, en in SECTIONS]},
    }])


def downgrade() -> None:
    op.execute(policy_version.delete().where(policy_version.c.version == VERSION))
