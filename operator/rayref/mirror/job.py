"""RayJobRef: a remote Ray job -> its status, conditions and events."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rayref.api import models as api
from rayref.api.kinds import JOB_KIND
from rayref.emr.models import RayJob
from rayref.mirror import conditions as cond
from rayref.mirror.failure import bounded_update
from rayref.mirror.status import (
    UNKNOWN,
    StatusUpdate,
    Transition,
    as_dict,
    dump,
    finite,
    head_spec,
    health,
    or_none,
    recovery,
    set_at,
    synced_ok,
    text_or_none,
    worker_specs,
)
from rayref.mirror.times import rfc3339

SUCCEEDED_PHASES = frozenset({"Succeeded"})
FAILED_PHASES = frozenset({"Failed", "Cancelled", "Timeout"})
TERMINAL_PHASES = SUCCEEDED_PHASES | FAILED_PHASES
WARNING_PHASES = frozenset({"Failed", "Timeout"})


def _custom_resources(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    custom = {
        str(k): float(v)
        for k, v in parsed.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    return custom or None


def job_phase(remote: RayJob) -> str:
    return str(remote.status) if remote.status else UNKNOWN


def _job_fields(remote: RayJob) -> api.RayJobRefStatus:
    gu = remote.gu_hours
    return api.RayJobRefStatus(
        phase=job_phase(remote),
        cluster_state=text_or_none(remote.cluster_state),
        message=remote.message,
        name=remote.name,
        display_release_version=remote.display_release_version,
        creator_name=remote.creator_name,
        task_biz_id=remote.task_biz_id,
        submission_mode=remote.submission_mode,
        tags=[api.Tag(key=t.key, value=t.value) for t in remote.tags] or None,
        entrypoint=remote.entrypoint,
        entrypoint_resources=or_none(
            api.EntrypointResources(
                num_cpus=remote.entrypoint_num_cpus,
                num_gpus=remote.entrypoint_num_gpus,
                memory=remote.entrypoint_memory,
                custom=_custom_resources(remote.entrypoint_resources),
            )
        ),
        working_dir=remote.working_dir,
        network_service_name=remote.network_service_name,
        volume_ids=list(remote.volume_ids) or None,
        lifecycle=or_none(
            api.JobLifecycle(
                shutdown_after_job_finishes=remote.shutdown_after_job_finishes,
                ttl_seconds_after_finished=remote.ttl_seconds_after_finished,
                active_deadline_seconds=remote.active_deadline_seconds,
                backoff_limit=remote.backoff_limit,
            )
        ),
        head_spec=head_spec(remote.head_spec),
        worker_specs=worker_specs(remote.worker_specs),
        submit_time=rfc3339(remote.submit_time),
        start_time=rfc3339(remote.start_time),
        end_time=rfc3339(remote.end_time),
        duration_seconds=remote.duration,
        log_location=or_none(
            api.LogLocation(bucket_name=remote.log_bucket_name, path=remote.log_path)
        ),
        usage=or_none(
            api.Usage(
                cu_hours=finite(remote.cu_hours),
                gpu_hours=finite(gu.gpu_hours) if gu else None,
                gpu_spec=gu.gpu_spec if gu else None,
            )
        ),
        dashboard_url=remote.dashboard_url.redacted() if remote.dashboard_url else None,
        dashboard_url_extra=[u.redacted() for u in remote.dashboard_url_extra] or None,
    )


def _job_conditions(
    conditions: list[dict[str, Any]],
    phase: str,
    remote_message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    detail = f"Remote job status is {phase}." + (
        f" Message: {remote_message}" if remote_message else ""
    )
    conditions = set_at(
        conditions,
        cond.COMPLETE,
        "True" if phase in SUCCEEDED_PHASES else "False",
        phase,
        detail,
        generation,
        now,
    )
    conditions = set_at(
        conditions,
        cond.FAILED,
        "True" if phase in FAILED_PHASES else "False",
        phase,
        detail,
        generation,
        now,
    )
    return health(
        conditions,
        ready=(phase in SUCCEEDED_PHASES, phase, detail),
        reconciling=(phase not in TERMINAL_PHASES, phase, detail),
        stalled=(phase in FAILED_PHASES, phase, detail),
        generation=generation,
        now=now,
    )


def _job_transitions(
    remote: RayJob, previous: dict[str, Any], new: dict[str, Any]
) -> list[Transition]:
    transitions = recovery(previous)
    old_phase = previous.get("phase") or UNKNOWN
    phase = new["phase"]
    if phase != old_phase:
        message = f"Ray job {remote.submission_id or ''} is {phase} (was {old_phase})."
        if phase in TERMINAL_PHASES and new.get("message"):
            # the stored (redacted) message, never the remote text as it came
            message += f" {new['message']}"
        transitions.append(
            Transition(
                "Warning" if phase in WARNING_PHASES else "Normal",
                cond.safe_reason(f"Job{phase}"),
                message.replace("  ", " "),
            )
        )
    old_state, state = previous.get("clusterState"), new.get("clusterState")
    if state and state != old_state:
        transitions.append(
            Transition(
                "Normal",
                cond.safe_reason(f"Cluster{state}"),
                f"The job's Ray cluster is {state} (was {old_state or UNKNOWN}).",
            )
        )
    old_cu = (previous.get("usage") or {}).get("cuHours")
    cu = (new.get("usage") or {}).get("cuHours")
    if cu is not None and old_cu is None:
        transitions.append(Transition("Normal", "UsageReported", f"The job used {cu} CU-hours."))
    return transitions


def job_status(
    remote: RayJob,
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The RayJobRef status after a successful GetRayJob."""
    prev = as_dict(previous)
    status = _job_fields(remote)
    phase = status.phase or UNKNOWN
    conditions = synced_ok(list(prev.get("conditions") or []), "job", generation, now)
    conditions = _job_conditions(conditions, phase, remote.message or "", generation, now)
    new = dump(status)
    if phase in WARNING_PHASES and isinstance(prev.get("failureLog"), Mapping):
        # Written apart, once, by polling.failure_logs: every later read keeps it.
        new["failureLog"] = dict(prev["failureLog"])
    new["observedGeneration"] = generation
    new["conditions"] = conditions
    return bounded_update(
        JOB_KIND, new, prev, generation, now, lambda n: _job_transitions(remote, prev, n)
    )
