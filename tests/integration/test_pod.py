"""The operator as a user first meets it: `helm install`, and the pod comes up on a node.

The chart is installed with its defaults plus what this test bed needs: the image
built by `make image` (imported into the node's containerd, pullPolicy Never), the
simulator as the cloud endpoint, and hostNetwork with the API server's address,
because the test control plane has no kube-proxy (docs/testing.md). The pod then
runs with in-cluster configuration from its mounted ServiceAccount token, the
chart's security context, probes and limits, and the image's own entry point.

One replica: with hostNetwork the pod's ports are the node's, so a second replica
would stay Pending on a one-node cluster (the scheduler's port check).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rayref.api.kinds import JOB_KIND
from rayref.devcluster.build import ensure_binaries
from rayref.devcluster.image import BuiltImage
from rayref.devcluster.node import Containerd, Node
from rayref.devcluster.ports import free_port
from rayref.simulator.scripts import JobScript
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.simulator import RunningSimulator, SimulatorSession
from tests.support.refs import (
    apply,
    credentials_secret,
    events_of,
    eventually,
    get_ref,
    job_ref,
    occurrences,
    requests_in,
)

pytestmark = pytest.mark.node

CHART = REPO_ROOT / "charts" / "rayref-operator"
AVAILABLE_WITHIN = 180.0


@dataclass
class Release:
    name: str
    namespace: str
    health_port: int
    metrics_port: int
    install_to_available: float

    @property
    def deployment(self) -> str:
        return f"{self.name}-rayref-operator"

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name}"


def helm(kube: KubeTestBed, *args: str, values: dict[str, Any] | None = None) -> str:
    argv = [str(ensure_binaries(("helm",)) / "helm"), "--kubeconfig", str(kube.kubeconfig), *args]
    if values is not None:
        argv += ["--values", "-"]
    result = subprocess.run(
        argv,
        input=None if values is None else yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def kubectl_json(kube: KubeTestBed, *args: str) -> Any:
    return json.loads(kube.kubectl(*args, "-o", "json").stdout)


def wait_until(probe: Any, *, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            return probe()
        except AssertionError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within:.0f} s: {what}: {error}") from None
        time.sleep(0.5)


def running_pods(kube: KubeTestBed, release: Release) -> list[dict[str, Any]]:
    pods = kubectl_json(kube, "get", "pods", "-n", release.namespace, "-l", release.selector)
    return [p for p in pods["items"] if "deletionTimestamp" not in p["metadata"]]


def the_ready_pod(kube: KubeTestBed, release: Release) -> dict[str, Any]:
    pods = running_pods(kube, release)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    (status,) = pods[0]["status"].get("containerStatuses") or [{}]
    assert status.get("ready") is True, status
    return pods[0]


@pytest.fixture(scope="module")
def release(
    kube: KubeTestBed,
    kube_node: Node,
    operator_image: BuiltImage,
    simulator_process: RunningSimulator,
) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    namespace, name = f"rayref-pod-{suffix}", f"rr-{suffix}"
    kube.kubectl("create", "namespace", namespace)
    repository, tag = operator_image.ref.rsplit(":", 1)
    health_port, metrics_port = free_port(), free_port()
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "endpoint": simulator_process.base_url,
        "hostNetwork": True,
        "apiServer": {"host": "127.0.0.1", "port": kube.cluster.apiserver_port},
        "replicas": 1,
        # The node's ports: free ones, as other processes of this machine hold 8080/9090.
        "health": {"port": health_port},
        "metrics": {"port": metrics_port},
    }
    started = time.monotonic()
    helm(kube, "install", name, str(CHART), "--namespace", namespace, values=values)
    waited = kube.cluster.kubectl(
        "wait",
        "--for=condition=Available",
        f"deployment/{name}-rayref-operator",
        "-n",
        namespace,
        f"--timeout={AVAILABLE_WITHIN:.0f}s",
        timeout=AVAILABLE_WITHIN + 30,
        check=False,
    )
    if waited.returncode != 0:
        pods = kube.kubectl("describe", "pods", "-n", namespace, check=False).stdout
        pytest.fail(f"the Deployment is not Available: {waited.stderr}\n{pods[-4000:]}")
    available = time.monotonic() - started
    print(f"\nhelm install -> Deployment Available: {available:.1f} s")
    try:
        yield Release(name, namespace, health_port, metrics_port, available)
    finally:
        helm_bin = str(ensure_binaries(("helm",)) / "helm")
        subprocess.run(
            [helm_bin, "--kubeconfig", str(kube.kubeconfig), "uninstall", name, "-n", namespace],
            capture_output=True,
            timeout=180,
        )
        kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_helm_install_brings_the_deployment_to_available(
    kube: KubeTestBed, release: Release, kube_node: Node
) -> None:
    pod = the_ready_pod(kube, release)
    assert pod["spec"]["nodeName"] == kube_node.name
    (container,) = pod["status"]["containerStatuses"]
    assert container["restartCount"] == 0
    assert container["image"].endswith("rayref.local/rayref-operator:0.1.0")
    # The image's own entry point: the chart gives no command.
    (spec,) = pod["spec"]["containers"]
    assert "command" not in spec


def test_the_log_shows_the_operator_starting_in_the_pod(
    kube: KubeTestBed, release: Release, simulator_process: RunningSimulator
) -> None:
    def started() -> str:
        log = kube.kubectl("logs", f"deployment/{release.deployment}", "-n", release.namespace)
        assert "rayref operator started" in log.stdout, log.stdout[-2000:]
        return log.stdout

    log = wait_until(started, within=60, what="the start line in kubectl logs")
    assert f"rayref operator started (endpoint {simulator_process.base_url}" in log
    assert "acquired the Lease" in log


def _kubelet_probe_results(kube: KubeTestBed, node: Node, pod: str) -> dict[tuple[str, str], float]:
    raw = kube.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/metrics/probes").stdout
    results: dict[tuple[str, str], float] = {}
    pattern = re.compile(r"^prober_probe_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    for line in raw.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
        if labels.get("pod") == pod:
            key = (labels["probe_type"], labels["result"])
            results[key] = results.get(key, 0) + float(match.group("value"))
    return results


def test_the_kubelet_reports_the_liveness_and_readiness_probes_passing(
    kube: KubeTestBed, release: Release, kube_node: Node
) -> None:
    pod = the_ready_pod(kube, release)["metadata"]["name"]

    def all_probed() -> dict[tuple[str, str], float]:
        results = _kubelet_probe_results(kube, kube_node, pod)
        for probe in ("Startup", "Liveness", "Readiness"):
            assert results.get((probe, "successful"), 0) >= 1, results
        return results

    # The liveness probe runs every 20 s once the startup probe has passed.
    results = wait_until(all_probed, within=90, what="passing startup, liveness and readiness")
    # Startup probes sent before the process listens fail by design; they are what keeps
    # the other two from failing a healthy, starting pod.
    failed = {k: v for k, v in results.items() if k[0] != "Startup" and k[1] != "successful" and v}
    assert not failed, results


def test_metrics_and_health_answer_at_the_pod_ip(kube: KubeTestBed, release: Release) -> None:
    pod = the_ready_pod(kube, release)
    ip = pod["status"]["podIP"]
    metrics = httpx.get(f"http://{ip}:{release.metrics_port}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "rayref_leader 1.0" in metrics.text
    health = httpx.get(f"http://{ip}:{release.health_port}/healthz", timeout=10)
    assert health.status_code == 200


def _container_pid(containerd: Containerd, pod: dict[str, Any]) -> int:
    (status,) = pod["status"]["containerStatuses"]
    container_id = status["containerID"].removeprefix("containerd://")
    for line in containerd.ctr("tasks", "list").stdout.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid)
    raise AssertionError(f"no task for container {container_id}")


def test_the_container_runs_as_65532_on_a_read_only_root(
    kube: KubeTestBed, release: Release, containerd: Containerd
) -> None:
    # The kernel's view of the operator's own process, no exec needed.
    pid = _container_pid(containerd, the_ready_pod(kube, release))
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(.*)$", status, re.MULTILINE)
    assert uids is not None and set(uids.group(1).split()) == {"65532"}
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE)
    assert re.search(r"^CapEff:\s+0+$", status, re.MULTILINE)
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    (root,) = [line.split() for line in mounts if line.split()[4] == "/"]
    assert "ro" in root[5].split(","), root
    (tmp,) = [line.split() for line in mounts if line.split()[4] == "/tmp"]
    assert "rw" in tmp[5].split(","), tmp


async def _mirrored_job(
    kube: KubeTestBed, simulator: SimulatorSession, namespace: str, name: str
) -> tuple[str, float]:
    job = await simulator.control.create_job(
        simulator.workspace_id,
        script=JobScript(submitted_seconds=0, pending_seconds=0, outcome=None),
    )
    apply(kube, credentials_secret(namespace, simulator.credentials))
    started = time.monotonic()
    apply(kube, job_ref(namespace, name, simulator.workspace_id, job.id))

    def running() -> None:
        obj = get_ref(kube, JOB_KIND, namespace, name)
        assert obj.get("status", {}).get("phase") == "Running", obj.get("status")

    await eventually(running, what=f"{name} mirrored as Running", within=120)
    return job.id, time.monotonic() - started


async def test_refs_are_mirrored_by_the_pod_and_a_new_pod_resumes_without_rewriting(
    kube: KubeTestBed,
    release: Release,
    simulator: SimulatorSession,
    namespace: str,
) -> None:
    job_id, seconds = await _mirrored_job(kube, simulator, namespace, "train")
    print(f"\nref created -> mirrored status from the pod: {seconds:.1f} s")
    old = the_ready_pod(kube, release)["metadata"]["name"]
    before = get_ref(kube, JOB_KIND, namespace, "train")
    events_before = occurrences(events_of(kube, namespace, "train"))

    kube.kubectl("delete", "pod", old, "-n", release.namespace, "--wait=false")

    def replaced() -> str:
        pod = the_ready_pod(kube, release)
        assert pod["metadata"]["name"] != old
        lease = kubectl_json(kube, "get", "lease", release.deployment, "-n", release.namespace)
        holder = lease["spec"].get("holderIdentity") or ""
        assert holder.startswith(pod["metadata"]["name"]), holder
        return str(pod["metadata"]["name"])

    new = wait_until(replaced, within=AVAILABLE_WITHIN, what="a new pod leading")
    # The new leader polls the job again; the cloud has not changed, so nothing is written.
    polled = await requests_in(simulator.control, simulator.workspace_id)

    async def polled_again() -> None:
        now = await requests_in(simulator.control, simulator.workspace_id)
        assert now >= polled + 2, f"{now - polled} cloud requests since the new pod led"

    await eventually(polled_again, what="the new pod polling the job", within=120)
    after = get_ref(kube, JOB_KIND, namespace, "train")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert occurrences(events_of(kube, namespace, "train")) == events_before

    # ...and it does write when the cloud does change.
    await simulator.control.update_job(simulator.workspace_id, job_id, action="succeed")

    def succeeded() -> None:
        obj = get_ref(kube, JOB_KIND, namespace, "train")
        assert obj.get("status", {}).get("phase") == "Succeeded", obj.get("status")

    await eventually(succeeded, what=f"{new} mirrors the job's success", within=120)


def test_helm_uninstall_leaves_nothing_of_the_chart_but_the_crds(
    kube: KubeTestBed, release: Release
) -> None:
    helm(kube, "uninstall", release.name, "--namespace", release.namespace, "--wait")

    def pods_gone() -> None:
        pods = kubectl_json(kube, "get", "pods", "-n", release.namespace)["items"]
        assert pods == [], [p["metadata"]["name"] for p in pods]

    wait_until(pods_gone, within=120, what="the operator's pods gone")
    kinds = "deployments,replicasets,services,serviceaccounts,roles,rolebindings,pdb,configmaps"
    left = kubectl_json(kube, "get", kinds, "-n", release.namespace, "-l", release.selector)
    assert left["items"] == []
    cluster_wide = kubectl_json(
        kube, "get", "clusterroles,clusterrolebindings", "-l", release.selector
    )
    assert cluster_wide["items"] == []
    accounts = kubectl_json(kube, "get", "serviceaccounts", "-n", release.namespace)["items"]
    assert [a["metadata"]["name"] for a in accounts] == ["default"]
    for crd in ("rayjobrefs.rayref.io", "rayclusterrefs.rayref.io"):
        kube.kubectl("get", "crd", crd)
    # Not checked: the Lease. The operator creates it at run time, so Helm does not know
    # it and it stays (docs/testing.md, the node tier).
