"""Pure decisions on a coordination.k8s.io/v1 Lease record.

Nothing here does I/O or reads a clock: times come in as arguments, so every rule can
be tested alone. The rules are client-go's: a candidate never compares the holder's
`renewTime` with its own wall clock (the two clocks may disagree); it measures the
lease from the moment *it* saw the record change, on its own monotonic clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

API_PATH = "/apis/coordination.k8s.io/v1"


@dataclass(frozen=True)
class ElectionTiming:
    """Lease duration > renew deadline > retry period (client-go's defaults)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if self.retry_period <= 0:
            raise ValueError("the retry period must be positive")
        # The gap is what keeps two leaders apart: the leader stops at the renew
        # deadline, the others may take over only when the lease duration has passed.
        if self.renew_deadline >= self.lease_duration:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        if self.retry_period * 1.2 >= self.renew_deadline:
            raise ValueError("the retry period (x1.2) must be shorter than the renew deadline")

    @property
    def lease_seconds(self) -> int:
        """What the Lease says (an integer field): never shorter than the real duration."""
        return max(1, math.ceil(self.lease_duration))

    @property
    def margin(self) -> float:
        """Time between the leader's own deadline and the earliest takeover."""
        return self.lease_duration - self.renew_deadline


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease plus its resourceVersion ("" before it is stored)."""

    holder: str  # "" when released
    duration_seconds: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int
    resource_version: str = ""


class Action(Enum):
    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # free (released) or expired: take it
    RENEW = "renew"  # ours
    WAIT = "wait"  # someone else's, not expired


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server stores it (RFC 3339, microseconds, UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_lease(obj: Mapping[str, Any]) -> LeaseRecord:
    spec = obj.get("spec") or {}
    metadata = obj.get("metadata") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(metadata.get("resourceVersion") or ""),
    )


def lease_body(name: str, namespace: str, record: LeaseRecord) -> dict[str, Any]:
    """The Lease object to create or replace (replace carries the resourceVersion, so a
    write based on a stale read fails with 409 instead of overwriting another holder)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if record.resource_version:
        metadata["resourceVersion"] = record.resource_version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time:
        spec["renewTime"] = record.renew_time
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


@dataclass
class Observed:
    """The last record this candidate saw, and when (its monotonic clock) it changed."""

    record: LeaseRecord | None = None
    at: float = -math.inf
    seen: bool = False  # whether anything (even "no Lease") was read yet

    def see(self, record: LeaseRecord | None, now: float) -> bool:
        """Take a read; returns whether the Lease changed since the previous one."""
        changed = not self.seen or _identity(record) != _identity(self.record)
        if changed:
            self.at = now
        self.record, self.seen = record, True
        return changed

    def expires_at(self, default_duration: float) -> float:
        """When the holder's lease runs out, as far as this candidate can know."""
        record = self.record
        duration = record.duration_seconds if record and record.duration_seconds > 0 else 0
        return self.at + (duration or default_duration)


def _identity(record: LeaseRecord | None) -> tuple[str, str, str | None] | None:
    # A renewal changes renewTime and the resourceVersion; either counts as a change.
    if record is None:
        return None
    return (record.resource_version, record.holder, record.renew_time)


def decide(observed: Observed, identity: str, now: float, default_duration: float) -> Action:
    record = observed.record
    if record is None:
        return Action.CREATE
    if record.holder == identity:
        return Action.RENEW
    if not record.holder or now >= observed.expires_at(default_duration):
        return Action.ACQUIRE
    return Action.WAIT


def claim(
    record: LeaseRecord | None, identity: str, wall: datetime, timing: ElectionTiming
) -> LeaseRecord:
    """The record that makes (or keeps) `identity` the holder."""
    now = micro_time(wall)
    if record is not None and record.holder == identity:
        return replace(record, renew_time=now, duration_seconds=timing.lease_seconds)
    transitions = 0 if record is None else record.transitions + 1
    return LeaseRecord(
        holder=identity,
        duration_seconds=timing.lease_seconds,
        acquire_time=now,
        renew_time=now,
        transitions=transitions,
        resource_version="" if record is None else record.resource_version,
    )


def released(record: LeaseRecord, wall: datetime) -> LeaseRecord:
    """The record a leader writes on a graceful stop: no holder, so any candidate may
    take it at once (client-go's ReleaseOnCancel writes the same)."""
    now = micro_time(wall)
    return replace(record, holder="", duration_seconds=1, acquire_time=now, renew_time=now)
