"""The simulated world: workspaces holding jobs and clusters.

Each record keeps its static API fields, its lifecycle timeline and the control-API
overrides. Views are computed lazily from the simulated clock and cached (as ready
JSON bytes) until the next moment of the timeline or the next change of the record.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from rayref.simulator.clock import SimClock
from rayref.simulator.fields import (
    CLUSTER_KEY_ORDER,
    CLUSTER_SUMMARY_KEYS,
    JOB_KEY_ORDER,
    JOB_SUMMARY_KEYS,
    complete_node_specs,
    default_cluster_fields,
    default_job_fields,
    ordered,
    random_hex,
    random_id,
    summary_node_specs,
)
from rayref.simulator.lifecycle import (
    FINAL_JOB_STATUSES,
    ClusterRun,
    ForcedEnd,
    Timeline,
    cluster_run_from_script,
    cluster_timeline,
    job_timeline,
)
from rayref.simulator.scripts import ClusterScript, JobOutcome, JobScript
from rayref.simulator.specs import ClusterSpec, ClusterUpdate, JobSpec, JobUpdate

MAX_INSTANCES_PER_GROUP = 50

_ACTION_OUTCOMES: dict[str, JobOutcome] = {
    "cancel": "Cancelled",
    "fail": "Failed",
    "succeed": "Succeeded",
    "timeout": "Timeout",
}


class ConflictError(Exception):
    """The requested change does not fit the object's current state."""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _apply_overrides(view: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if value is None:
            view.pop(key, None)
        else:
            view[key] = value


class _Record:
    """What jobs and clusters share: overrides, versioning and the view cache."""

    key_order: tuple[str, ...] = ()

    def __init__(self, workspace_id: str, object_id: str, wall_ms: int) -> None:
        self.workspace_id = workspace_id
        self.object_id = object_id
        self.overrides: dict[str, Any] = {}
        self.mutated_wall_ms = wall_ms
        self.version = 0
        self._cached_version = -1
        self._valid_from = 0
        self._valid_until = 0
        self._view: dict[str, Any] = {}
        self._body_tail = b""
        self._summary = b""

    @property
    def timeline(self) -> Timeline:
        raise NotImplementedError

    def _compose(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def _summarise(self, view: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def touched(self, wall_ms: int) -> None:
        self.version += 1
        self.mutated_wall_ms = wall_ms

    def _refresh(self, now_ms: int) -> None:
        if self._cached_version == self.version and self._valid_from <= now_ms < self._valid_until:
            return
        timeline = self.timeline
        index = timeline.index_at(now_ms)
        view = self._compose(index)
        _apply_overrides(view, self.overrides)
        view = ordered(view, self.key_order)
        self._view = view
        # the body without its opening brace, so a requestId can be put first cheaply
        self._body_tail = _dumps(view)[1:]
        self._summary = _dumps(self._summarise(view))
        self._valid_from, self._valid_until = timeline.bounds(index)
        self._cached_version = self.version

    def view(self, now_ms: int) -> dict[str, Any]:
        self._refresh(now_ms)
        return self._view

    def body_tail(self, now_ms: int) -> bytes:
        self._refresh(now_ms)
        return self._body_tail

    def summary(self, now_ms: int) -> bytes:
        self._refresh(now_ms)
        return self._summary

    def changed_at(self, clock: SimClock) -> int:
        """Wall ms of the last change of anything the Get operation shows."""
        last_sim = self.timeline.last_change_ms(clock.now_ms())
        return max(self.mutated_wall_ms, clock.wall_ms_at(last_sim))


class JobRecord(_Record):
    key_order = JOB_KEY_ORDER

    def __init__(
        self,
        workspace_id: str,
        submission_id: str,
        submit_ms: int,
        base: dict[str, Any],
        script: JobScript,
        wall_ms: int,
    ) -> None:
        super().__init__(workspace_id, submission_id, wall_ms)
        self.submit_ms = submit_ms
        self.base = base
        self.script = script
        self.forced: ForcedEnd | None = None
        self._timeline = job_timeline(submit_ms, script)

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def rebuild(self) -> None:
        self._timeline = job_timeline(self.submit_ms, self.script, self.forced)

    @property
    def sort_time(self) -> int:
        shown = self.overrides.get("submitTime")
        return shown if isinstance(shown, int) else self.submit_ms

    def _compose(self, index: int) -> dict[str, Any]:
        return {
            **self.base,
            "submissionId": self.object_id,
            "submitTime": self.submit_ms,
            **self._timeline.snapshots[index],
        }

    def _summarise(self, view: dict[str, Any]) -> dict[str, Any]:
        summary = {key: view[key] for key in JOB_SUMMARY_KEYS if key in view}
        if "resourceQueue" not in summary:
            head = view.get("headSpec")
            if isinstance(head, dict) and "queueName" in head:
                summary["resourceQueue"] = head["queueName"]
        return summary


class ClusterRecord(_Record):
    key_order = CLUSTER_KEY_ORDER

    def __init__(
        self,
        workspace_id: str,
        cluster_id: str,
        create_ms: int,
        base: dict[str, Any],
        script: ClusterScript,
        wall_ms: int,
        run_token: str,
    ) -> None:
        super().__init__(workspace_id, cluster_id, wall_ms)
        self.create_ms = create_ms
        self.modified_ms = create_ms
        self.base = base
        self.script = script
        self.run_token = run_token
        self.run = cluster_run_from_script(cluster_id, 0, create_ms, script, self.worker_groups())
        self._timeline = cluster_timeline(self.run)

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def worker_groups(self) -> tuple[tuple[str, int], ...]:
        specs = self.overrides.get("workerSpec", self.base.get("workerSpec")) or []
        groups = []
        for spec in specs:
            if isinstance(spec, dict):
                replica = spec.get("replica", 0)
                count = min(replica, MAX_INSTANCES_PER_GROUP) if isinstance(replica, int) else 0
                groups.append((str(spec.get("groupName", "group")), max(0, count)))
        return tuple(groups)

    def set_run(self, run: ClusterRun) -> None:
        self.run = run
        self._timeline = cluster_timeline(run)

    def _compose(self, index: int) -> dict[str, Any]:
        return {
            **self.base,
            "clusterId": self.object_id,
            "createTime": self.create_ms,
            "startTime": self.run.start_ms,
            "modifiedTime": self.modified_ms,
            "instanceId": f"{self.object_id}-{self.run_token}{self.run.run_index:02d}",
            **self._timeline.snapshots[index],
        }

    def _summarise(self, view: dict[str, Any]) -> dict[str, Any]:
        summary = {key: view[key] for key in CLUSTER_SUMMARY_KEYS if key in view}
        summary.update(summary_node_specs(view))
        return summary

    def state_at(self, now_ms: int) -> str:
        return str(self._timeline.snapshots[self._timeline.index_at(now_ms)]["state"])


class Workspace:
    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.jobs: dict[str, JobRecord] = {}
        self.clusters: dict[str, ClusterRecord] = {}
        self._job_order: list[JobRecord] | None = None
        self._cluster_order: list[ClusterRecord] | None = None

    def invalidate_order(self) -> None:
        self._job_order = None
        self._cluster_order = None

    def jobs_ordered(self) -> list[JobRecord]:
        """Newest submission first, ties by id: a stable order for paging."""
        if self._job_order is None:
            records = sorted(self.jobs.values(), key=lambda job: job.object_id)
            records.sort(key=lambda job: job.sort_time, reverse=True)
            self._job_order = records
        return self._job_order

    def clusters_ordered(self) -> list[ClusterRecord]:
        if self._cluster_order is None:
            records = sorted(self.clusters.values(), key=lambda cluster: cluster.object_id)
            records.sort(key=lambda cluster: cluster.create_ms, reverse=True)
            self._cluster_order = records
        return self._cluster_order


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str  # "job" | "cluster"
    workspace_id: str
    object_id: str
    changed_at: int  # wall ms
    deleted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "workspaceId": self.workspace_id,
            "id": self.object_id,
            "changedAt": self.changed_at,
            "deleted": self.deleted,
        }


class World:
    def __init__(self, clock: SimClock, region: str = "cn-hangzhou", seed: int = 0) -> None:
        self.clock = clock
        self.region = region
        self.seed = seed
        self.rng = random.Random(seed)
        self.workspaces: dict[str, Workspace] = {}
        self.tombstones: dict[tuple[str, str, str], int] = {}

    # --- workspaces ---------------------------------------------------------------

    def workspace(self, workspace_id: str) -> Workspace:
        """The workspace, created on first use."""
        found = self.workspaces.get(workspace_id)
        if found is None:
            found = self.workspaces[workspace_id] = Workspace(workspace_id)
        return found

    def new_workspace_id(self) -> str:
        while True:
            candidate = "w-" + random_hex(self.rng, 12)
            if candidate not in self.workspaces:
                return candidate

    # --- jobs ---------------------------------------------------------------------

    def create_job(self, workspace_id: str, spec: JobSpec) -> JobRecord:
        workspace = self.workspace(workspace_id)
        submission_id = spec.submission_id or random_id(self.rng, "rj-")
        if submission_id in workspace.jobs:
            raise ConflictError(f"job {submission_id} already exists in {workspace_id}")
        fields = default_job_fields(
            self.rng, self.region, workspace_id, submission_id, spec.script.gpu_spec
        )
        given = spec.api_fields()
        complete_node_specs(given, fields, "workerSpecs")
        fields.update(given)
        submit_ms = fields.pop("submitTime", None)
        if not isinstance(submit_ms, int):
            submit_ms = self.clock.now_ms() - int(spec.age_seconds * 1000)
        fields.pop("submissionId", None)
        record = JobRecord(
            workspace_id, submission_id, submit_ms, fields, spec.script, self.clock.wall_ms()
        )
        workspace.jobs[submission_id] = record
        workspace.invalidate_order()
        self.tombstones.pop(("job", workspace_id, submission_id), None)
        return record

    def job(self, workspace_id: str, submission_id: str) -> JobRecord | None:
        workspace = self.workspaces.get(workspace_id)
        return workspace.jobs.get(submission_id) if workspace else None

    def update_job(self, record: JobRecord, update: JobUpdate) -> None:
        now = self.clock.now_ms()
        if update.action is not None:
            status = record.view(now).get("status")
            if status in FINAL_JOB_STATUSES or status == "Cancelling":
                raise ConflictError(f"job {record.object_id} is already {status}")
            outcome = _ACTION_OUTCOMES[update.action]
            record.forced = ForcedEnd(now, outcome, update.message)
        if update.script is not None:
            record.script = update.script
        for key in update.clear_fields:
            record.overrides.pop(key, None)
        record.overrides.update(update.fields)
        record.rebuild()
        record.touched(self.clock.wall_ms())
        self.workspace(record.workspace_id).invalidate_order()

    def delete_job(self, record: JobRecord) -> None:
        workspace = self.workspace(record.workspace_id)
        del workspace.jobs[record.object_id]
        workspace.invalidate_order()
        key = ("job", record.workspace_id, record.object_id)
        self.tombstones[key] = self.clock.wall_ms()

    # --- clusters -----------------------------------------------------------------

    def create_cluster(self, workspace_id: str, spec: ClusterSpec) -> ClusterRecord:
        workspace = self.workspace(workspace_id)
        cluster_id = spec.cluster_id or random_id(self.rng, "ray-")
        if cluster_id in workspace.clusters:
            raise ConflictError(f"cluster {cluster_id} already exists in {workspace_id}")
        # The node secrets have a generator of their own: drawn from self.rng they would
        # change every id and token generated after them in a seeded scenario.
        secrets = random.Random(f"{self.seed}/{workspace_id}/{cluster_id}")
        fields = default_cluster_fields(self.rng, self.region, workspace_id, cluster_id, secrets)
        given = spec.api_fields()
        complete_node_specs(given, fields, "workerSpec")
        fields.update(given)
        create_ms = fields.pop("createTime", None)
        if not isinstance(create_ms, int):
            create_ms = self.clock.now_ms() - int(spec.age_seconds * 1000)
        fields.pop("clusterId", None)
        record = ClusterRecord(
            workspace_id,
            cluster_id,
            create_ms,
            fields,
            spec.script,
            self.clock.wall_ms(),
            random_hex(self.rng, 5),
        )
        workspace.clusters[cluster_id] = record
        workspace.invalidate_order()
        self.tombstones.pop(("cluster", workspace_id, cluster_id), None)
        return record

    def cluster(self, workspace_id: str, cluster_id: str) -> ClusterRecord | None:
        workspace = self.workspaces.get(workspace_id)
        return workspace.clusters.get(cluster_id) if workspace else None

    def update_cluster(self, record: ClusterRecord, update: ClusterUpdate) -> None:
        now = self.clock.now_ms()
        for key in update.clear_fields:
            record.overrides.pop(key, None)
        record.overrides.update(update.fields)
        run = record.run
        if update.script is not None:
            record.script = update.script
            run = dataclasses.replace(
                cluster_run_from_script(
                    record.object_id, run.run_index, run.start_ms, update.script, run.worker_groups
                ),
                extra_ooms=run.extra_ooms,
            )
        state = record.state_at(now)
        if update.action == "stop":
            if state in ("Stopping", "Stopped"):
                raise ConflictError(f"cluster {record.object_id} is already {state}")
            # stopping a failed cluster clears the error, as a real stop would
            run = dataclasses.replace(run, stop_at_ms=now, error_at_ms=None)
        elif update.action == "start":
            if state not in ("Stopped", "Error"):
                raise ConflictError(f"cluster {record.object_id} is {state}, not stopped")
            # scripted stop, error and OOM kills belong to the first run only
            fresh = record.script.model_copy(
                update={"oom_kills": (), "stop_at_seconds": None, "error_at_seconds": None}
            )
            run = cluster_run_from_script(
                record.object_id, run.run_index + 1, now, fresh, record.worker_groups()
            )
        elif update.action == "error":
            if state in ("Stopped", "Error"):
                raise ConflictError(f"cluster {record.object_id} is already {state}")
            run = dataclasses.replace(
                run, error_at_ms=now, error_message=update.message or record.script.error_message
            )
        elif update.action == "oom":
            if state != "Running" and state != "Starting":
                raise ConflictError(f"cluster {record.object_id} is {state}")
            restart_ms = int(update.restart_seconds * 1000)
            run = dataclasses.replace(
                run, extra_ooms=(*run.extra_ooms, (update.instance, now, restart_ms))
            )
        elif "workerSpec" in update.fields or "workerSpec" in update.clear_fields:
            run = dataclasses.replace(run, worker_groups=record.worker_groups())
        record.set_run(run)
        record.modified_ms = now
        record.touched(self.clock.wall_ms())

    def delete_cluster(self, record: ClusterRecord) -> None:
        workspace = self.workspace(record.workspace_id)
        del workspace.clusters[record.object_id]
        workspace.invalidate_order()
        key = ("cluster", record.workspace_id, record.object_id)
        self.tombstones[key] = self.clock.wall_ms()

    # --- freshness ----------------------------------------------------------------

    def changes(self, since_wall_ms: int = 0) -> list[Change]:
        """Objects whose visible state changed after `since_wall_ms` (wall), deletions too."""
        found: list[Change] = []
        for workspace in self.workspaces.values():
            for job in workspace.jobs.values():
                at = job.changed_at(self.clock)
                if at > since_wall_ms:
                    found.append(Change("job", workspace.workspace_id, job.object_id, at))
            for cluster in workspace.clusters.values():
                at = cluster.changed_at(self.clock)
                if at > since_wall_ms:
                    found.append(Change("cluster", workspace.workspace_id, cluster.object_id, at))
        for (kind, workspace_id, object_id), at in self.tombstones.items():
            if at > since_wall_ms:
                found.append(Change(kind, workspace_id, object_id, at, deleted=True))
        found.sort(key=lambda change: change.changed_at)
        return found
