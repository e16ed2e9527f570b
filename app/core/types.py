"""Column and field types shared by every domain."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from app.core.time import as_utc


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite, naive values read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


# JSONB where the database has it.
JSONColumn = JSON().with_variant(JSONB(), "postgresql")

# Text that every database can store: no NUL, no lone surrogates (PostgreSQL refuses both).
# At least one visible character, and no NUL.
VISIBLE_TEXT = r"^[^\x00]*\S[^\x00]*$"
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


# Non-blank text of bounded length that every database can store, stored without surrounding spaces.
_STORABLE, _STRIPPED = AfterValidator(_storable), AfterValidator(str.strip)
Text40 = Annotated[str, StringConstraints(max_length=40, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text64 = Annotated[str, StringConstraints(max_length=64, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text100 = Annotated[str, StringConstraints(max_length=100, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text200 = Annotated[str, StringConstraints(max_length=200, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text500 = Annotated[str, StringConstraints(max_length=500, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text1000 = Annotated[str, StringConstraints(max_length=1000, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text2000 = Annotated[str, StringConstraints(max_length=2000, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text5000 = Annotated[str, StringConstraints(max_length=5000, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text10000 = Annotated[str, StringConstraints(max_length=10000, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]
Text20000 = Annotated[str, StringConstraints(max_length=20000, pattern=VISIBLE_TEXT), _STORABLE, _STRIPPED]


# An e-mail address: dot-atom local part, a domain with a letters-only top-level label. One regular
# expression serves as validation and as the documented schema, so the two cannot disagree.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
Email = Annotated[
    str,
    Field(
        max_length=254,
        pattern=EMAIL_PATTERN,
        examples=["anna.svensson@example.se"],
        description="An e-mail address (ASCII).",
    ),
]


def reject_null(value: Any) -> Any:
    """For fields that may be left out but not set to null (a partial update): null is not a value."""
    if value is None:
        raise ValueError("null is not a value here; leave the field out to keep it as it is")
    return value


def untitled_refs(schema: dict[str, Any]) -> None:
    """A model's JSON schema, its `X | None` fields documented as plain `X` references (without the title
    pydantic gives the union), as partial updates are: a field is there or left out, never null."""
    for prop in schema.get("properties", {}).values():
        if "$ref" in prop:
            prop.pop("title", None)


def _to_utc(value: datetime) -> datetime:
    try:
        return as_utc(value)
    except OverflowError as exc:  # year 1 or 9999 with an offset
        raise ValueError("timestamp out of range") from exc


def _text_or_datetime(value: Any) -> Any:
    # Lax validation would take a number as a Unix time; the contract says an RFC 3339 string.
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 timestamp string")
    return value


# RFC 3339 in UTC on the way out (Z suffix), any offset accepted on the way in. Documented as a date-time both
# ways: the serializer returns text, which pydantic would otherwise document as a plain string.
UTCTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_text_or_datetime),
    AfterValidator(_to_utc),
    PlainSerializer(
        lambda v: as_utc(v).isoformat().replace("+00:00", "Z"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


# Every constraint gets a predictable name, so migrations can drop and recreate it on any database.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
