"""When an item of personal data expires, and what then happens to it: pure functions over the catalog's
rules.

Clocks: `after_collection` and `after_relationship_end` (a period), `until_withdrawn` (consent purposes: the
data goes when consent is withdrawn, after a grace period; data without any consent goes the same way from
its collection), `bookkeeping` (to the end of the seventh calendar year after the year of collection,
Bokföringslagen 7 kap. 2 §). Actions: `delete` or `anonymize`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.catalog.schemas import RetentionAction, RetentionClock
from app.consent.schemas import ConsentStatus
from app.core.time import add_period, end_of_year


def rule_for(purpose: Any, category: str) -> dict[str, Any]:
    """The category's own rule where the purpose has one, else the purpose's."""
    rule: dict[str, Any] = (purpose.retention_by_category or {}).get(category) or purpose.retention
    return rule


def describe(rule: dict[str, Any]) -> str:
    return " ".join(part for part in (rule["clock"], rule.get("period"), rule["action"]) if part)


@dataclass(frozen=True)
class Verdict:
    action: str | None  # delete | anonymize | None: kept
    rule: str
    reason: str  # why kept (empty when acted on)
    expires_at: datetime | None


def judge(
    *,
    rule: dict[str, Any],
    collected_at: datetime,
    relationship_ended_at: datetime | None,
    consent: tuple[str, datetime] | None,
    retained_until: datetime | None,
    now: datetime,
) -> Verdict:
    """What to do with one item now. `consent` is (status, occurred_at) of the subject's consent for the
    item's purpose; `retained_until` is set on items an erasure kept for bookkeeping."""
    if retained_until is not None:  # an erased subject's bookkeeping records: they go when the law lets them
        expires, label = retained_until, "bookkeeping (kept at erasure) delete"
        return Verdict(
            RetentionAction.delete if now >= expires else None,
            label,
            "" if now >= expires else "not yet expired",
            expires,
        )
    clock, action, label = rule["clock"], rule["action"], describe(rule)
    if clock == RetentionClock.after_collection:
        expires = add_period(collected_at, rule["period"])
    elif clock == RetentionClock.after_relationship_end:
        if relationship_ended_at is None:
            return Verdict(None, label, "customer relationship ongoing", None)
        expires = add_period(relationship_ended_at, rule["period"])
    elif clock == RetentionClock.until_withdrawn:
        if consent is not None and consent[0] == ConsentStatus.granted:
            return Verdict(None, label, "consent granted", None)
        since = consent[1] if consent is not None else collected_at
        expires = add_period(since, rule.get("period"))
    elif clock == RetentionClock.bookkeeping:
        expires = end_of_year(collected_at.year + 7)
    else:
        raise ValueError(f"unknown retention clock {clock!r}")
    if now >= expires:
        return Verdict(action, label, "", expires)
    return Verdict(None, label, "not yet expired", expires)
