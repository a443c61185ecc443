"""kstatus (Flux, kpt) and Argo CD read the statuses the mapping writes as docs/status.md says.

kstatus is computed by the real library (tests/kstatus, sigs.k8s.io/cli-utils); Argo CD's
reading by running docs/health/*/health.lua in a Lua interpreter, as Argo CD does.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import lupa
import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr import errors
from rayref.mirror.cluster import cluster_status
from rayref.mirror.failure import suspended, sync_failure
from rayref.mirror.job import job_status
from tests.fixtures.paths import REPO_ROOT
from tests.kstatus.build import build as build_kstatus
from tests.unit.mirror.remotes import T0, at, cluster, job, node

JOB, CLUSTER = JOB_KIND, CLUSTER_KIND
NOT_FOUND = errors.NotFoundError("gone", code="ResourceNotFound", status_code=404)
THROTTLED = errors.ThrottledError("slow down", code="Throttling.User", status_code=400)


def _job(phase: str, cluster_state: str = "Running") -> dict[str, Any]:
    return job_status(
        job(status=phase, clusterState=cluster_state), None, generation=1, now=T0
    ).status


def _cluster(state: str, nodes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    remote = cluster(state=state, instances=nodes if nodes is not None else [node("w-1")])
    return cluster_status(remote, None, generation=1, now=T0).status


# name -> (kind, metadata.generation, status, kstatus, Argo CD health)
SCENARIOS: dict[str, tuple[str, int, dict[str, Any] | None, str, str]] = {
    # kstatus cannot tell before the first status write (its documented limitation).
    "job without status yet": (JOB, 1, None, "Current", "Progressing"),
    "job Submitted": (JOB, 1, _job("Submitted", "Submitted"), "InProgress", "Progressing"),
    "job Pending": (JOB, 1, _job("Pending", "Pending"), "InProgress", "Progressing"),
    "job Running": (JOB, 1, _job("Running"), "InProgress", "Progressing"),
    "job Cancelling": (JOB, 1, _job("Cancelling"), "InProgress", "Progressing"),
    "job Succeeded": (JOB, 1, _job("Succeeded", "Deleted"), "Current", "Healthy"),
    "job Failed": (JOB, 1, _job("Failed"), "Failed", "Degraded"),
    "job Cancelled": (JOB, 1, _job("Cancelled"), "Failed", "Degraded"),
    "job Timeout": (JOB, 1, _job("Timeout"), "Failed", "Degraded"),
    "job remote gone": (
        JOB,
        1,
        sync_failure(JOB, _job("Running"), NOT_FOUND, generation=1, now=at(30)).status,
        "Failed",
        "Degraded",
    ),
    "job Running, throttled": (
        JOB,
        1,
        sync_failure(JOB, _job("Running"), THROTTLED, generation=1, now=at(30)).status,
        "InProgress",
        "Progressing",
    ),
    "job Succeeded, throttled": (
        JOB,
        1,
        sync_failure(JOB, _job("Succeeded"), THROTTLED, generation=1, now=at(30)).status,
        "Current",
        "Healthy",
    ),
    "job spec changed, not yet observed": (JOB, 2, _job("Succeeded"), "InProgress", "Progressing"),
    "job Running, suspended": (
        JOB,
        2,
        suspended(JOB, _job("Running"), generation=2, now=at(30)).status,
        "InProgress",
        "Suspended",
    ),
    "cluster Starting": (CLUSTER, 1, _cluster("Starting", []), "InProgress", "Progressing"),
    "cluster Running, all nodes running": (
        CLUSTER,
        1,
        _cluster("Running", [node("h"), node("w-1")]),
        "Current",
        "Healthy",
    ),
    "cluster Running, a node down": (
        CLUSTER,
        1,
        _cluster("Running", [node("h"), node("w-1", "Pending")]),
        "InProgress",
        "Degraded",
    ),
    "cluster Stopping": (CLUSTER, 1, _cluster("Stopping"), "InProgress", "Progressing"),
    # kstatus has no "suspended": Ready=False reads as InProgress (docs/status.md says why
    # Ready stays False).
    "cluster Stopped": (CLUSTER, 1, _cluster("Stopped", []), "InProgress", "Suspended"),
    "cluster Error": (CLUSTER, 1, _cluster("Error", []), "Failed", "Degraded"),
    "cluster remote gone": (
        CLUSTER,
        1,
        sync_failure(CLUSTER, _cluster("Running"), NOT_FOUND, generation=1, now=at(30)).status,
        "Failed",
        "Degraded",
    ),
}


def _object(name: str, kind: str, generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "rayref.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default", "generation": generation},
        "spec": {"workspaceId": "w-d2d82aa09155"},
    }
    if status is not None:
        obj["status"] = json.loads(json.dumps(status))
    return obj


def _slug(name: str) -> str:
    return name.lower().replace(",", "").replace(" ", "-")


@pytest.fixture(scope="module")
def kstatus_results() -> dict[str, str]:
    binary = build_kstatus()
    items = [_object(_slug(n), *SCENARIOS[n][:3]) for n in SCENARIOS]
    result = subprocess.run(
        [str(binary)],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["name"]: line["status"] for line in lines}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_kstatus(name: str, kstatus_results: dict[str, str]) -> None:
    assert kstatus_results[_slug(name)] == SCENARIOS[name][3]


def _argo_health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    script = (REPO_ROOT / "docs" / "health" / f"rayref.io_{kind}" / "health.lua").read_text()
    lua = lupa.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(script)
    return str(hs["status"]), str(hs["message"])


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_argo_cd_health(name: str) -> None:
    kind, generation, status, _, health = SCENARIOS[name]
    got, message = _argo_health(kind, _object(_slug(name), kind, generation, status))
    assert got == health, message
    assert message


def test_argo_cd_messages_say_why() -> None:
    kind, generation, status, _, _ = SCENARIOS["cluster Running, a node down"]
    _, message = _argo_health(kind, _object("x", kind, generation, status))
    assert message.startswith("InstancesNotReady: 1/2 nodes running; not running: w-1 (Pending")
    kind, generation, status, _, _ = SCENARIOS["job remote gone"]
    _, message = _argo_health(kind, _object("x", kind, generation, status))
    assert message.startswith("RemoteNotFound: ResourceNotFound (HTTP 404): gone.")
