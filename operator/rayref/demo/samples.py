"""The demo's sample refs and what each should end as, read from the manifests and the scenario.

Nothing here knows the demo's names: a sample ref names a remote object (workspace +
submission or cluster ID), the scenario scripts that object's life, and the
expected final state follows from the script (a job's `outcome`; a cluster Running
with every node up after its scripted OOM kills, or Error/Stopped when scripted so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rayref.api.kinds import CLUSTER_KIND, CLUSTER_PLURAL, GROUP, JOB_KIND, JOB_PLURAL
from rayref.simulator.scenario import Scenario

PLURALS = {JOB_KIND: JOB_PLURAL, CLUSTER_KIND: CLUSTER_PLURAL}


class SampleError(ValueError):
    """The sample manifests cannot drive the demo (no refs, unreadable YAML)."""


@dataclass(frozen=True)
class SampleRef:
    kind: str
    namespace: str
    name: str
    spec: Mapping[str, Any]

    @property
    def plural(self) -> str:
        return PLURALS[self.kind]

    @property
    def resource(self) -> str:
        """`rayjobref/name`, as kubectl takes it."""
        return f"{self.kind.lower()}/{self.name}"

    @property
    def remote_id(self) -> str:
        key = "submissionId" if self.kind == JOB_KIND else "clusterId"
        return str(self.spec.get(key, ""))


@dataclass(frozen=True)
class Samples:
    documents: list[dict[str, Any]]
    refs: list[SampleRef]

    @property
    def namespaces(self) -> list[str]:
        return sorted({ref.namespace for ref in self.refs})

    def first(self, kind: str) -> SampleRef | None:
        return next((ref for ref in self.refs if ref.kind == kind), None)


def _manifest_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))


def load_samples(path: Path) -> Samples:
    """Every document of a manifest file or of a directory's YAML files (in name order)."""
    documents: list[dict[str, Any]] = []
    for manifest in _manifest_files(path):
        try:
            loaded = list(yaml.safe_load_all(manifest.read_text()))
        except yaml.YAMLError as error:
            raise SampleError(f"{manifest}: not YAML: {error}") from error
        documents += [doc for doc in loaded if isinstance(doc, dict)]
    refs = [
        SampleRef(
            kind=str(doc["kind"]),
            namespace=str(doc.get("metadata", {}).get("namespace") or "default"),
            name=str(doc.get("metadata", {}).get("name", "")),
            spec=doc.get("spec") or {},
        )
        for doc in documents
        if str(doc.get("apiVersion", "")).startswith(f"{GROUP}/") and doc.get("kind") in PLURALS
    ]
    if not refs:
        raise SampleError(f"{path} holds no RayJobRef or RayClusterRef")
    return Samples(documents, refs)


@dataclass(frozen=True)
class Expectation:
    """The final status a sample ref should reach, as a person would describe it."""

    state: str  # job phase or cluster state; "" when the object is not in the scenario
    all_ready: bool = False  # cluster: every node running
    oom_recoveries: int = 0  # cluster: nodes that show OOMKilled as their last state
    remote_missing: bool = False  # the scenario lacks the object: Synced=False RemoteNotFound

    def describe(self) -> str:
        if self.remote_missing:
            return "Synced=False (RemoteNotFound)"
        text = self.state
        if self.all_ready:
            text += ", every node ready"
        if self.oom_recoveries:
            text += f", {self.oom_recoveries} node(s) back after OOMKilled"
        return text


def expectation_for(ref: SampleRef, scenario: Scenario) -> Expectation:
    workspace = next(
        (w for w in scenario.workspaces if w.workspace_id == ref.spec.get("workspaceId")), None
    )
    if workspace is None:
        return Expectation("", remote_missing=True)
    if ref.kind == JOB_KIND:
        for seed in workspace.jobs:
            for job in seed.expand():
                if job.submission_id == ref.remote_id:
                    # A job without an outcome runs until someone ends it.
                    return Expectation(job.script.outcome or "Running")
        return Expectation("", remote_missing=True)
    for cluster in workspace.clusters:
        if cluster.cluster_id == ref.remote_id:
            script = cluster.script
            if script.error_at_seconds is not None:
                return Expectation("Error")
            if script.stop_at_seconds is not None:
                return Expectation("Stopped")
            killed = {kill.instance for kill in script.oom_kills}
            return Expectation("Running", all_ready=True, oom_recoveries=len(killed))
    return Expectation("", remote_missing=True)


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return {}


def state_of(kind: str, status: Mapping[str, Any]) -> str:
    return str(status.get("phase" if kind == JOB_KIND else "state") or "")


def is_met(expectation: Expectation, kind: str, status: Mapping[str, Any]) -> bool:
    synced = _condition(status, "Synced")
    if expectation.remote_missing:
        return synced.get("status") == "False" and synced.get("reason") == "RemoteNotFound"
    if synced.get("status") != "True" or state_of(kind, status) != expectation.state:
        return False
    instances = [i for i in status.get("instances") or [] if isinstance(i, Mapping)]
    if expectation.all_ready:
        total = int(status.get("totalInstances") or 0)
        if total == 0 or int(status.get("readyInstances") or 0) != total:
            return False
    recovered = [
        i for i in instances if i.get("reason") == "OOMKilled" and i.get("phase") == "Running"
    ]
    return len(recovered) >= expectation.oom_recoveries
