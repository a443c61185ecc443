"""RayClusterRef end to end: instances, an OOM-killed node, the connection Secret."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND as CLUSTER
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    apply,
    cluster_ref,
    condition,
    credentials_secret,
    events_of,
    eventually,
    frozen_clock,
    get_ref,
    get_secret,
    job_ref,
    reasons,
    synced,
    wait_polls,
    wait_status,
)

pytestmark = pytest.mark.usefixtures("shared_operator")


def state_is(state: str, ready: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return status.get("state") == state and (ready is None or status.get("ready") == ready)

    return check


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def test_a_cluster_ref_shows_instances_and_an_oom_killed_node(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        cluster = await control.create_cluster(workspace, name="dev")
        apply(kube, cluster_ref(namespace, "dev", workspace, cluster.id))
        obj = await wait_status(
            kube, CLUSTER, namespace, "dev", state_is("Starting"), what="Starting"
        )
        assert condition(obj, "Reconciling")["status"] == "True"

        await control.advance_clock(60)
        obj = await wait_status(
            kube, CLUSTER, namespace, "dev", state_is("Running", "3/3"), what="Running 3/3"
        )
        status = obj["status"]
        assert (status["readyInstances"], status["totalInstances"]) == (3, 3)
        assert sorted(i["type"] for i in status["instances"]) == ["Head", "Worker", "Worker"]
        assert all(i["phase"] == "Running" for i in status["instances"])
        assert condition(obj, "Ready")["status"] == "True"
        assert condition(obj, "Reconciling")["status"] == "False"

        await control.update_cluster(
            workspace, cluster.id, action="oom", instance="worker-0", restart_seconds=60
        )
        obj = await wait_status(
            kube, CLUSTER, namespace, "dev", state_is("Running", "2/3"), what="a node down"
        )
        killed = [i for i in obj["status"]["instances"] if i.get("reason") == "OOMKilled"]
        assert len(killed) == 1
        assert killed[0]["containerState"] == "Terminated"
        assert killed[0]["containerExitCode"] == 137
        ready = condition(obj, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InstancesNotReady")
        assert killed[0]["instanceId"] in ready["message"]
        oom_events = [
            e for e in events_of(kube, namespace, "dev") if e["reason"] == "InstanceOOMKilled"
        ]
        assert [e["type"] for e in oom_events] == ["Warning"]
        assert killed[0]["instanceId"] in oom_events[0]["message"]

        await control.advance_clock(60)
        obj = await wait_status(
            kube, CLUSTER, namespace, "dev", state_is("Running", "3/3"), what="the node back"
        )
        assert condition(obj, "Ready")["status"] == "True"
    table = kube.kubectl("get", "rayref", "-n", namespace).stdout
    assert "3/3" in table
    print(table)
    print(kube.kubectl("get", "rayref", "-n", namespace, "-o", "wide").stdout)


async def test_a_cluster_in_error_is_stalled_with_a_warning(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    cluster = await control.create_cluster(workspace, name="broken")
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        cluster_ref(namespace, "broken", workspace, cluster.id),
    )
    await wait_status(
        kube,
        CLUSTER,
        namespace,
        "broken",
        lambda o: "state" in (o.get("status") or {}),
        what="first read",
    )
    await control.update_cluster(workspace, cluster.id, action="error", message="quota exceeded")
    obj = await wait_status(kube, CLUSTER, namespace, "broken", state_is("Error"), what="Error")
    assert condition(obj, "Stalled")["status"] == "True"
    assert synced(obj) == ("True", "Synced")
    errors = [e for e in events_of(kube, namespace, "broken") if e["reason"] == "ClusterError"]
    assert [e["type"] for e in errors] == ["Warning"]
    assert "quota exceeded" in errors[0]["message"]


async def test_the_connection_secret_is_written_owned_updated_and_collected(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    cluster = await control.create_cluster(workspace, name="shared")
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        cluster_ref(
            namespace, "shared", workspace, cluster.id, connectionSecretRef={"name": "conn"}
        ),
    )

    def secret_written() -> dict[str, Any]:
        secret = get_secret(kube, namespace, "conn")
        assert secret is not None, "no Secret yet"
        return secret

    def written() -> tuple[dict[str, Any], dict[str, Any]]:
        # The operator writes the Secret first, then its Event and the status: all three.
        secret = secret_written()
        ref = get_ref(kube, CLUSTER, namespace, "shared")
        assert (ref.get("status") or {}).get("jobUrl"), "no endpoints in the status yet"
        assert "ConnectionSecretUpdated" in reasons(events_of(kube, namespace, "shared"))
        return secret, ref

    secret, ref = await eventually(written, what="the connection Secret, its Event, the status")
    data = decoded(secret)
    assert set(data) == {"jobUrl", "jobUrlInner", "grpcEndpoint", "submitToken", "dashboardUrl"}
    assert "token=" in data["dashboardUrl"]
    assert data["submitToken"]
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rayref"
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        CLUSTER,
        "shared",
        ref["metadata"]["uid"],
    )
    assert owner["controller"] is True
    # the status carries the endpoints, never the token
    status = ref["status"]
    assert status["jobUrl"] == data["jobUrl"]
    assert "token=" not in status["dashboardUrl"]
    assert data["submitToken"] not in str(ref)

    # a new token remotely: the Secret follows; the status never shows it
    await wait_status(
        kube, CLUSTER, namespace, "shared", state_is("Running", "3/3"), what="Running 3/3"
    )
    await control.update_cluster(workspace, cluster.id, fields={"submitToken": "rotated-token-2"})

    def token_rotated() -> None:
        assert decoded(secret_written())["submitToken"] == "rotated-token-2"

    await eventually(token_rotated, what="the Secret updated")
    assert "rotated-token-2" not in str(get_ref(kube, CLUSTER, namespace, "shared"))

    kube.kubectl("delete", "rayclusterref", "shared", "-n", namespace, "--wait=true")

    def collected() -> None:
        assert get_secret(kube, namespace, "conn") is None, "the Secret is still there"

    await eventually(collected, what="the Secret garbage-collected with its ref")


async def test_a_secret_the_operator_does_not_own_is_never_overwritten(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    cluster = await control.create_cluster(workspace, name="clash")
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        cluster_ref(
            namespace, "clash", workspace, cluster.id, connectionSecretRef={"name": "creds"}
        ),
    )

    def conflict_reported() -> None:
        assert "ConnectionSecretConflict" in reasons(events_of(kube, namespace, "clash"))

    await eventually(conflict_reported, what="a conflict event")
    await wait_polls(control, workspace, "GetRayCluster", 2, what="more polls")
    secret = get_secret(kube, namespace, "creds")
    assert secret is not None
    assert set(decoded(secret)) == {"accessKeyId", "accessKeySecret"}
    assert not secret["metadata"].get("ownerReferences")
    conflicts = [
        e for e in events_of(kube, namespace, "clash") if e["reason"] == "ConnectionSecretConflict"
    ]
    assert [(e["type"], e.get("count")) for e in conflicts] == [("Warning", 1)]


async def test_kubectl_get_rayref_lists_jobs_and_clusters_together(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    nightly = await control.create_job(
        workspace, name="nightly-etl", age_seconds=3600, script={"runningSeconds": 300}
    )
    training = await control.create_job(
        workspace, name="train-model", age_seconds=120, script={"outcome": None}
    )
    failing = await control.create_job(
        workspace, name="gpu-inference", age_seconds=600, script={"outcome": "Failed"}
    )
    cluster = await control.create_cluster(workspace, name="dev-cluster", age_seconds=600)
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "nightly-etl", workspace, nightly.id),
        job_ref(namespace, "train-model", workspace, training.id),
        job_ref(namespace, "gpu-inference", workspace, failing.id),
        job_ref(namespace, "typo", workspace, "rj-doesnotexist0001"),
        cluster_ref(namespace, "dev-cluster", workspace, cluster.id),
    )
    for name, phase in (
        ("nightly-etl", "Succeeded"),
        ("train-model", "Running"),
        ("gpu-inference", "Failed"),
    ):
        await wait_status(
            kube,
            "RayJobRef",
            namespace,
            name,
            phase_is(phase),
            what=f"{name} {phase}",
        )
    await wait_status(
        kube, "RayJobRef", namespace, "typo", lambda o: synced(o)[0] == "False", what="typo"
    )
    await wait_status(
        kube, CLUSTER, namespace, "dev-cluster", state_is("Running", "3/3"), what="cluster"
    )
    table = kube.kubectl("get", "rayref", "-n", namespace).stdout
    for name in ("nightly-etl", "train-model", "gpu-inference", "typo", "dev-cluster"):
        assert name in table
    assert "rayjobref.rayref.io/" in table and "rayclusterref.rayref.io/" in table
    print(table)
    print(kube.kubectl("get", "rayref", "-n", namespace, "-o", "wide").stdout)
