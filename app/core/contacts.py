"""Normalizing contacts, so that the same person's address or number always hashes the same."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-./()]")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_phone(phone: str, *, country_code: str = "46") -> str | None:
    """E.164, or None when it cannot be one. National numbers are Swedish: 070-123 45 67 → +46701234567.

    Accepts +46 70 123 45 67, +46 (0)70-123 45 67, 0046 70 123 45 67 and 070-123 45 67 alike."""
    number = phone.strip().replace("(0)", "")
    number = _SEPARATORS.sub("", number)
    if number.startswith("00"):
        number = "+" + number[2:]
    elif number.startswith("0"):
        number = f"+{country_code}{number[1:]}"
    return number if _E164.match(number) else None
