"""A set's status after a sync, a failed listing or while suspended.

Written only when it changed: `lastSyncTime` moves with the rest, never alone, so a set
whose workspace did not change costs no write per interval (as a ref).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rayref.discovery.plan import Plan
from rayref.mirror import conditions as cond
from rayref.mirror.failure import PERMANENT_FAILURES, failure_reason

LISTED = "Listed"
LIMIT_REACHED = "LimitReached"
WITHIN_LIMIT = "WithinLimit"
SUSPENDED = "Suspended"
# The set's name is the value of each ref's rayref.io/set label: at most 63 characters.
NAME_TOO_LONG = "NameTooLong"
# A step of this set's sync raised (contained to the set: observability.faults).
INTERNAL_ERROR = "InternalError"
# The API server refused to create a ref the set built (e.g. a template stored before
# the CRD checked it, a quota, an admission webhook): every further create would too.
REF_CREATE_REFUSED = "RefCreateRefused"
_STALLING = frozenset({NAME_TOO_LONG, INTERNAL_ERROR})
_COUNTS = ("matched", "created", "active", "finished")
Triple = tuple[cond.ConditionStatus, str, str]


@dataclass(frozen=True)
class SetStatusUpdate:
    status: dict[str, Any]
    changed: bool


def _conditions(
    previous: Mapping[str, Any],
    synced: Triple,
    ready: Triple,
    stalled: Triple,
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    conditions = previous.get("conditions") or []
    for type_, (status, reason, message) in (
        (cond.SYNCED, synced),
        (cond.READY, ready),
        (cond.STALLED, stalled),
    ):
        conditions = cond.set_condition(
            conditions, type_, status, reason, message, observed_generation=generation, now=now
        )
    return conditions


def _finish(previous: Mapping[str, Any], status: dict[str, Any], now: datetime) -> SetStatusUpdate:
    before = {k: v for k, v in previous.items() if k != "lastSyncTime"}
    changed = before != status
    if changed or "lastSyncTime" not in previous:
        status["lastSyncTime"] = cond.format_time(now)
        return SetStatusUpdate(status, True)
    status["lastSyncTime"] = previous["lastSyncTime"]
    return SetStatusUpdate(status, False)


def synced(
    previous: Mapping[str, Any],
    plan: Plan,
    *,
    max_refs: int,
    generation: int,
    now: datetime,
    refused: str | None = None,
) -> SetStatusUpdate:
    """`refused`: the API server's answer to a create of this sync, when it refused one."""
    ready: Triple
    stalled: Triple
    if refused is not None:
        message = f"The API server refused to create a ref: {refused}"
        ready = ("False", REF_CREATE_REFUSED, message)
        stalled = ("True", REF_CREATE_REFUSED, message)
    elif plan.limit_reached:
        message = f"maxRefs ({max_refs}) reached: matching objects beyond it get no ref"
        ready = ("False", LIMIT_REACHED, message)
        stalled = ("True", LIMIT_REACHED, message)
    else:
        ready = ("True", LISTED, "Every matching object has a ref.")
        stalled = ("False", WITHIN_LIMIT, f"Within maxRefs ({max_refs}).")
    status: dict[str, Any] = {
        "matched": plan.matched,
        "created": len(plan.owned),
        "active": plan.active,
        "finished": plan.finished,
        "observedGeneration": generation,
        "conditions": _conditions(
            previous,
            ("True", LISTED, "The workspace was listed."),
            ready,
            stalled,
            generation=generation,
            now=now,
        ),
    }
    return _finish(previous, status, now)


def failed(
    previous: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> SetStatusUpdate:
    """Nothing was listed (or the set cannot act): counts stay as they were."""
    stalled: Triple = (
        ("True", reason, message)
        if reason in PERMANENT_FAILURES or reason in _STALLING
        else ("False", WITHIN_LIMIT, "Waiting for the next listing.")
    )
    kept = {k: previous[k] for k in _COUNTS if k in previous}
    status: dict[str, Any] = {
        **kept,
        "observedGeneration": generation,
        "conditions": _conditions(
            previous,
            ("False", reason, message),
            ("False", reason, message),
            stalled,
            generation=generation,
            now=now,
        ),
    }
    if "lastSyncTime" in previous:
        status["lastSyncTime"] = previous["lastSyncTime"]
    before = dict(previous)
    return SetStatusUpdate(status, before != status)


def listing_failed(
    previous: Mapping[str, Any], error: BaseException, *, generation: int, now: datetime
) -> SetStatusUpdate:
    reason = failure_reason(error)
    message = (
        f"Listing the workspace failed ({type(error).__name__}); nothing was created or deleted."
    )
    return failed(previous, reason, message, generation=generation, now=now)


def suspended(previous: Mapping[str, Any], *, generation: int, now: datetime) -> SetStatusUpdate:
    message = "spec.suspend is true: no refs are created or deleted."
    return failed(previous, SUSPENDED, message, generation=generation, now=now)
