"""Sync failures and suspension: the status when a read failed or polling is stopped.

The last known state is kept; `Synced` says what went wrong with a stable, secret-free
message (no request id: it would change the status, and cause a write, on every poll).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.emr import endpoints, errors
from rayref.mirror import conditions as cond
from rayref.mirror import limits
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

# Sync failure reasons (the Synced condition's reason when it is False).
REMOTE_NOT_FOUND = "RemoteNotFound"
ACCESS_DENIED = "AccessDenied"
CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
# Credentials that are there but no request can carry (non-ASCII, control characters).
INVALID_CREDENTIALS = "InvalidCredentials"
THROTTLED = "Throttled"
REMOTE_ERROR = "RemoteError"
INVALID_RESPONSE = "InvalidResponse"
# Failures a person must fix: the ref is Stalled until then. Others are transient and keep
# the last known state.
INVALID_IDENTIFIER = "InvalidIdentifier"
# A stored spec the API models refuse (the CRD should have): nothing is read until it changes.
INVALID_SPEC = "InvalidSpec"
# The operator failed on this ref in a way it did not foresee (a bug, or a value no rule
# covers): contained to the ref, retried after a while; the message names the error.
INTERNAL_ERROR = "InternalError"
PERMANENT_FAILURES = frozenset(
    {
        REMOTE_NOT_FOUND,
        ACCESS_DENIED,
        CREDENTIALS_NOT_FOUND,
        INVALID_CREDENTIALS,
        INVALID_IDENTIFIER,
        INVALID_SPEC,
    }
)


def failure_reason(error: BaseException) -> str:
    """The Synced=False reason for an error of the read."""
    if isinstance(error, endpoints.InvalidIdentifierError):
        return INVALID_IDENTIFIER
    if isinstance(error, errors.InvalidCredentialsError):
        return INVALID_CREDENTIALS
    if isinstance(error, errors.CredentialsError):
        return CREDENTIALS_NOT_FOUND
    if isinstance(error, errors.NotFoundError):
        return REMOTE_NOT_FOUND
    if isinstance(error, errors.AccessDeniedError | errors.AuthenticationError):
        return ACCESS_DENIED
    if isinstance(error, errors.ThrottledError):
        return THROTTLED
    if isinstance(error, errors.InvalidResponseError):
        return INVALID_RESPONSE
    return REMOTE_ERROR


def failure_message(error: BaseException) -> str:
    """A stable, secret-free message: code and hint, not the request id (which would change
    the status, and cause a write, on every failed poll)."""
    if isinstance(error, endpoints.InvalidIdentifierError):
        return f"{error}. Check spec.regionId or the operator's RAYREF_DEFAULT_REGION."
    if not isinstance(error, errors.EmrError):
        return f"{type(error).__name__}: reading the remote object failed."
    if isinstance(error, errors.InvalidCredentialsError):
        # which Secret key is unusable, never its value; the hint says what a key may hold
        return f"{error.message[:512]}. Check: {error.hint}."
    if isinstance(error, errors.CredentialsError):
        # Written by the operator for this ref (which Secret, which namespace rule).
        return error.message[:1024]
    head = error.code or type(error).__name__
    if error.status_code is not None:
        head += f" (HTTP {error.status_code})"
    # A signature mismatch message quotes the server's string to sign, which holds the
    # request's date and nonce; a credentials message is written by us and stable.
    detail = "" if isinstance(error, errors.AuthenticationError) else f": {error.message}"
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
