"""What the subject (or, for a request matched to no subject, its requester) is told by e-mail as its request
moves on, in Swedish and English."""

from __future__ import annotations

from datetime import datetime

from app.core.mail import Mail
from app.core.time import SWEDEN
from app.rights_requests.models import RightsRequest

TYPES = {
    "access": ("registerutdrag", "access to your data"),
    "rectification": ("rättelse", "rectification"),
    "erasure": ("radering", "erasure"),
    "restriction": ("begränsning av behandling", "restriction of processing"),
    "objection": ("invändning", "objection"),
    "portability": ("dataportabilitet", "data portability"),
}

COMPLAINT_SV = (
    "Du har rätt att klaga hos Integritetsskyddsmyndigheten (IMY, tidigare Datainspektionen), "
    "www.imy.se, om du anser att vi behandlar dina personuppgifter felaktigt."
)
COMPLAINT_EN = (
    "You have the right to complain to the Swedish Authority for Privacy Protection (IMY, formerly "
    "Datainspektionen), www.imy.se, if you believe we process your personal data wrongly."
)


def _date(moment: datetime) -> str:
    return moment.astimezone(SWEDEN).strftime("%Y-%m-%d")


def _mail(to: str, request: RightsRequest, subject_sv: str, subject_en: str, sv: str, en: str) -> Mail:
    kind_sv, kind_en = TYPES[request.type]
    return Mail(
        to=to,
        subject=f"{subject_sv} / {subject_en}",
        body=f"Hej!\n\n{sv}\n\nÄrende: {kind_sv} ({request.id})\n\n---\n\nHello,\n\n{en}\n\n"
        f"Request: {kind_en} ({request.id})\n\nWeSafe IT, dataskydd@wesafe.se",
    )


def received(to: str, request: RightsRequest) -> Mail:
    due = _date(request.due_at)
    return _mail(
        to,
        request,
        "Vi har tagit emot din begäran",
        "We have received your request",
        f"Vi har tagit emot din begäran och svarar senast {due}.",
        f"We have received your request and will answer by {due}.",
    )


def extended(to: str, request: RightsRequest, reason: str) -> Mail:
    due = _date(request.due_at)
    return _mail(
        to,
        request,
        "Vi behöver mer tid för din begäran",
        "We need more time for your request",
        f"Vi behöver förlänga tiden för att besvara din begäran, till senast {due}. Skäl: {reason}",
        f"We need to extend the time to answer your request, to {due} at the latest. Reason: {reason}",
    )


def rejected(to: str, request: RightsRequest, reason: str) -> Mail:
    return _mail(
        to,
        request,
        "Vi kan inte tillmötesgå din begäran",
        "We cannot grant your request",
        f"Vi kan inte tillmötesgå din begäran. Skäl: {reason}\n\n{COMPLAINT_SV}",
        f"We cannot grant your request. Reason: {reason}\n\n{COMPLAINT_EN}",
    )


def completed(to: str, request: RightsRequest) -> Mail:
    sv, en = {
        "access": (
            "Ditt registerutdrag finns att hämta i integritetscentret.",
            "Your copy of your data is ready in the privacy center.",
        ),
        "portability": (
            "Dina uppgifter finns att hämta i maskinläsbar form i integritetscentret.",
            "Your data is ready in a machine-readable format in the privacy center.",
        ),
        "erasure": (
            "Dina personuppgifter är raderade, utom det som bokföringslagen kräver att vi sparar. Vi har "
            "också bett dem som fått uppgifterna av oss att radera dem.",
            "Your personal data has been erased, except what the Bookkeeping Act requires us to keep. We "
            "have also asked those who received the data from us to erase it.",
        ),
        "restriction": (
            "Behandlingen av dina personuppgifter är nu begränsad.",
            "The processing of your personal data is now restricted.",
        ),
        "objection": (
            "Vi har godtagit din invändning och upphör med behandlingen.",
            "We have accepted your objection and stop the processing.",
        ),
        "rectification": (
            "Dina uppgifter är rättade, och vi har meddelat dem som fått uppgifterna av oss.",
            "Your data has been rectified, and we have told those who received it from us.",
        ),
    }[request.type]
    return _mail(to, request, "Din begäran är genomförd", "Your request has been carried out", sv, en)


def no_data(to: str, request: RightsRequest) -> Mail:
    """The answer to a request from a person about whom nothing is held (a request matched to no subject)."""
    return _mail(
        to,
        request,
        "Vi har inga personuppgifter om dig",
        "We hold no personal data about you",
        "Vi har gått igenom din begäran. WeSafe har inga personuppgifter om dig, så det finns inget mer för "
        f"oss att göra med den.\n\n{COMPLAINT_SV}",
        "We have looked into your request. WeSafe holds no personal data about you, so there is nothing "
        f"more for us to do with it.\n\n{COMPLAINT_EN}",
    )
