"""metav1.Condition lists as plain JSON dicts; the time is an argument (`now`).

`lastTransitionTime` moves only when a condition's status flips; a new reason or message
alone keeps it, as Kubernetes' own `meta.SetStatusCondition` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from rayref.api.models import CONDITION_MESSAGE_MAX_LENGTH, CONDITION_REASON_MAX_LENGTH
from rayref.emr.redaction import redact_text

ConditionStatus = Literal["True", "False", "Unknown"]

SYNCED = "Synced"
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"

_NOT_IN_REASON = re.compile(r"[^A-Za-z0-9_,:]")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC to whole seconds, like metav1.Time."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def safe_reason(text: str, fallback: str = "Unknown") -> str:
    """A valid condition/event reason (CamelCase, `[A-Za-z][A-Za-z0-9_,:]*`) made from text."""
    words = re.split(r"[^A-Za-z0-9_,:]+", text)
    reason = "".join(w[:1].upper() + w[1:] for w in words if w)
    reason = _NOT_IN_REASON.sub("", reason).lstrip("0123456789_,:").rstrip(",:")
    return reason[:CONDITION_REASON_MAX_LENGTH] or fallback


def clip_message(text: str) -> str:
    """A condition message as stored: the redaction rule first (a clipped secret would no
    longer be recognised), then the API server's length."""
    text = redact_text(text)
    if len(text) <= CONDITION_MESSAGE_MAX_LENGTH:
        return text
    return text[: CONDITION_MESSAGE_MAX_LENGTH - 3] + "..."


def get_condition(
    conditions: Sequence[Mapping[str, Any]] | None, type_: str
) -> dict[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == type_:
            return dict(condition)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    observed_generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new list with `type_` set; other conditions keep their place and content."""
    existing = get_condition(conditions, type_)
    if (
        existing is not None
        and existing.get("status") == status
        and existing.get("lastTransitionTime")
    ):
        transition_time = str(existing["lastTransitionTime"])
    else:
        transition_time = format_time(now)
    updated = {
        "type": type_,
        "status": status,
        "observedGeneration": observed_generation,
        "lastTransitionTime": transition_time,
        "reason": safe_reason(reason),
        "message": clip_message(message),
    }
    result: list[dict[str, Any]] = []
    placed = False
    for condition in conditions or ():
        if condition.get("type") == type_:
            if not placed:
                result.append(updated)
                placed = True
        else:
            result.append(dict(condition))
    if not placed:
        result.append(updated)
    return result
