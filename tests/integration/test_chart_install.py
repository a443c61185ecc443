"""The chart in a real apiserver: `helm install`, then the operator runs as its ServiceAccount.

The test bed has no nodes, so the Deployment's pod never starts; instead the
operator runs here as a subprocess with a token of the chart's ServiceAccount and
the settings the chart put in the Deployment. It must do its whole job with that
RBAC, and a `kubectl auth can-i` matrix shows the account can do nothing more.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml

from rayref.devcluster.build import ensure_binaries
from rayref.simulator.scripts import ClusterScript, JobScript
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.simulator import SimulatorSession

CHART = REPO_ROOT / "charts" / "rayref-operator"
T = TypeVar("T")


def eventually(probe: Callable[[], T], *, timeout: float = 60.0, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except (AssertionError, subprocess.CalledProcessError):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {what}") from None
            time.sleep(0.3)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # where the operator (and its ServiceAccount) lives
    service_account: str
    watched: tuple[str, ...]  # empty: cluster mode
    unwatched: str  # a namespace the operator must not reach
    deployment: dict[str, Any]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def settings(self) -> dict[str, str]:
        """The RAYREF_* settings the chart gave the operator container."""
        (container,) = self.deployment["spec"]["template"]["spec"]["containers"]
        # The apiserver drops an empty `value`, so a missing one means "".
        return {
            e["name"]: e.get("value", "")
            for e in container["env"]
            if e["name"].startswith("RAYREF_")
        }


def helm(kube: KubeTestBed, *args: str, values: dict[str, Any] | None = None) -> str:
    helm_bin = ensure_binaries(("helm",)) / "helm"
    argv = [str(helm_bin), "--kubeconfig", str(kube.kubeconfig), *args]
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


def install(kube: KubeTestBed, *, watch: bool) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    namespace, team, other = f"rayref-{suffix}", f"team-{suffix}", f"other-{suffix}"
    kube.create_namespaces(namespace, team, other)
    name = f"rr-{suffix}"
    values: dict[str, Any] = {"watchNamespaces": [team] if watch else []}
    try:
        helm(kube, "install", name, str(CHART), "--namespace", namespace, values=values)
        deployment = json.loads(
            kube.kubectl(
                "get", "deployment", f"{name}-rayref-operator", "-n", namespace, "-o", "json"
            ).stdout
        )
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        yield Release(name, namespace, account, (team,) if watch else (), other, deployment)
    finally:
        subprocess.run(
            [
                str(ensure_binaries(("helm",)) / "helm"),
                "--kubeconfig",
                str(kube.kubeconfig),
                "uninstall",
                name,
                "--namespace",
                namespace,
            ],
            capture_output=True,
            timeout=120,
        )
        kube.delete_namespaces(namespace, team, other)


@pytest.fixture(scope="module")
def namespaced_release(kube: KubeTestBed) -> Iterator[Release]:
    yield from install(kube, watch=True)


@pytest.fixture(scope="module")
def clusterwide_release(kube: KubeTestBed) -> Iterator[Release]:
    yield from install(kube, watch=False)


def can_i(kube: KubeTestBed, release: Release, verb: str, resource: str, *where: str) -> bool:
    result = kube.kubectl(
        "auth", "can-i", verb, resource, *where, "--as", release.user, check=False
    )
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


# ---------------------------------------------------------------------- install


@pytest.mark.slow
def test_install_creates_crds_from_the_chart_and_a_two_replica_deployment(
    kube: KubeTestBed, namespaced_release: Release
) -> None:
    for crd in ("rayjobrefs.rayref.io", "rayclusterrefs.rayref.io"):
        kube.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    status = json.loads(
        helm(
            kube,
            "status",
            namespaced_release.name,
            "-n",
            namespaced_release.namespace,
            "-o",
            "json",
        )
    )
    assert status["info"]["status"] == "deployed"
    spec = namespaced_release.deployment["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    budget = json.loads(
        kube.kubectl(
            "get",
            "pdb",
            f"{namespaced_release.name}-rayref-operator",
            "-n",
            namespaced_release.namespace,
            "-o",
            "json",
        ).stdout
    )
    assert budget["spec"]["minAvailable"] == 1
    roles = json.loads(kube.kubectl("get", "roles", "-A", "-o", "json").stdout)["items"]
    release_roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"].endswith("-leader-election"))
        for r in roles
        if r["metadata"].get("labels", {}).get("app.kubernetes.io/instance")
        == namespaced_release.name
    }
    # One Role per watched namespace, plus the Lease's in the release namespace.
    assert release_roles == {(ns, False) for ns in namespaced_release.watched} | {
        (namespaced_release.namespace, True)
    }


# ---------------------------------------------------------------------- can-i matrix

# (verb, resource, where, allowed); "TEAM", "OTHER" and "OWN" stand for the watched
# namespace, an unwatched one and the operator's own namespace.
NAMESPACED_MATRIX = [
    ("list", "rayjobrefs.rayref.io", "TEAM", True),
    ("watch", "rayclusterrefs.rayref.io", "TEAM", True),
    ("patch", "rayjobrefs.rayref.io/status", "TEAM", True),
    ("patch", "rayclusterrefs.rayref.io/status", "TEAM", True),
    ("patch", "rayjobrefs.rayref.io", "TEAM", False),
    ("update", "rayclusterrefs.rayref.io", "TEAM", False),
    # Sets create the refs they own and delete finished ones by TTL.
    ("delete", "rayjobrefs.rayref.io", "TEAM", True),
    ("create", "rayjobrefs.rayref.io", "TEAM", True),
    ("create", "rayjobrefs.rayref.io", "OTHER", False),
    ("watch", "rayjobrefsets.rayref.io", "TEAM", True),
    ("patch", "rayclusterrefsets.rayref.io/status", "TEAM", True),
    ("update", "rayjobrefsets.rayref.io", "TEAM", False),
    ("list", "rayjobrefs.rayref.io", "OTHER", False),
    ("list", "rayjobrefs.rayref.io", "ALL", False),
    ("get", "secrets", "TEAM", True),
    ("create", "secrets", "TEAM", True),
    ("update", "secrets", "TEAM", True),
    ("list", "secrets", "TEAM", False),
    ("watch", "secrets", "TEAM", False),
    ("delete", "secrets", "TEAM", False),
    ("get", "secrets", "OTHER", False),
    ("get", "secrets", "OWN", False),
    ("get", "secrets", "ALL", False),
    ("create", "events", "TEAM", True),
    ("patch", "events", "TEAM", True),
    ("create", "events", "OTHER", False),
    ("get", "pods", "TEAM", False),
    ("create", "pods", "TEAM", False),
    ("delete", "pods", "OWN", False),
    ("list", "deployments.apps", "OWN", False),
    ("list", "configmaps", "TEAM", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", "TEAM", False),
    ("impersonate", "serviceaccounts", "TEAM", False),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "CLUSTER", True),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", "CLUSTER", False),
    ("list", "namespaces", "CLUSTER", True),
    ("delete", "namespaces", "CLUSTER", False),
]

CLUSTERWIDE_MATRIX = [
    ("list", "rayjobrefs.rayref.io", "ALL", True),
    ("patch", "rayclusterrefs.rayref.io/status", "OTHER", True),
    ("patch", "rayjobrefs.rayref.io", "OTHER", False),
    ("delete", "rayclusterrefs.rayref.io", "OTHER", True),
    ("update", "rayclusterrefs.rayref.io", "OTHER", False),
    ("list", "rayclusterrefsets.rayref.io", "ALL", True),
    ("get", "secrets", "OTHER", True),
    ("list", "secrets", "ALL", False),
    ("delete", "secrets", "OTHER", False),
    ("get", "pods", "OTHER", False),
    ("list", "nodes", "CLUSTER", False),
    ("list", "namespaces", "CLUSTER", False),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "CLUSTER", True),
]


def _where(release: Release, where: str) -> list[str]:
    return {
        "TEAM": ["-n", release.watched[0] if release.watched else release.unwatched],
        "OTHER": ["-n", release.unwatched],
        "OWN": ["-n", release.namespace],
        "ALL": ["--all-namespaces"],
        "CLUSTER": [],
    }[where]


def _resource_args(resource: str) -> list[str]:
    name, _, subresource = resource.partition("/")
    return [name, f"--subresource={subresource}"] if subresource else [name]


def _check_matrix(
    kube: KubeTestBed, release: Release, matrix: list[tuple[str, str, str, bool]]
) -> None:
    wrong = []
    for verb, resource, where, allowed in matrix:
        resource_name, *subresource = _resource_args(resource)
        answer = can_i(kube, release, verb, resource_name, *subresource, *_where(release, where))
        if answer != allowed:
            wrong.append(f"{verb} {resource} in {where}: {'yes' if answer else 'no'}")
    assert not wrong, "can-i disagrees:\n" + "\n".join(wrong)


def test_can_i_matrix_when_namespaces_are_listed(
    kube: KubeTestBed, namespaced_release: Release
) -> None:
    _check_matrix(kube, namespaced_release, NAMESPACED_MATRIX)


def test_can_i_matrix_cluster_wide(kube: KubeTestBed, clusterwide_release: Release) -> None:
    _check_matrix(kube, clusterwide_release, CLUSTERWIDE_MATRIX)


def test_can_i_the_one_lease_and_no_other(kube: KubeTestBed, namespaced_release: Release) -> None:
    release = namespaced_release
    lease = f"leases.coordination.k8s.io/{release.name}-rayref-operator"
    other = "leases.coordination.k8s.io/kube-controller-manager"
    own, team = ["-n", release.namespace], ["-n", release.watched[0]]
    expected = [
        ("get", lease, own, True),
        ("update", lease, own, True),
        ("watch", lease, own, True),
        ("create", "leases.coordination.k8s.io", own, True),
        ("delete", lease, own, False),
        ("patch", lease, own, False),
        ("list", "leases.coordination.k8s.io", own, False),
        ("get", other, own, False),
        ("update", other, own, False),
        ("get", lease, team, False),
        ("create", "leases.coordination.k8s.io", team, False),
        ("update", other, ["-n", "kube-system"], False),
    ]
    wrong = [
        f"{verb} {resource} {where}"
        for verb, resource, where, allowed in expected
        if can_i(kube, release, verb, resource, *where) != allowed
    ]
    assert not wrong, "can-i disagrees: " + "; ".join(wrong)


# ---------------------------------------------------------------------- the operator


def _apply(kube: KubeTestBed, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def _get(kube: KubeTestBed, kind: str, name: str, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        kube.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    )
    return result


def _condition(obj: dict[str, Any], kind: str) -> str | None:
    for condition in obj.get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return str(condition["status"])
    return None


async def test_operator_does_its_job_as_the_chart_service_account(
    kube: KubeTestBed,
    namespaced_release: Release,
    operator_factory: OperatorFactory,
    simulator: SimulatorSession,
) -> None:
    release = namespaced_release
    (team,) = release.watched
    workspace = simulator.workspace_id
    job = await simulator.control.create_job(
        workspace,
        script=JobScript(submitted_seconds=0, pending_seconds=0, outcome=None),
    )
    cluster = await simulator.control.create_cluster(
        workspace,
        script=ClusterScript(
            starting_seconds=0,
            head_ready_seconds=0,
            workers_appear_seconds=0,
            workers_ready_seconds=0,
        ),
    )
    key = simulator.credentials
    for namespace in (team, release.unwatched):
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
        common = {
            "workspaceId": workspace,
            "credentialsSecretRef": {"name": "emr-key"},
            "pollIntervalSeconds": 5,
        }
        _apply(
            kube,
            {
                "apiVersion": "rayref.io/v1alpha1",
                "kind": "RayJobRef",
                "metadata": {"name": "train", "namespace": namespace},
                "spec": {**common, "submissionId": job.id},
            },
        )
        _apply(
            kube,
            {
                "apiVersion": "rayref.io/v1alpha1",
                "kind": "RayClusterRef",
                "metadata": {"name": "shared", "namespace": namespace},
                "spec": {
                    **common,
                    "clusterId": cluster.id,
                    "connectionSecretRef": {"name": "shared-ray"},
                },
            },
        )

    token_kubeconfig = kube.service_account_kubeconfig(release.namespace, release.service_account)
    settings = release.settings()
    # The factory chooses free ports and the simulator's endpoint; the rest is the chart's.
    for owned_by_factory in ("RAYREF_HEALTH_PORT", "RAYREF_METRICS_PORT", "RAYREF_ENDPOINT"):
        settings.pop(owned_by_factory, None)
    assert settings["RAYREF_LEADER_ELECTION"] == "true"
    operator = operator_factory.start(
        kubeconfig=token_kubeconfig,
        endpoint=simulator.base_url,
        namespaces=settings.pop("RAYREF_WATCH_NAMESPACES").split(","),
        settings=settings,
        # What the downward API gives the pod: the Lease is in the release namespace.
        env={"POD_NAMESPACE": release.namespace, "POD_NAME": f"{release.name}-pod"},
    )

    def job_phase(expected: str) -> dict[str, Any]:
        obj = _get(kube, "rayjobref", "train", team)
        assert obj.get("status", {}).get("phase") == expected, obj.get("status")
        return obj

    eventually(lambda: job_phase("Running"), what="RayJobRef status Running")
    await simulator.control.update_job(workspace, job.id, action="succeed")
    done = eventually(lambda: job_phase("Succeeded"), what="RayJobRef status Succeeded")
    assert _condition(done, "Complete") == "True"

    def connection_secret() -> dict[str, Any]:
        secret = _get(kube, "secret", "shared-ray", team)
        assert "submitToken" in secret["data"], secret["data"].keys()
        return secret

    eventually(connection_secret, what="the connection Secret")
    cluster_ref = _get(kube, "rayclusterref", "shared", team)
    assert cluster_ref["status"]["state"] == "Running"

    events = json.loads(kube.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert any(e["involvedObject"]["name"] == "train" for e in events)

    # The unwatched namespace is out of the operator's reach: nothing there changes.
    assert "status" not in _get(kube, "rayjobref", "train", release.unwatched)
    assert "status" not in _get(kube, "rayclusterref", "shared", release.unwatched)
    secrets = kube.kubectl("get", "secrets", "-n", release.unwatched, "-o", "name").stdout
    assert "secret/shared-ray" not in secrets

    assert operator.running
    # It led, with the chart's Lease RBAC alone.
    lease = json.loads(
        kube.kubectl(
            "get",
            "lease",
            f"{release.name}-rayref-operator",
            "-n",
            release.namespace,
            "-o",
            "json",
        ).stdout
    )
    assert lease["spec"]["holderIdentity"].startswith(f"{release.name}-pod-")
    log = operator.logs()
    for symptom in ("Forbidden", "forbidden", "Not enough permissions"):
        assert symptom not in log, f"{symptom!r} in the operator log:\n{operator.log_tail(40)}"
