"""Pure mapping: a remote Ray job or cluster -> the status to write, and what changed.

No I/O, no kopf, no kubernetes: the runtime reads the remote object, calls one function
here, writes `StatusUpdate.status` only when `changed` is true, and records one Event per
`Transition`. The rules (conditions, kstatus and Argo CD reading, polling) are documented
in docs/status.md; keep the two in step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from rayref.api import models as api
from rayref.emr import endpoints, errors
from rayref.emr.models import RayCluster, RayJob
from rayref.mirror import conditions as cond
from rayref.mirror import limits as bounds

JOB_KIND = api.JOB_KIND
CLUSTER_KIND = api.CLUSTER_KIND
UNKNOWN = "Unknown"

SUCCEEDED_PHASES = frozenset({"Succeeded"})
FAILED_PHASES = frozenset({"Failed", "Cancelled", "Timeout"})
TERMINAL_PHASES = SUCCEEDED_PHASES | FAILED_PHASES
WARNING_PHASES = frozenset({"Failed", "Timeout"})

# Sync failure reasons (the Synced condition's reason when it is False).
REMOTE_NOT_FOUND = "RemoteNotFound"
ACCESS_DENIED = "AccessDenied"
CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
THROTTLED = "Throttled"
REMOTE_ERROR = "RemoteError"
INVALID_RESPONSE = "InvalidResponse"
# Failures a person must fix: the ref is Stalled until then. Others are transient and keep
# the last known state.
INVALID_IDENTIFIER = "InvalidIdentifier"
PERMANENT_FAILURES = frozenset(
    {REMOTE_NOT_FOUND, ACCESS_DENIED, CREDENTIALS_NOT_FOUND, INVALID_IDENTIFIER}
)

SLOW_POLL_FACTOR = 4
SLOW_POLL_MIN_SECONDS = 120.0
# After this long with a terminal job, a Deleted cluster and no change at all, usage will
# not come any more (the API publishes it about 10 minutes after the cluster is released).
USAGE_WAIT_SECONDS = 3600.0

_OOM = "OOMKilled"


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


# ---------------------------------------------------------------- helpers


def _time(moment: datetime | None) -> str | None:
    """RFC 3339 UTC; milliseconds kept when the API gave them."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _plain_json(value: Any) -> Any:
    """Integral floats as ints: the apiserver returns 1899.0 as 1899, and a second poll must
    compare equal byte for byte."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    return value


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or Infinity; the apiserver would reject the whole status.
    return value if value is not None and math.isfinite(value) else None


def _previous(previous: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(previous) if previous else {}


def _dump(status: api.RayJobRefStatus | api.RayClusterRefStatus) -> dict[str, Any]:
    dumped: dict[str, Any] = _plain_json(api.dump_status(status))
    return dumped


def _finish(
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


def _set(
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


def _health(
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
        conditions = _set(
            conditions, type_, "True" if value else "False", reason, message, generation, now
        )
    return conditions


def _synced_ok(
    conditions: list[dict[str, Any]], what: str, generation: int, now: datetime
) -> list[dict[str, Any]]:
    conditions = _resumed(conditions, generation, now)
    return _set(
        conditions, cond.SYNCED, "True", "Synced", f"Read the remote {what}.", generation, now
    )


def _resumed(
    conditions: list[dict[str, Any]], generation: int, now: datetime
) -> list[dict[str, Any]]:
    """Polling runs again: a Suspended condition left from spec.suspend turns False."""
    if cond.get_condition(conditions, cond.SUSPENDED) is None:
        return conditions
    return _set(
        conditions,
        cond.SUSPENDED,
        "False",
        "Resumed",
        "spec.suspend is false: polling runs.",
        generation,
        now,
    )


def _recovery(previous: dict[str, Any]) -> list[Transition]:
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


# ---------------------------------------------------------------- RayJobRef


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


def _head(spec: Any) -> api.HeadSpecStatus | None:
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


def _workers(specs: Sequence[Any]) -> list[api.WorkerSpecStatus] | None:
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


def _or_none(model: api.ApiModel) -> Any:
    """A sub-object with every field unset is left out rather than written as {}."""
    return model if model.model_dump(exclude_none=True) else None


def job_phase(remote: RayJob) -> str:
    return str(remote.status) if remote.status else UNKNOWN


def _job_fields(remote: RayJob) -> api.RayJobRefStatus:
    gu = remote.gu_hours
    return api.RayJobRefStatus(
        phase=job_phase(remote),
        cluster_state=_text(remote.cluster_state),
        message=remote.message,
        name=remote.name,
        display_release_version=remote.display_release_version,
        creator_name=remote.creator_name,
        task_biz_id=remote.task_biz_id,
        submission_mode=remote.submission_mode,
        tags=[api.Tag(key=t.key, value=t.value) for t in remote.tags] or None,
        entrypoint=remote.entrypoint,
        entrypoint_resources=_or_none(
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
        lifecycle=_or_none(
            api.JobLifecycle(
                shutdown_after_job_finishes=remote.shutdown_after_job_finishes,
                ttl_seconds_after_finished=remote.ttl_seconds_after_finished,
                active_deadline_seconds=remote.active_deadline_seconds,
                backoff_limit=remote.backoff_limit,
            )
        ),
        head_spec=_head(remote.head_spec),
        worker_specs=_workers(remote.worker_specs),
        submit_time=_time(remote.submit_time),
        start_time=_time(remote.start_time),
        end_time=_time(remote.end_time),
        duration_seconds=remote.duration,
        log_location=_or_none(
            api.LogLocation(bucket_name=remote.log_bucket_name, path=remote.log_path)
        ),
        usage=_or_none(
            api.Usage(
                cu_hours=_finite(remote.cu_hours),
                gpu_hours=_finite(gu.gpu_hours) if gu else None,
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
    conditions = _set(
        conditions,
        cond.COMPLETE,
        "True" if phase in SUCCEEDED_PHASES else "False",
        phase,
        detail,
        generation,
        now,
    )
    conditions = _set(
        conditions,
        cond.FAILED,
        "True" if phase in FAILED_PHASES else "False",
        phase,
        detail,
        generation,
        now,
    )
    return _health(
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
    transitions = _recovery(previous)
    old_phase = previous.get("phase") or UNKNOWN
    phase = new["phase"]
    if phase != old_phase:
        message = f"Ray job {remote.submission_id or ''} is {phase} (was {old_phase})."
        if phase in TERMINAL_PHASES and remote.message:
            message += f" {remote.message}"
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


def _bounded_update(
    kind: str,
    new: dict[str, Any],
    prev: dict[str, Any],
    generation: int,
    now: datetime,
    transitions_of: Callable[[dict[str, Any]], list[Transition]],
) -> StatusUpdate:
    """Finish a status from a good read, kept within what the API server stores."""
    new = bounds.bounded(new)
    size = bounds.encoded_size(new)
    if size > bounds.MAX_STATUS_BYTES:
        message = (
            f"the remote answer is too large for a status ({size} bytes after clipping "
            f"long texts, limit {bounds.MAX_STATUS_BYTES}); the last good status is kept"
        )
        return sync_failure_reason(
            kind, prev, INVALID_RESPONSE, message, generation=generation, now=now
        )
    new, changed = _finish(new, prev, now, moved=True)
    transitions = [
        Transition(t.type, t.reason, bounds.clip_text(t.message))
        for t in (transitions_of(new) if changed else [])
    ]
    return StatusUpdate(new, changed, transitions)


def job_status(
    remote: RayJob,
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The RayJobRef status after a successful GetRayJob."""
    prev = _previous(previous)
    status = _job_fields(remote)
    phase = status.phase or UNKNOWN
    conditions = _synced_ok(list(prev.get("conditions") or []), "job", generation, now)
    conditions = _job_conditions(conditions, phase, remote.message or "", generation, now)
    new = _dump(status)
    new["observedGeneration"] = generation
    new["conditions"] = conditions
    return _bounded_update(
        JOB_KIND, new, prev, generation, now, lambda n: _job_transitions(remote, prev, n)
    )


# ---------------------------------------------------------------- RayClusterRef


def instance_running(instance: Mapping[str, Any]) -> bool:
    """A node counts as ready when its pod and its main container both run."""
    return instance.get("phase") == "Running" and instance.get("containerState") in (
        None,
        "Running",
    )


def _instances(remote: RayCluster) -> list[api.InstanceStatus]:
    return [
        api.InstanceStatus(
            type=i.type,
            instance_id=i.instance_id,
            phase=i.phase,
            container_state=i.container_state,
            reason=i.reason,
            message=i.message,
            container_exit_code=i.container_exit_code,
            container_state_reason=i.container_state_reason,
            container_state_message=i.container_state_message,
            start_time=_time(i.start_time),
            create_time=_time(i.create_time),
        )
        for i in remote.instances
    ]


def _cluster_fields(remote: RayCluster) -> api.RayClusterRefStatus:
    instances = _instances(remote)
    dumped = [i.model_dump(by_alias=True, exclude_none=True) for i in instances]
    ready = sum(1 for i in dumped if instance_running(i))
    return api.RayClusterRefStatus(
        state=_text(remote.state) or UNKNOWN,
        message=remote.message,
        ready=f"{ready}/{len(instances)}",
        ready_instances=ready,
        total_instances=len(instances),
        instances=instances or None,
        name=remote.name,
        description=remote.description,
        display_release_version=remote.display_release_version,
        network_service_name=remote.network_service_name,
        creator_name=remote.creator_name,
        modifier_name=remote.modifier_name,
        modified=remote.modified,
        instance_id=remote.instance_id,
        head_spec=_head(remote.head_spec),
        worker_specs=_workers(remote.worker_spec),
        volume_ids=list(remote.volume_ids) or None,
        job_url=remote.job_url,
        job_url_inner=remote.job_url_inner,
        grpc_endpoint=remote.grpc_endpoint,
        dashboard_url=remote.dashboard_url.redacted() if remote.dashboard_url else None,
        create_time=_time(remote.create_time),
        start_time=_time(remote.start_time),
        modified_time=_time(remote.modified_time),
    )


def _describe_instance(instance: Mapping[str, Any]) -> str:
    facts = [
        str(instance[k])
        for k in ("phase", "containerState", "reason")
        if instance.get(k) not in (None, "")
    ]
    return f"{instance.get('instanceId') or '?'} ({', '.join(facts) or 'no state'})"


def _cluster_conditions(
    conditions: list[dict[str, Any]], new: dict[str, Any], generation: int, now: datetime
) -> list[dict[str, Any]]:
    state = new["state"]
    message = new.get("message") or ""
    detail = f"Remote cluster state is {state}." + (f" Message: {message}" if message else "")
    instances = new.get("instances") or []
    down = [i for i in instances if not instance_running(i)]
    if state == "Running" and not down:
        ready = (True, "Running", f"{new['ready']} nodes running. {detail}")
        reconciling = (False, "Running", ready[2])
        stalled = (False, "Running", ready[2])
    elif state == "Running":
        text = f"{new['ready']} nodes running; not running: " + ", ".join(
            _describe_instance(i) for i in down
        )
        ready = (False, "InstancesNotReady", text)
        reconciling = (True, "InstancesNotReady", text)
        stalled = (False, "InstancesNotReady", text)
    elif state == "Error":
        ready = reconciling = (False, "Error", detail)
        stalled = (True, "Error", detail)
    elif state == "Stopped":
        ready = (False, "Stopped", detail)
        reconciling = stalled = (False, "Stopped", detail)
    else:  # Starting, Stopping, or a state this version does not know
        ready = (False, state, detail)
        reconciling = (True, state, detail)
        stalled = (False, state, detail)
    return _health(
        conditions,
        ready=ready,
        reconciling=reconciling,
        stalled=stalled,
        generation=generation,
        now=now,
    )


def _oom(instance: Mapping[str, Any]) -> bool:
    return any(
        _OOM in str(instance.get(k) or "")
        for k in ("reason", "containerStateReason", "containerStateMessage")
    )


def _cluster_transitions(
    remote: RayCluster, previous: dict[str, Any], new: dict[str, Any]
) -> list[Transition]:
    transitions = _recovery(previous)
    old_state, state = previous.get("state") or UNKNOWN, new["state"]
    if state != old_state:
        message = f"Ray cluster {remote.cluster_id or ''} is {state} (was {old_state})."
        if state == "Error" and new.get("message"):
            message += f" {new['message']}"
        transitions.append(
            Transition(
                "Warning" if state == "Error" else "Normal",
                cond.safe_reason(f"Cluster{state}"),
                message.replace("  ", " "),
            )
        )
    before = {i.get("instanceId"): i for i in previous.get("instances") or []}
    for instance in new.get("instances") or []:
        old = before.get(instance.get("instanceId"), {})
        exit_code = instance.get("containerExitCode")
        suffix = f" (exit code {exit_code})" if exit_code is not None else ""
        if _oom(instance) and not _oom(old):
            transitions.append(
                Transition(
                    "Warning",
                    "InstanceOOMKilled",
                    f"{instance.get('type') or 'Node'} {instance.get('instanceId')} was "
                    f"OOMKilled{suffix}.",
                )
            )
        elif instance.get("phase") == "Failed" and old.get("phase") != "Failed":
            transitions.append(
                Transition(
                    "Warning",
                    "InstanceFailed",
                    f"{instance.get('type') or 'Node'} {instance.get('instanceId')} failed"
                    f"{suffix}: {instance.get('reason') or instance.get('message') or '-'}.",
                )
            )
    return transitions


def cluster_status(
    remote: RayCluster,
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The RayClusterRef status after a successful GetRayCluster."""
    prev = _previous(previous)
    new = _dump(_cluster_fields(remote))
    conditions = _synced_ok(list(prev.get("conditions") or []), "cluster", generation, now)
    new["observedGeneration"] = generation
    new["conditions"] = _cluster_conditions(conditions, new, generation, now)
    return _bounded_update(
        CLUSTER_KIND, new, prev, generation, now, lambda n: _cluster_transitions(remote, prev, n)
    )


def connection_secret_data(remote: RayCluster) -> dict[str, str]:
    """What the connection Secret holds; secrets in full, keys absent when the API gave none."""
    data = {
        "jobUrl": remote.job_url,
        "jobUrlInner": remote.job_url_inner,
        "grpcEndpoint": remote.grpc_endpoint,
        "submitToken": remote.submit_token.get_secret_value() if remote.submit_token else None,
        "dashboardUrl": remote.dashboard_url.get_secret_value() if remote.dashboard_url else None,
    }
    return {k: v for k, v in data.items() if v}


# ---------------------------------------------------------------- sync failures


def failure_reason(error: BaseException) -> str:
    """The Synced=False reason for an error of the read."""
    if isinstance(error, endpoints.InvalidIdentifierError):
        return INVALID_IDENTIFIER
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
    prev = _previous(previous)
    new = {k: v for k, v in prev.items() if k != "conditions"}
    state_key = "phase" if kind == JOB_KIND else "state"
    new.setdefault(state_key, UNKNOWN)
    new["observedGeneration"] = generation
    conditions = _resumed(list(prev.get("conditions") or []), generation, now)
    conditions = _set(conditions, cond.SYNCED, "False", reason, message, generation, now)
    if reason in PERMANENT_FAILURES:
        conditions = _health(
            conditions,
            ready=(False, reason, message),
            reconciling=(False, reason, message),
            stalled=(True, reason, message),
            generation=generation,
            now=now,
        )
    elif cond.get_condition(conditions, cond.READY) is None:
        # Never read yet: in progress, waiting for a first good read.
        conditions = _health(
            conditions,
            ready=(False, reason, message),
            reconciling=(True, reason, message),
            stalled=(False, reason, message),
            generation=generation,
            now=now,
        )
    new["conditions"] = conditions
    new, changed = _finish(new, prev, now, moved=False)
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
    prev = _previous(previous)
    new = {k: v for k, v in prev.items() if k != "conditions"}
    new.setdefault("phase" if kind == JOB_KIND else "state", UNKNOWN)
    new["observedGeneration"] = generation
    new["conditions"] = _set(
        list(prev.get("conditions") or []),
        cond.SUSPENDED,
        "True",
        "Suspended",
        "spec.suspend is true: polling stopped; this is the last status read.",
        generation,
        now,
    )
    new, changed = _finish(new, prev, now, moved=False)
    was = cond.is_true(prev.get("conditions"), cond.SUSPENDED)
    transitions = (
        [Transition("Normal", "Suspended", "Polling stopped (spec.suspend is true).")]
        if changed and not was
        else []
    )
    return StatusUpdate(new, changed, transitions)


# ---------------------------------------------------------------- polling


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def poll_interval(spec: Mapping[str, Any]) -> float:
    """`spec.pollIntervalSeconds`: the CRD's default (30 s) when absent or unreadable,
    never below its minimum (5 s)."""
    try:
        return max(5.0, float(spec.get("pollIntervalSeconds", 30)))
    except (TypeError, ValueError):
        return 30.0


def next_poll_delay(
    kind: str,
    status: Mapping[str, Any] | None,
    poll_interval: float,
    *,
    error: BaseException | None = None,
    now: datetime | None = None,
) -> float | None:
    """Seconds until the next read, or None to stop polling (until the spec changes).

    The rule, as docs/status.md states it:
    - a permanent failure (not found, access denied, no credentials): slow;
    - throttled: the server's retry-after hint, at least the interval, at most slow;
    - a job in a terminal phase whose cluster is Deleted and whose cuHours is present:
      stop; likewise when nothing changed for USAGE_WAIT_SECONDS after that (usage never
      came); any other terminal job: slow;
    - a Stopped or Error cluster: slow;
    - anything else: the spec's interval.
    Slow is max(interval * 4, 120 s).
    """
    slow = max(poll_interval * SLOW_POLL_FACTOR, SLOW_POLL_MIN_SECONDS)
    if error is not None:
        reason = failure_reason(error)
        if reason in PERMANENT_FAILURES:
            return slow
        if isinstance(error, errors.ThrottledError) and error.retry_after:
            # A hint beyond the slow cycle (a nearly empty bucket can ask for many
            # minutes) would leave the ref unobserved longer than any other failure does.
            return min(slow, max(poll_interval, error.retry_after))
        return poll_interval
    status = status or {}
    if kind == JOB_KIND:
        if status.get("phase") not in TERMINAL_PHASES:
            return poll_interval
        if status.get("clusterState") == "Deleted":
            if (status.get("usage") or {}).get("cuHours") is not None:
                return None
            last = _parse_time(status.get("lastSyncTime"))
            if (
                now is not None
                and last is not None
                and (now - last).total_seconds() >= USAGE_WAIT_SECONDS
            ):
                return None
        return slow
    if status.get("state") in ("Stopped", "Error"):
        return slow
    return poll_interval
