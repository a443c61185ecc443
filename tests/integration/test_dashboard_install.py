"""The Grafana dashboard's ConfigMap in a real API server: `helm install` puts it, with the
sidecar's label, into the namespace the sidecar watches, the server keeps the JSON whole,
and `helm uninstall` takes it away (the sidecar then deletes the dashboard)."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import yaml

from rayref.devcluster.build import ensure_binaries
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "rayref-operator"
DASHBOARD = CHART / "dashboards" / "rayref-operator.json"


def helm(kube: KubeTestBed, *args: str, values: dict[str, Any] | None = None) -> str:
    argv = [str(ensure_binaries(("helm",)) / "helm"), "--kubeconfig", str(kube.kubeconfig)]
    result = subprocess.run(
        [*argv, *args, *(["--values", "-"] if values is not None else [])],
        input=None if values is None else yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def sidecar_view(kube: KubeTestBed, namespace: str) -> list[dict[str, Any]]:
    """What Grafana's sidecar lists: ConfigMaps with its label, in its namespace."""
    listed = kube.kubectl(
        "get", "configmaps", "-n", namespace, "-l", "grafana_dashboard", "-o", "json"
    )
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items


def test_helm_install_puts_the_dashboard_where_the_sidecar_looks(kube: KubeTestBed) -> None:
    suffix = uuid.uuid4().hex[:6]
    release_namespace, grafana = f"rayref-{suffix}", f"grafana-{suffix}"
    name = f"rr-{suffix}"
    for namespace in (release_namespace, grafana):
        kube.kubectl("create", "namespace", namespace)
    values = {
        "replicas": 1,
        "grafanaDashboard": {
            "enabled": True,
            "namespace": grafana,
            "annotations": {"grafana_folder": "rayref"},
        },
    }
    try:
        helm(kube, "install", name, str(CHART), "--namespace", release_namespace, values=values)
        (config_map,) = sidecar_view(kube, grafana)
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "rayref"
        stored = config_map["data"]["rayref-operator.json"]
        assert stored + "\n" == DASHBOARD.read_text(encoding="utf-8")
        assert json.loads(stored)["uid"] == "rayref-operator"
        assert sidecar_view(kube, release_namespace) == []

        helm(kube, "uninstall", name, "--namespace", release_namespace)
        assert sidecar_view(kube, grafana) == []
    finally:
        helm_bin = str(ensure_binaries(("helm",)) / "helm")
        subprocess.run(
            [
                helm_bin,
                "--kubeconfig",
                str(kube.kubeconfig),
                "uninstall",
                name,
                "--namespace",
                release_namespace,
                "--ignore-not-found",
            ],
            capture_output=True,
            timeout=120,
        )
        kube.kubectl("delete", "namespace", release_namespace, grafana, "--wait=false")
