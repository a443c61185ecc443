"""Sync failures and suspension: the status when a read failed or polling is stopped.

The last known state is kept; `Synced` says what went wrong with a stable, secret-free
message (no request id: it would change the status, and cause a write, on every poll).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.emr import errors
from rayref.mirror import conditions as cond
from rayref.mirror import failure_table, limits
from rayref.mirror.failure_table import (
    ACCESS_DENIED,
    CREDENTIALS_NOT_FOUND,
    INTERNAL_ERROR,
    INVALID_CREDENTIALS,
    INVALID_IDENTIFIER,
    INVALID_RESPONSE,
    INVALID_SPEC,
    PERMANENT_FAILURES,
    REMOTE_ERROR,
    REMOTE_NOT_FOUND,
    THROTTLED,
    Wording,
)
from rayref.mirror.status import (
    UNKNOWN,
    StatusUpdate,
    Transition,
    as_dict,
    finish,
    health,
    resumed,
    set_at,
)

# The reasons and every decision about them live in the failure table; the names stay
# importable from here.
__all__ = [
    "ACCESS_DENIED",
    "CREDENTIALS_NOT_FOUND",
    "INTERNAL_ERROR",
    "INVALID_CREDENTIALS",
    "INVALID_IDENTIFIER",
    "INVALID_RESPONSE",
    "INVALID_SPEC",
    "PERMANENT_FAILURES",
    "REMOTE_ERROR",
    "REMOTE_NOT_FOUND",
    "THROTTLED",
    "bounded_update",
    "failure_message",
    "failure_reason",
    "suspended",
    "sync_failure",
    "sync_failure_reason",
]


def failure_reason(error: BaseException) -> str:
    """The Synced=False reason for an error of the read."""
    return failure_table.row_for(error).reason


def failure_message(error: BaseException) -> str:
    """A stable, secret-free message: code and hint, not the request id (which would change
    the status, and cause a write, on every failed poll)."""
    row = failure_table.row_for(error)
    wording = row.wording
    if wording is Wording.IDENTIFIER:
        return f"{error}. Check {row.hint}."
    if not isinstance(error, errors.EmrError) or wording is Wording.TYPE_ONLY:
        return f"{type(error).__name__}: reading the remote object failed."
    if wording is Wording.NAMED:
        return f"{error.message[:512]}. Check: {error.hint}."
    if wording is Wording.OWN:
        return error.message[:1024]
    head = error.code or type(error).__name__
    if error.status_code is not None:
        head += f" (HTTP {error.status_code})"
    detail = "" if wording is Wording.CODE_ONLY else f": {error.message}"
    return f"{head}{detail[:512]}. Check: {error.hint}."


def sync_failure(
    kind: str,
    previous: Mapping[str, Any] | None,
    error: BaseException,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The status after a failed read: Synced=False, the last known state kept."""
    return sync_failure_reason(
        kind,
        previous,
        failure_reason(error),
        failure_message(error),
        generation=generation,
        now=now,
    )


def sync_failure_reason(
    kind: str,
    previous: Mapping[str, Any] | None,
    reason: str,
    message: str,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """`sync_failure` with the reason and message given directly."""
    prev = as_dict(previous)
    new = {k: v for k, v in prev.items() if k != "conditions"}
    state_key = "phase" if kind == JOB_KIND else "state"
    new.setdefault(state_key, UNKNOWN)
    new["observedGeneration"] = generation
    conditions = resumed(list(prev.get("conditions") or []), generation, now)
    conditions = set_at(conditions, cond.SYNCED, "False", reason, message, generation, now)
    if reason in PERMANENT_FAILURES:
        conditions = health(
            conditions,
            ready=(False, reason, message),
            reconciling=(False, reason, message),
            stalled=(True, reason, message),
            generation=generation,
            now=now,
        )
    elif cond.get_condition(conditions, cond.READY) is None:
        # Never read yet: in progress, waiting for a first good read.
        conditions = health(
            conditions,
            ready=(False, reason, message),
            reconciling=(True, reason, message),
            stalled=(False, reason, message),
            generation=generation,
            now=now,
        )
    new["conditions"] = conditions
    new, changed = finish(new, prev, now, moved=False)
    transitions: list[Transition] = []
    old = cond.get_condition(prev.get("conditions"), cond.SYNCED)
    if changed and (old is None or old.get("status") != "False" or old.get("reason") != reason):
        transitions.append(Transition("Warning", cond.safe_reason(reason), message))
    return StatusUpdate(new, changed, transitions)


def suspended(
    kind: str,
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """spec.suspend is true: keep the last status, acknowledge the generation, and say so.

    The Suspended condition is True; the last known Ready/Reconciling/Stalled stay as they
    were (Argo CD shows Suspended; kstatus keeps its last reading).
    """
    prev = as_dict(previous)
    new = {k: v for k, v in prev.items() if k != "conditions"}
    new.setdefault("phase" if kind == JOB_KIND else "state", UNKNOWN)
    new["observedGeneration"] = generation
    new["conditions"] = set_at(
        list(prev.get("conditions") or []),
        cond.SUSPENDED,
        "True",
        "Suspended",
        "spec.suspend is true: polling stopped; this is the last status read.",
        generation,
        now,
    )
    new, changed = finish(new, prev, now, moved=False)
    was = cond.is_true(prev.get("conditions"), cond.SUSPENDED)
    transitions = (
        [Transition("Normal", "Suspended", "Polling stopped (spec.suspend is true).")]
        if changed and not was
        else []
    )
    return StatusUpdate(new, changed, transitions)


def bounded_update(
    kind: str,
    new: dict[str, Any],
    prev: dict[str, Any],
    generation: int,
    now: datetime,
    transitions_of: Callable[[dict[str, Any]], list[Transition]],
) -> StatusUpdate:
    """Finish a status from a good read, kept within what the API server stores."""
    new = limits.bounded(new)
    size = limits.encoded_size(new)
    if size > limits.MAX_STATUS_BYTES:
        message = (
            f"the remote answer is too large for a status ({size} bytes after clipping "
            f"long texts, limit {limits.MAX_STATUS_BYTES}); the last good status is kept"
        )
        return sync_failure_reason(
            kind, prev, INVALID_RESPONSE, message, generation=generation, now=now
        )
    new, changed = finish(new, prev, now, moved=True)
    transitions = [
        Transition(t.type, t.reason, limits.clip_text(t.message))
        for t in (transitions_of(new) if changed else [])
    ]
    return StatusUpdate(new, changed, transitions)
