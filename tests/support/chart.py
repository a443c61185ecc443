"""The chart rendered by the pinned helm: the one source of the alert rules that
promtool tests (tests/integration/test_alert_rules.py) and a live Prometheus evaluates
(tests/integration/test_alerts_live.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayref.devcluster.build import DevClusterBuildError, ensure_binaries
from tests.fixtures.paths import REPO_ROOT

CHART = REPO_ROOT / "charts" / "rayref-operator"
RELEASE = "ops"
RELEASE_NAMESPACE = "rayref-system"


def helm_binary() -> Path:
    try:
        return ensure_binaries(("helm",)) / "helm"
    except DevClusterBuildError as error:
        pytest.fail(f"helm is unavailable: {error}", pytrace=False)


def render(helm: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    argv = [str(helm), "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE]
    result = subprocess.run(
        [*argv, "--values", "-"],
        input=yaml.safe_dump(values or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def prometheus_rule(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    return found


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
