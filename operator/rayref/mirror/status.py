"""What both kinds' statuses share: the update a read yields, and the helpers that build it.

`StatusUpdate` is the complete new status and whether it differs; `finish` moves
`lastSyncTime` only with content, so an unchanged read changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from rayref.api import models as api
from rayref.emr.redaction import redact_strings
from rayref.mirror import conditions as cond

UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Transition:
    """Something a person would want as an Event."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class StatusUpdate:
    """The complete new status (camelCase JSON) and whether it differs from the previous one."""

    status: dict[str, Any]
    changed: bool
    transitions: list[Transition] = field(default_factory=list)


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def plain_json(value: Any) -> Any:
    """Integral floats as ints: the apiserver returns 1899.0 as 1899, and a second poll must
    compare equal byte for byte."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    return value


def finite(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; the apiserver would reject the whole status.
    return value if value is not None and math.isfinite(value) else None


def as_dict(previous: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(previous) if previous else {}


def dump(status: api.RayJobRefStatus | api.RayClusterRefStatus) -> dict[str, Any]:
    # Every text copied from the cloud (message, entrypoint, workingDir, tags...) may carry
    # a secret form; the one rule of rayref.emr.redaction masks it before it is stored.
    dumped: dict[str, Any] = redact_strings(plain_json(api.dump_status(status)))
    return dumped


def finish(
    new: dict[str, Any], previous: dict[str, Any], now: datetime, moved: bool
) -> tuple[dict[str, Any], bool]:
    """Set lastSyncTime: it moves only with content, so an unchanged read changes nothing."""
    if previous.get("lastSyncTime") is not None:
        new["lastSyncTime"] = previous["lastSyncTime"]
    else:
        new.pop("lastSyncTime", None)
    if new == previous:
        return new, False
    if moved:
        new["lastSyncTime"] = cond.format_time(now)
    return new, True


def set_at(
    conditions: list[dict[str, Any]],
    type_: str,
    status: cond.ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    return cond.set_condition(
        conditions, type_, status, reason, message, observed_generation=generation, now=now
    )


def health(
    conditions: list[dict[str, Any]],
    *,
    ready: tuple[bool, str, str],
    reconciling: tuple[bool, str, str],
    stalled: tuple[bool, str, str],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Ready, Reconciling and Stalled, each as (true?, reason, message)."""
    for type_, (value, reason, message) in (
        (cond.READY, ready),
        (cond.RECONCILING, reconciling),
        (cond.STALLED, stalled),
    ):
        conditions = set_at(
            conditions, type_, "True" if value else "False", reason, message, generation, now
        )
    return conditions


def synced_ok(
    conditions: list[dict[str, Any]], what: str, generation: int, now: datetime
) -> list[dict[str, Any]]:
    conditions = resumed(conditions, generation, now)
    return set_at(
        conditions, cond.SYNCED, "True", "Synced", f"Read the remote {what}.", generation, now
    )


def resumed(
    conditions: list[dict[str, Any]], generation: int, now: datetime
) -> list[dict[str, Any]]:
    """Polling runs again: a Suspended condition left from spec.suspend turns False."""
    if cond.get_condition(conditions, cond.SUSPENDED) is None:
        return conditions
    return set_at(
        conditions,
        cond.SUSPENDED,
        "False",
        "Resumed",
        "spec.suspend is false: polling runs.",
        generation,
        now,
    )


def recovery(previous: dict[str, Any]) -> list[Transition]:
    synced = cond.get_condition(previous.get("conditions"), cond.SYNCED)
    if synced is not None and synced.get("status") == "False":
        return [
            Transition(
                "Normal",
                "SyncRecovered",
                f"Reading the remote object works again (was {synced.get('reason')}).",
            )
        ]
    return []


def head_spec(spec: Any) -> api.HeadSpecStatus | None:
    if spec is None:
        return None
    return api.HeadSpecStatus(
        replica=spec.replica,
        enable_auto_scaling=spec.enable_auto_scaling,
        idle_timeout_seconds=spec.idle_timeout_seconds,
        queue_name=spec.queue_name,
        cpu=spec.cpu,
        memory=spec.memory,
        gpu_spec=spec.gpu_spec,
        display_release_version=spec.display_release_version,
        gft_enabled=spec.gft_enabled,
    )


def worker_specs(specs: Sequence[Any]) -> list[api.WorkerSpecStatus] | None:
    workers = [
        api.WorkerSpecStatus(
            group_name=w.group_name,
            worker_type=w.worker_type,
            replica=w.replica,
            min_replica=w.min_replica,
            max_replica=w.max_replica,
            queue_name=w.queue_name,
            cpu=w.cpu,
            memory=w.memory,
            gpu_spec=w.gpu_spec,
            display_release_version=w.display_release_version,
        )
        for w in specs
    ]
    return workers or None


def or_none(model: api.ApiModel) -> Any:
    """A sub-object with every field unset is left out rather than written as {}."""
    return model if model.model_dump(exclude_none=True) else None
