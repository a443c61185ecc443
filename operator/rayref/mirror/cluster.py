"""RayClusterRef: a remote Ray cluster -> its status, conditions, events and connection data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rayref.api import models as api
from rayref.api.kinds import CLUSTER_KIND
from rayref.emr.models import RayCluster
from rayref.mirror import conditions as cond
from rayref.mirror import limits
from rayref.mirror.failure import bounded_update
from rayref.mirror.status import (
    UNKNOWN,
    StatusUpdate,
    Transition,
    as_dict,
    dump,
    head_spec,
    health,
    recovery,
    synced_ok,
    text_or_none,
    worker_specs,
)
from rayref.mirror.times import rfc3339

_OOM = "OOMKilled"


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
            start_time=rfc3339(i.start_time),
            create_time=rfc3339(i.create_time),
        )
        for i in remote.instances
    ]


def _cluster_fields(remote: RayCluster) -> api.RayClusterRefStatus:
    instances = _instances(remote)
    dumped = [i.model_dump(by_alias=True, exclude_none=True) for i in instances]
    ready = sum(1 for i in dumped if instance_running(i))
    return api.RayClusterRefStatus(
        state=text_or_none(remote.state) or UNKNOWN,
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
        head_spec=head_spec(remote.head_spec),
        worker_specs=worker_specs(remote.worker_spec),
        volume_ids=list(remote.volume_ids) or None,
        job_url=remote.job_url,
        job_url_inner=remote.job_url_inner,
        grpc_endpoint=remote.grpc_endpoint,
        dashboard_url=remote.dashboard_url.redacted() if remote.dashboard_url else None,
        create_time=rfc3339(remote.create_time),
        start_time=rfc3339(remote.start_time),
        modified_time=rfc3339(remote.modified_time),
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
    return health(
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
    transitions = recovery(previous)
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


def _instances_observed(new: Mapping[str, Any], prev: Mapping[str, Any], now: datetime) -> str:
    """When the node list shown was read; kept while the list is the same, like
    lastSyncTime, so that a node refresh finding nothing new writes nothing."""
    kept = prev.get("instancesObservedTime")
    if isinstance(kept, str) and (new.get("instances") or []) == (prev.get("instances") or []):
        return kept
    return cond.format_time(now)


def cluster_status(
    remote: RayCluster,
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: datetime,
) -> StatusUpdate:
    """The RayClusterRef status after a successful GetRayCluster."""
    prev = as_dict(previous)
    # Clipped as it will be stored, so that the node list compares equal to the stored
    # one: a node reason past the clip limit otherwise moved instancesObservedTime (and
    # with it lastSyncTime) on every read, a status write per poll.
    new = limits.bounded(dump(_cluster_fields(remote)))
    conditions = synced_ok(list(prev.get("conditions") or []), "cluster", generation, now)
    new["observedGeneration"] = generation
    new["instancesObservedTime"] = _instances_observed(new, prev, now)
    new["conditions"] = _cluster_conditions(conditions, new, generation, now)
    return bounded_update(
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
