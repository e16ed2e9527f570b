"""The mail that tells a subject of a breach that concerns them (GDPR Art. 34(2)): in their language when
it is known, else in Swedish and then English. It says what happened, which of their data, the likely
consequences, what WeSafe has done, what they can do, whom to ask, and where to complain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.mail import Mail
from app.core.time import SWEDEN

CATEGORIES = {
    "name": ("namn", "name"),
    "address": ("adress", "address"),
    "email": ("e-postadress", "e-mail address"),
    "phone": ("telefonnummer", "phone number"),
    "title": ("titel", "job title"),
    "username": ("användarnamn", "username"),
    "photo": ("foto", "photo"),
    "payment": ("betalningsuppgifter", "payment details"),
    "self_reported": ("uppgifter som du själv har lämnat", "information you gave us yourself"),
    "user_content": ("innehåll som du har skapat", "content you created"),
    "ip_address": ("IP-adress", "IP address"),
}

SUBJECTS = {
    "sv": "Viktig information om dina personuppgifter",
    "en": "Important information about your personal data",
}


def _date(moment: datetime) -> str:
    return moment.astimezone(SWEDEN).strftime("%Y-%m-%d")


def _sv(
    notice: dict[str, Any],
    categories: list[str],
    name: str | None,
    when: datetime,
    contact: str,
    controller: str,
) -> str:
    data = ", ".join(CATEGORIES.get(c, (c, c))[0] for c in categories)
    return (
        f"Hej{' ' + name if name else ''}!\n\n"
        f"Vi hör av oss för att en personuppgiftsincident hos {controller} har berört uppgifter om dig. "
        f"Vi fick veta om incidenten den {_date(when)}.\n\n"
        f"Vad som har hänt:\n{notice['what_happened']['sv']}\n\n"
        + (f"Uppgifter om dig som berörs: {data}.\n\n" if data else "")
        + f"Vad det kan innebära för dig:\n{notice['consequences']['sv']}\n\n"
        f"Vad vi har gjort:\n{notice['measures']['sv']}\n\n"
        f"Vad du kan göra:\n{notice['advice']['sv']}\n\n"
        "Har du frågor om incidenten eller om hur vi behandlar dina personuppgifter? "
        f"Kontakta oss på {contact}. Du kan också klaga hos Integritetsskyddsmyndigheten (IMY), "
        "www.imy.se.\n\n"
        f"Med vänliga hälsningar\n{controller}"
    )


def _en(
    notice: dict[str, Any],
    categories: list[str],
    name: str | None,
    when: datetime,
    contact: str,
    controller: str,
) -> str:
    data = ", ".join(CATEGORIES.get(c, (c, c))[1] for c in categories)
    return (
        f"Hello{' ' + name if name else ''},\n\n"
        f"We are writing because a personal data breach at {controller} has affected information about you. "
        f"We became aware of it on {_date(when)}.\n\n"
        f"What happened:\n{notice['what_happened']['en']}\n\n"
        + (f"Your information concerned: {data}.\n\n" if data else "")
        + f"What it may mean for you:\n{notice['consequences']['en']}\n\n"
        f"What we have done:\n{notice['measures']['en']}\n\n"
        f"What you can do:\n{notice['advice']['en']}\n\n"
        f"If you have questions about the breach or about how we process your personal data, contact us at "
        f"{contact}. You may also complain to the Swedish Authority for Privacy Protection (IMY), "
        "www.imy.se.\n\n"
        f"Kind regards\n{controller}"
    )


def breach_mail(
    to: str,
    *,
    language: str | None,
    notice: dict[str, Any],
    categories: list[str],
    name: str | None,
    aware_at: datetime,
    contact: str,
    controller: str,
) -> Mail:
    """The mail in `language` (sv or en), or in both (Swedish first) when it is not known."""
    parts = (notice, categories, name, aware_at, contact, controller)
    if language == "sv":
        return Mail(to=to, subject=SUBJECTS["sv"], body=_sv(*parts))
    if language == "en":
        return Mail(to=to, subject=SUBJECTS["en"], body=_en(*parts))
    return Mail(
        to=to,
        subject=f"{SUBJECTS['sv']} / {SUBJECTS['en']}",
        body=f"{_sv(*parts)}\n\n---\n\n{_en(*parts)}",
    )
