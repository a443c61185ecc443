"""Lifecycles as pure functions of simulated time.

A timeline is built once per script (and again only when the control API changes the
object); it lists the moments at which anything visible changes and the snapshot of the
changing fields from each moment on. Reading an object is a bisect, so thousands of idle
objects cost nothing.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rayref.simulator.scripts import ClusterScript, JobOutcome, JobScript

Snapshot = dict[str, Any]

FINAL_JOB_STATUSES = frozenset({"Succeeded", "Failed", "Cancelled", "Timeout"})

_FINAL_MESSAGES: dict[str, str] = {
    "Succeeded": "Job finished successfully.",
    "Failed": "Job failed: the entrypoint exited with code 1.",
    "Timeout": "Job was stopped: it ran longer than activeDeadlineSeconds.",
    "Cancelled": "Job was cancelled.",
}


class Timeline:
    """Moments (sim ms) and the snapshot valid from each moment until the next."""

    def __init__(self, events: Sequence[tuple[int, Snapshot]]) -> None:
        ordered = sorted(events, key=lambda event: event[0])
        self.times: list[int] = [moment for moment, _ in ordered]
        self.snapshots: list[Snapshot] = [snapshot for _, snapshot in ordered]

    def index_at(self, now_ms: int) -> int:
        # before the first moment the object shows its first state
        return max(0, bisect.bisect_right(self.times, now_ms) - 1)

    def bounds(self, index: int) -> tuple[int, int]:
        """Simulated interval [start, end) in which snapshot `index` holds."""
        start = self.times[index] if index > 0 else -(2**62)
        end = self.times[index + 1] if index + 1 < len(self.times) else 2**62
        return start, end

    def last_change_ms(self, now_ms: int) -> int:
        return self.times[self.index_at(now_ms)]


@dataclass(frozen=True)
class ForcedEnd:
    """A control-API action that ends a job early (cancel, fail, succeed, time out)."""

    at_ms: int
    outcome: JobOutcome
    message: str | None = None


def job_timeline(submit_ms: int, script: JobScript, forced: ForcedEnd | None = None) -> Timeline:
    pending_at = submit_ms + int(script.submitted_seconds * 1000)
    running_at = pending_at + int(script.pending_seconds * 1000)
    outcome_at = running_at + int(script.running_seconds * 1000)
    events: list[tuple[int, Snapshot]] = [
        (
            submit_ms,
            {"status": "Submitted", "clusterState": "Submitted", "message": "Job submitted."},
        ),
        (
            pending_at,
            {
                "status": "Pending",
                "clusterState": "Pending",
                "message": "Creating the Ray cluster.",
            },
        ),
        (
            running_at,
            {
                "status": "Running",
                "clusterState": "Running",
                "message": "Job is running.",
                "startTime": running_at,
            },
        ),
    ]
    outcome: JobOutcome | None = script.outcome
    end_at = outcome_at
    message = script.final_message
    if forced is not None and (outcome is None or forced.at_ms < outcome_at):
        events = [event for event in events if event[0] < forced.at_ms]
        outcome, end_at, message = forced.outcome, forced.at_ms, forced.message
    if outcome is not None:
        started_at = running_at if running_at < end_at else None
        events.extend(_final_events(outcome, end_at, started_at, script, message))
    # cumulative: each snapshot carries everything set so far
    merged: list[tuple[int, Snapshot]] = []
    state: Snapshot = {}
    for moment, changes in sorted(events, key=lambda event: event[0]):
        state = {**state, **changes}
        if merged and merged[-1][0] == moment:
            merged[-1] = (moment, state)
        else:
            merged.append((moment, state))
    return Timeline(merged)


def _final_events(
    outcome: JobOutcome,
    at_ms: int,
    started_at: int | None,
    script: JobScript,
    message: str | None,
) -> list[tuple[int, Snapshot]]:
    events: list[tuple[int, Snapshot]] = []
    end_at = at_ms
    if outcome == "Cancelled":
        events.append((at_ms, {"status": "Cancelling", "message": "Job is being cancelled."}))
        end_at = at_ms + int(script.cancelling_seconds * 1000)
    run_ms = max(0, end_at - started_at) if started_at is not None else 0
    events.append(
        (
            end_at,
            {
                "status": outcome,
                "message": message or _FINAL_MESSAGES[outcome],
                "endTime": end_at,
                "duration": run_ms // 1000,
            },
        )
    )
    released_at = end_at + int(script.cluster_release_seconds * 1000)
    events.append((released_at, {"clusterState": "Deleted"}))
    usage: Snapshot = {"cuHours": round(run_ms / 3_600_000 * script.cu_per_hour, 4)}
    if script.gpu_spec:
        usage["guHours"] = {
            "gpuSpec": script.gpu_spec,
            "gpuHours": round(run_ms / 3_600_000 * script.gpu_count, 4),
        }
    events.append((released_at + int(script.cu_hours_delay_seconds * 1000), usage))
    return events


# --- clusters -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterRun:
    """One run of a cluster (from a create or a start) and what happens to it."""

    cluster_id: str
    run_index: int
    start_ms: int
    script: ClusterScript
    worker_groups: tuple[tuple[str, int], ...]  # (groupName, replica)
    stop_at_ms: int | None = None
    error_at_ms: int | None = None
    error_message: str | None = None
    extra_ooms: tuple[tuple[str, int, int], ...] = ()  # (instance, at ms, restart ms)

    @property
    def instance_names(self) -> list[tuple[str, str, str]]:
        """(key, type, pod name): head first, then workers numbered across groups."""
        names = [("head", "Head", f"{self.cluster_id}-head-{self._suffix('head')}")]
        worker_index = 0
        for group, replica in self.worker_groups:
            for _ in range(replica):
                key = f"worker-{worker_index}"
                pod = f"{self.cluster_id}-{group.lower()}-worker-{self._suffix(key)}"
                names.append((key, "Worker", pod))
                worker_index += 1
        return names

    def _suffix(self, key: str) -> str:
        digest = hashlib.blake2s(f"{self.cluster_id}/{self.run_index}/{key}".encode()).hexdigest()
        return digest[:5]

    def ooms(self) -> list[tuple[str, int, int]]:
        scripted = [
            (
                kill.instance,
                self.start_ms + int(kill.at_seconds * 1000),
                int(kill.restart_seconds * 1000),
            )
            for kill in self.script.oom_kills
        ]
        return sorted([*scripted, *self.extra_ooms], key=lambda kill: kill[1])

    def end_ms(self) -> int | None:
        """When the run stops changing (Stopped or Error)."""
        if self.error_at_ms is not None and (
            self.stop_at_ms is None or self.error_at_ms <= self.stop_at_ms
        ):
            return self.error_at_ms
        if self.stop_at_ms is not None:
            return self.stop_at_ms + int(self.script.stopping_seconds * 1000)
        return None


def cluster_run_from_script(
    cluster_id: str,
    run_index: int,
    start_ms: int,
    script: ClusterScript,
    worker_groups: tuple[tuple[str, int], ...],
) -> ClusterRun:
    return ClusterRun(
        cluster_id=cluster_id,
        run_index=run_index,
        start_ms=start_ms,
        script=script,
        worker_groups=worker_groups,
        stop_at_ms=(
            start_ms + int(script.stop_at_seconds * 1000)
            if script.stop_at_seconds is not None
            else None
        ),
        error_at_ms=(
            start_ms + int(script.error_at_seconds * 1000)
            if script.error_at_seconds is not None
            else None
        ),
        error_message=script.error_message,
    )


def cluster_timeline(run: ClusterRun) -> Timeline:
    script = run.script
    start = run.start_ms
    moments = {
        start,
        start + int(script.head_ready_seconds * 1000),
        start + int(script.workers_appear_seconds * 1000),
        start + int(script.workers_ready_seconds * 1000),
        start + int(script.starting_seconds * 1000),
    }
    for _, at_ms, restart_ms in run.ooms():
        moments.update((at_ms, at_ms + restart_ms))
    if run.stop_at_ms is not None:
        moments.update((run.stop_at_ms, run.stop_at_ms + int(script.stopping_seconds * 1000)))
    if run.error_at_ms is not None:
        moments.add(run.error_at_ms)
    end = run.end_ms()
    if end is not None:
        moments = {moment for moment in moments if moment <= end}
    return Timeline([(moment, cluster_snapshot(run, moment)) for moment in sorted(moments)])


def cluster_snapshot(run: ClusterRun, now_ms: int) -> Snapshot:
    script = run.script
    start = run.start_ms
    stopping_end = (
        run.stop_at_ms + int(script.stopping_seconds * 1000) if run.stop_at_ms is not None else None
    )
    error_at = run.error_at_ms
    # an error after the stop request is not reached: the run is already going away
    errored = (
        error_at is not None
        and now_ms >= error_at
        and (run.stop_at_ms is None or error_at <= run.stop_at_ms)
    )
    if errored:
        state, message = "Error", run.error_message or script.error_message
    elif stopping_end is not None and now_ms >= stopping_end:
        return {"state": "Stopped", "message": "Cluster is stopped.", "instances": []}
    elif run.stop_at_ms is not None and now_ms >= run.stop_at_ms:
        state, message = "Stopping", "Cluster is stopping."
    elif now_ms < start + int(script.starting_seconds * 1000):
        state, message = "Starting", "Cluster is starting."
    else:
        state, message = "Running", "ok"
    ooms_by_instance: dict[str, list[tuple[int, int]]] = {}
    for instance_key, at_ms, restart_ms in run.ooms():
        ooms_by_instance.setdefault(instance_key, []).append((at_ms, restart_ms))
    instances = []
    for key, kind, pod in run.instance_names:
        is_head = kind == "Head"
        created = start if is_head else start + int(script.workers_appear_seconds * 1000)
        ready_s = script.head_ready_seconds if is_head else script.workers_ready_seconds
        ready = max(created, start + int(ready_s * 1000))
        instance = _instance(kind, pod, created, ready, now_ms, ooms_by_instance.get(key, []))
        if instance is None:
            continue
        if state == "Error" and is_head:
            instance.update(
                phase="Failed",
                containerState="Terminated",
                containerExitCode=1,
                reason="Error",
                containerStateReason="Error",
                message=message,
            )
        instances.append(instance)
    return {"state": state, "message": message, "instances": instances}


def _instance(
    kind: str,
    pod: str,
    created: int,
    ready: int,
    now_ms: int,
    ooms: list[tuple[int, int]],
) -> Snapshot | None:
    if now_ms < created:
        return None
    instance: Snapshot = {"type": kind, "instanceId": pod, "createTime": created}
    if now_ms < ready:
        instance.update(
            containerState="Waiting",
            reason="",
            phase="Pending",
            message="Pod is being scheduled.",
            containerStateReason="ContainerCreating",
            containerStateMessage="",
        )
        return instance
    instance.update(
        containerState="Running",
        reason="",
        phase="Running",
        message="ok",
        startTime=ready,
        containerStateReason="ok",
        containerStateMessage="",
    )
    for at_ms, restart_ms in ooms:
        if at_ms < ready or at_ms > now_ms:
            continue
        if now_ms < at_ms + restart_ms:
            instance.update(
                containerState="Terminated",
                reason="OOMKilled",
                containerStateReason="OOMKilled",
                containerStateMessage="The container exceeded its memory limit.",
                containerExitCode=137,
            )
        else:
            # back up; like a pod's lastState the last termination stays visible
            instance.update(
                containerState="Running",
                reason="OOMKilled",
                startTime=at_ms + restart_ms,
                containerStateReason="ok",
                containerStateMessage="Restarted after OOMKilled.",
                containerExitCode=137,
            )
    return instance
