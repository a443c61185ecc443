"""The benchmark's world: remote jobs and clusters in the simulator, refs in the apiserver.

For N RayJobRefs: 20% of the jobs run (the newest ones), 80% finished long ago with
their usage reported; N/10 RayClusterRefs, 20% Running and 80% Stopped. Refs are spread
over four namespaces, each with its own workspace and credentials Secret, one of them
holding 70% of everything (fairness: it must not starve the three small ones); or, with
`plan(size, workspaces=W)`, over W namespaces of equal size (bench.shards: sharding
assigns whole workspaces to slots, so it needs many of them).

Statuses are written before an operator starts, with the operator's own mapping from
what GetRayJob / GetRayCluster show, as a previous operator run would have left them:
every start of an operator in the benchmark is a restart.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.kubeapi import Kube
from rayref.api.kinds import API_VERSION, CLUSTER_KIND, GROUP, JOB_KIND, PLURALS, VERSION
from rayref.emr.credentials import Credentials
from rayref.emr.models import RayCluster, RayJob
from rayref.mirror.cluster import cluster_status
from rayref.mirror.job import job_status
from rayref.simulator.control import SimulatorControl

KEY = Credentials("LTAI5tBENCHMARKkey0001", "bench-secret-0123456789abcdef")
# The Secret holding KEY in every namespace; every ref names it.
SECRET_NAME = "creds"
SHARES = (0.7, 0.1, 0.1, 0.1)
ACTIVE_SHARE = 0.2
POLL_INTERVAL = 30
# Running jobs run until the benchmark ends them; their cluster is kept for a day, so
# ending one is exactly one visible change.
RUNNING_SCRIPT = {
    "submittedSeconds": 0,
    "pendingSeconds": 0,
    "outcome": None,
    "clusterReleaseSeconds": 86400,
}


@dataclass(frozen=True)
class Ref:
    kind: str
    namespace: str
    name: str
    workspace_id: str
    remote_id: str
    active: bool


@dataclass
class World:
    size: int
    namespaces: list[tuple[str, str]] = field(default_factory=list)  # (namespace, workspace)
    jobs: list[Ref] = field(default_factory=list)
    clusters: list[Ref] = field(default_factory=list)

    @property
    def refs(self) -> list[Ref]:
        return self.jobs + self.clusters

    def active_jobs(self) -> list[Ref]:
        return [ref for ref in self.jobs if ref.active]


def _split(total: int, shares: tuple[float, ...]) -> list[int]:
    counts = [int(total * share) for share in shares]
    counts[0] += total - sum(counts)
    return counts


def plan(size: int, workspaces: int | None = None) -> World:
    shares = SHARES if workspaces is None else (1 / workspaces,) * workspaces
    world = World(size)
    splits = zip(_split(size, shares), _split(size // 10, shares), strict=True)
    for index, (jobs, clusters) in enumerate(splits):
        namespace, workspace = f"team-{index}", f"w-bench{index:04d}"
        world.namespaces.append((namespace, workspace))
        active = int(jobs * ACTIVE_SHARE)
        for i in range(jobs):
            running = i < active
            submission = (
                f"rj-t{index}{'run' if running else 'old'}-{i if running else i - active:05d}"
            )
            world.jobs.append(Ref(JOB_KIND, namespace, submission, workspace, submission, running))
        running_clusters = int(clusters * ACTIVE_SHARE)
        for i in range(clusters):
            cluster = f"ray-t{index}c{i:05d}"
            world.clusters.append(
                Ref(CLUSTER_KIND, namespace, cluster, workspace, cluster, i < running_clusters)
            )
    return world


def scenario(world: World) -> dict[str, Any]:
    workspaces: list[dict[str, Any]] = []
    for namespace, workspace in world.namespaces:
        jobs = [ref for ref in world.jobs if ref.namespace == namespace]
        active = sum(1 for ref in jobs if ref.active)
        index = namespace.removeprefix("team-")
        seeds: list[dict[str, Any]] = []
        if active:
            seeds.append(
                {
                    "submissionId": f"rj-t{index}run",
                    "count": active,
                    "ageSeconds": 300,
                    "ageStepSeconds": 0.5,
                    "script": RUNNING_SCRIPT,
                }
            )
        if len(jobs) > active:
            seeds.append(
                {
                    "submissionId": f"rj-t{index}old",
                    "count": len(jobs) - active,
                    "ageSeconds": 7200,
                    "ageStepSeconds": 2,
                }
            )
        clusters = [
            {"clusterId": ref.remote_id, "ageSeconds": 3600}
            | ({} if ref.active else {"script": {"stopAtSeconds": 60}})
            for ref in world.clusters
            if ref.namespace == namespace
        ]
        workspaces.append({"workspaceId": workspace, "jobs": seeds, "clusters": clusters})
    for entry in workspaces:
        for seed in entry["jobs"]:
            if seed["count"] == 1:  # a single copy keeps its id as is
                seed["submissionId"] += "-00000"
    return {
        "settings": {"seed": 7},
        "keys": [{"accessKeyId": KEY.access_key_id, "accessKeySecret": KEY.access_key_secret}],
        "workspaces": workspaces,
    }


def write_scenario(world: World, path: Path) -> Path:
    path.write_text(json.dumps(scenario(world)))
    return path


def _manifest(
    ref: Ref, interval: int, labels: Callable[[Ref], dict[str, str]] | None = None
) -> dict[str, Any]:
    id_field = "submissionId" if ref.kind == JOB_KIND else "clusterId"
    metadata: dict[str, Any] = {"name": ref.name, "namespace": ref.namespace}
    if labels is not None:
        metadata["labels"] = labels(ref)
    return {
        "apiVersion": API_VERSION,
        "kind": ref.kind,
        "metadata": metadata,
        "spec": {
            "workspaceId": ref.workspace_id,
            id_field: ref.remote_id,
            "pollIntervalSeconds": interval,
            "credentialsSecretRef": {"name": SECRET_NAME},
        },
    }


def ref_path(ref: Ref, *, status: bool = False) -> str:
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{ref.namespace}/{PLURALS[ref.kind]}/{ref.name}"
    return base + ("/status" if status else "")


async def create(
    kube: Kube,
    world: World,
    log: Callable[[str], None],
    *,
    interval: int = POLL_INTERVAL,
    labels: Callable[[Ref], dict[str, str]] | None = None,
) -> None:
    """Namespaces, Secrets and every ref (without status; with `labels(ref)`)."""
    secret_data = {
        "accessKeyId": base64.b64encode(KEY.access_key_id.encode()).decode(),
        "accessKeySecret": base64.b64encode(KEY.access_key_secret.encode()).decode(),
    }
    for namespace, _ in world.namespaces:
        await kube.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            ok_statuses=(409,),
        )
        await kube.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET_NAME, "namespace": namespace},
                "data": secret_data,
            },
            ok_statuses=(409,),
        )

    def create_one(ref: Ref) -> Callable[[], Any]:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{ref.namespace}/{PLURALS[ref.kind]}"
        return lambda: kube.request("POST", path, _manifest(ref, interval, labels))

    started = asyncio.get_running_loop().time()
    await kube.many((create_one(ref) for ref in world.refs), concurrency=32)
    log(f"created {len(world.refs)} refs in {asyncio.get_running_loop().time() - started:.1f} s")


async def presync(
    kube: Kube, control: SimulatorControl, world: World, log: Callable[[str], None]
) -> None:
    """Write every ref's status as the operator would after reading the remote object."""
    now = datetime.now(UTC)

    def sync_one(ref: Ref) -> Callable[[], Any]:
        async def run() -> None:
            if ref.kind == JOB_KIND:
                view = await control.get_job_view(ref.workspace_id, ref.remote_id)
                status = job_status(
                    RayJob.model_validate(view.fields), None, generation=1, now=now
                ).status
            else:
                view = await control.get_cluster_view(ref.workspace_id, ref.remote_id)
                status = cluster_status(
                    RayCluster.model_validate(view.fields), None, generation=1, now=now
                ).status
            await kube.request(
                "PATCH",
                ref_path(ref, status=True),
                {"status": status},
                content_type="application/merge-patch+json",
            )

        return run

    started = asyncio.get_running_loop().time()
    await kube.many((sync_one(ref) for ref in world.refs), concurrency=16)
    log(f"wrote {len(world.refs)} statuses in {asyncio.get_running_loop().time() - started:.1f} s")
