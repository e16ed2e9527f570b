"""The privacy notice by e-mail, in Swedish or English: plain text, with links to the notice and to the
privacy center."""

from __future__ import annotations

from app.core.mail import Mail

_NOT_FROM_YOU = {
    "sv": (
        "Information om hur vi behandlar dina personuppgifter",
        "Vi på WeSafe IT har fått uppgifter om dig från en annan källa än dig själv, till exempel ett "
        "offentligt register. Enligt dataskyddsförordningen ska vi då berätta vilka vi är, varför vi "
        "behandlar uppgifterna, varifrån de kommer och vilka rättigheter du har.",
    ),
    "en": (
        "How we process your personal data",
        "WeSafe IT has obtained data about you from a source other than yourself, such as a public "
        "register. The General Data Protection Regulation requires us to tell you who we are, why we "
        "process the data, where it comes from and what your rights are.",
    ),
}
_CHANGED = {
    "sv": (
        "Vi har uppdaterat vår integritetspolicy",
        "Vi har ändrat delar av vår integritetspolicy som rör dig. Läs den nya versionen för att se vad "
        "som gäller. Om du har gett ett samtycke som berörs av ändringen kan du när som helst ge det på "
        "nytt eller återkalla det.",
    ),
    "en": (
        "We have updated our privacy notice",
        "We have changed parts of our privacy notice that concern you. Please read the new version to "
        "see what applies. If you have given consent that the change concerns, you can give it again or "
        "withdraw it at any time.",
    ),
}
_GIVEN = {
    "sv": (
        "Så behandlar vi dina personuppgifter",
        "Här är WeSafe IT:s integritetspolicy. Den beskriver vilka uppgifter vi behandlar om dig, varför, "
        "hur länge vi sparar dem och vilka rättigheter du har.",
    ),
    "en": (
        "How we process your personal data",
        "Here is WeSafe IT's privacy notice. It describes what data we process about you, why, how long "
        "we keep it and what your rights are.",
    ),
}
_LINKS = {
    "sv": (
        "Integritetspolicyn (version {version}): {notice}\n"
        "I integritetscentret ser du dina uppgifter och samtycken, och där kan du utöva dina rättigheter: "
        "{center}\n\nFrågor besvaras på {contact}.\n\nVänliga hälsningar\nWeSafe IT"
    ),
    "en": (
        "The privacy notice (version {version}): {notice}\n"
        "In the privacy center you can see your data and consents, and exercise your rights: {center}\n\n"
        "Questions are answered at {contact}.\n\nKind regards\nWeSafe IT"
    ),
}
_GREETING = {"sv": "Hej!", "en": "Hello,"}


_BY_REASON = {"not_from_subject": _NOT_FROM_YOU, "notice_changed": _CHANGED}


def notice(to: str, *, reason: str | None, version: str, language: str, base_url: str, contact: str) -> Mail:
    """The mail giving a subject the notice: why it is sent (what it was owed for, if anything), and where the
    notice and the privacy center are."""
    title, text = _BY_REASON.get(reason or "", _GIVEN)[language]
    links = _LINKS[language].format(
        version=version,
        notice=f"{base_url}/privacy-center/notice/{version}?lang={language}",
        center=f"{base_url}/privacy-center?lang={language}",
        contact=contact,
    )
    return Mail(to=to, subject=title, body=f"{_GREETING[language]}\n\n{text}\n\n{links}\n")
