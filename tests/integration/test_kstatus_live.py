"""Flux, kpt and `kubectl wait` read live refs correctly.

The operator writes the statuses (simulator -> operator -> real apiserver); kstatus is
computed on the objects as `kubectl get -o json` returns them, by the real library
(tests/kstatus, sigs.k8s.io/cli-utils). The `kubectl wait` lines are the recipes of
docs/gitops.md.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rayref.simulator.scripts import ClusterScript, JobScript
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import SimulatorSession
from tests.kstatus.run import kstatus

T = TypeVar("T")
RUNNING_FOREVER = JobScript(submitted_seconds=0, pending_seconds=0, outcome=None)
READY_AT_ONCE = ClusterScript(
    starting_seconds=0, head_ready_seconds=0, workers_appear_seconds=0, workers_ready_seconds=0
)


def eventually(probe: Callable[[], T], *, timeout: float = 60.0, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {what}") from None
            time.sleep(0.3)


def _apply(kube: KubeTestBed, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _credentials_secret(kube: KubeTestBed, namespace: str, simulator: SimulatorSession) -> None:
    key = simulator.credentials
    _apply(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "emr-key", "namespace": namespace},
            "stringData": {
                "accessKeyId": key.access_key_id,
                "accessKeySecret": key.access_key_secret,
            },
        },
    )


def _ref(kube: KubeTestBed, namespace: str, kind: str, name: str, **spec: Any) -> None:
    _apply(
        kube,
        {
            "apiVersion": "rayref.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"credentialsSecretRef": {"name": "emr-key"}, "pollIntervalSeconds": 5, **spec},
        },
    )


def _live(kube: KubeTestBed, resource: str, name: str, namespace: str) -> dict[str, Any]:
    live: dict[str, Any] = json.loads(
        kube.kubectl("get", resource, name, "-n", namespace, "-o", "json").stdout
    )
    return live


def _kstatus_becomes(
    kube: KubeTestBed, resource: str, name: str, namespace: str, expected: str, field: str
) -> dict[str, Any]:
    """Wait until the operator's status reads `expected` for kstatus; return the object."""

    def probe() -> dict[str, Any]:
        live = _live(kube, resource, name, namespace)
        status, message = kstatus(live)[name]
        assert status == expected, f"{status} ({message}); status.{field}=" + str(
            live.get("status", {}).get(field)
        )
        return live

    return eventually(probe, what=f"kstatus {expected} for {resource}/{name}")


def _wait(kube: KubeTestBed, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return kube.kubectl("wait", "-n", namespace, "--timeout=60s", *args, check=False)


def _start_operator(
    kube: KubeTestBed, factory: OperatorFactory, simulator: SimulatorSession, namespace: str
) -> None:
    kube.apply_crds()
    _credentials_secret(kube, namespace, simulator)
    factory.start(kubeconfig=kube.kubeconfig, endpoint=simulator.base_url, namespaces=[namespace])


async def test_job_refs_read_in_progress_then_current_or_failed(
    kube: KubeTestBed,
    namespace: str,
    operator_factory: OperatorFactory,
    simulator: SimulatorSession,
) -> None:
    _start_operator(kube, operator_factory, simulator, namespace)
    workspace = simulator.workspace_id
    good = await simulator.control.create_job(workspace, script=RUNNING_FOREVER)
    bad = await simulator.control.create_job(workspace, script=RUNNING_FOREVER)
    _ref(kube, namespace, "RayJobRef", "good", workspaceId=workspace, submissionId=good.id)
    _ref(kube, namespace, "RayJobRef", "bad", workspaceId=workspace, submissionId=bad.id)

    for name in ("good", "bad"):
        running = _kstatus_becomes(kube, "rayjobref", name, namespace, "InProgress", "phase")
        assert running["status"]["phase"] == "Running"
        # Flux/kpt would still be waiting, so must `kubectl wait` be.
        assert (
            _wait(
                kube, namespace, "--for=condition=Complete", "--timeout=1s", f"rayjobref/{name}"
            ).returncode
            != 0
        )

    await simulator.control.update_job(workspace, good.id, action="succeed")
    await simulator.control.update_job(workspace, bad.id, action="fail", message="exit code 1")

    succeeded = _kstatus_becomes(kube, "rayjobref", "good", namespace, "Current", "phase")
    assert succeeded["status"]["phase"] == "Succeeded"
    failed = _kstatus_becomes(kube, "rayjobref", "bad", namespace, "Failed", "phase")
    assert failed["status"]["phase"] == "Failed"

    # The whole namespace at once, as Flux reads a Kustomization's inventory.
    listed = json.loads(kube.kubectl("get", "rayjobrefs", "-n", namespace, "-o", "json").stdout)
    assert {name: status for name, (status, _) in kstatus(listed).items()} == {
        "good": "Current",
        "bad": "Failed",
    }

    # docs/gitops.md recipes
    assert _wait(kube, namespace, "--for=condition=Complete", "rayjobref/good").returncode == 0
    assert _wait(kube, namespace, "--for=condition=Failed", "rayjobref/bad").returncode == 0
    assert (
        _wait(
            kube, namespace, "--for=jsonpath={.status.phase}=Succeeded", "rayjobref/good"
        ).returncode
        == 0
    )
    assert (
        _wait(
            kube, namespace, "--for=condition=Complete", "--timeout=1s", "rayjobref/bad"
        ).returncode
        != 0
    )


async def test_cluster_refs_read_current_when_ready_and_failed_on_error(
    kube: KubeTestBed,
    namespace: str,
    operator_factory: OperatorFactory,
    simulator: SimulatorSession,
) -> None:
    _start_operator(kube, operator_factory, simulator, namespace)
    workspace = simulator.workspace_id
    healthy = await simulator.control.create_cluster(workspace, script=READY_AT_ONCE)
    broken = await simulator.control.create_cluster(workspace, script=READY_AT_ONCE)
    _ref(kube, namespace, "RayClusterRef", "healthy", workspaceId=workspace, clusterId=healthy.id)
    _ref(kube, namespace, "RayClusterRef", "broken", workspaceId=workspace, clusterId=broken.id)

    for name in ("healthy", "broken"):
        current = _kstatus_becomes(kube, "rayclusterref", name, namespace, "Current", "state")
        status = current["status"]
        assert status["state"] == "Running"
        assert status["readyInstances"] == status["totalInstances"] > 0
    assert _wait(kube, namespace, "--for=condition=Ready", "rayclusterref/healthy").returncode == 0

    await simulator.control.update_cluster(
        workspace, broken.id, action="error", message="insufficient resources in queue"
    )
    errored = _kstatus_becomes(kube, "rayclusterref", "broken", namespace, "Failed", "state")
    assert errored["status"]["state"] == "Error"
    assert _wait(kube, namespace, "--for=condition=Stalled", "rayclusterref/broken").returncode == 0
    # the healthy one is untouched
    assert kstatus(_live(kube, "rayclusterref", "healthy", namespace))["healthy"][0] == "Current"
