"""UTC time, and the calendar arithmetic the statutory deadlines need."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

# Statutory deadlines run on the Swedish calendar: a request received at 00:30 on 1 March in Stockholm was
# received in March, whatever the UTC date.
SWEDEN = ZoneInfo("Europe/Stockholm")


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (naive values are taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """The API's timestamp form, in UTC with a Z (`2026-11-25T10:00:00Z`): responses and webhook payloads."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


def add_months(value: datetime, months: int) -> datetime:
    """Same day `months` later, clamped to the month's last day (31 January + 1 → 28/29 February)."""
    month_index = value.month - 1 + months
    year, month = value.year + month_index // 12, month_index % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


_PERIOD = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?")


def add_period(moment: datetime, period: str | None, *, sign: int = 1) -> datetime:
    """`moment` plus (or, with sign=-1, less) an ISO 8601 period of years, months and days."""
    match = _PERIOD.fullmatch(period or "P0D")
    if match is None:
        raise ValueError(f"not an ISO 8601 period in years, months and days: {period!r}")
    years, months, days = (int(part or 0) for part in match.groups())
    return add_months(moment, sign * (12 * years + months)) + sign * timedelta(days=days)


def add_calendar_months(value: datetime, months: int, zone: ZoneInfo = SWEDEN) -> datetime:
    """`add_months` on the local calendar of `zone` (same local time of day), returned in UTC."""
    return add_months(value.astimezone(zone), months).astimezone(UTC)


def end_of_year(year: int) -> datetime:
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)
