"""The chart's alert rules (templates/prometheusrule.yaml) as Prometheus sees them.

The rules are rendered by the pinned helm, the one source, into plain rule files;
promtool checks them and runs tests/alerts/*.test.yaml against them (each alert fires
on its input series and stays quiet on others). The rules' metric names are held to
docs/metrics.md, which tests/unit/recipes/test_metric_recipe.py holds to the registry,
so a renamed metric fails here rather than silencing a page. docs/alerts.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.paths import REPO_ROOT
from tests.support.chart import CHART, alerts, helm_binary, prometheus_rule, render

PROMTOOL_TESTS = REPO_ROOT / "tests" / "alerts"
ALERTS_DOC = REPO_ROOT / "docs" / "alerts.md"
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"
ENABLED: dict[str, Any] = {"prometheusRule": {"enabled": True}}
SHARDED: dict[str, Any] = {
    "prometheusRule": {"enabled": True},
    "sharding": {"enabled": True},
    "leaderElection": {"enabled": False},
    "replicas": 3,
}
# The rule files the promtool tests name (their `rule_files`), and the values of each.
RULE_FILES = {"rules.yml": ENABLED, "rules-sharded.yml": SHARDED}
# Series Prometheus makes itself rather than the operator.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {
    "by",
    "on",
    "unless",
    "max",
    "sum",
    "rate",
    "absent",
    "changes",
    "label_replace",
    "avg_over_time",
}


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_binary()


@pytest.fixture(scope="module")
def rules_dir(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered rules as plain rule files, beside copies of the promtool tests."""
    folder = tmp_path_factory.mktemp("alert-rules")
    for name, values in RULE_FILES.items():
        spec = prometheus_rule(render(helm, values))["spec"]
        (folder / name).write_text(yaml.safe_dump({"groups": spec["groups"]}))
    for test in PROMTOOL_TESTS.glob("*.test.yaml"):
        shutil.copy(test, folder / test.name)
    return folder


def run_promtool(promtool: Path, folder: Path, *args: str) -> None:
    result = subprocess.run(
        [str(promtool), *args], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


# ------------------------------------------------------------------ promtool


@pytest.mark.promtool
def test_promtool_accepts_the_rendered_rules(promtool: Path, rules_dir: Path) -> None:
    run_promtool(promtool, rules_dir, "check", "rules", *RULE_FILES)


@pytest.mark.promtool
def test_each_alert_fires_when_it_should_and_only_then(promtool: Path, rules_dir: Path) -> None:
    tests = sorted(path.name for path in rules_dir.glob("*.test.yaml"))
    run_promtool(promtool, rules_dir, "test", "rules", *tests)


# ------------------------------------------------------------ what is tested


def _promtool_cases() -> dict[str, list[list[Any]]]:
    """Per alert name, the expected alerts of each evaluation the promtool tests make."""
    cases: dict[str, list[list[Any]]] = {}
    for path in PROMTOOL_TESTS.glob("*.test.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test.get("alert_rule_test", []):
                cases.setdefault(check["alertname"], []).append(check.get("exp_alerts") or [])
    return cases


def test_every_alert_has_a_firing_and_a_quiet_promtool_case(helm: Path) -> None:
    rendered = set(alerts(prometheus_rule(render(helm, ENABLED))))
    rendered |= set(alerts(prometheus_rule(render(helm, SHARDED))))
    cases = _promtool_cases()
    assert sorted(rendered) == sorted(cases), "tests/alerts/*.test.yaml must test every alert"
    for name, expected in cases.items():
        assert any(expected), f"{name}: no promtool case where it fires"
        assert not all(expected), f"{name}: no promtool case where it stays quiet"


def _metric_names(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', '""', expr)  # label values, regexes
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\b(?:by|on)\s*\([^)]*\)", "", text)  # grouping labels
    words = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", text))
    return words - PROMQL_WORDS


def _documented_metrics() -> set[str]:
    return set(re.findall(r"`((?:rayref|process)_\w+)`", METRICS_DOC.read_text()))


def test_every_metric_a_rule_reads_is_documented(helm: Path) -> None:
    documented = _documented_metrics()
    for values in RULE_FILES.values():
        for name, rule in alerts(prometheus_rule(render(helm, values))).items():
            used = _metric_names(rule["expr"])
            assert used, f"{name}: no metric found in {rule['expr']!r}"
            unknown = sorted(used - documented - PROMETHEUS_OWN)
            assert not unknown, f"{name} reads metrics docs/metrics.md does not name: {unknown}"


def test_every_runbook_url_is_a_section_of_docs_alerts(helm: Path) -> None:
    headings = re.findall(r"^## (\w+)$", ALERTS_DOC.read_text(), flags=re.MULTILINE)
    anchors = {heading.lower() for heading in headings}
    for values in RULE_FILES.values():
        for name, rule in alerts(prometheus_rule(render(helm, values))).items():
            url = rule["annotations"]["runbook_url"]
            assert url == f"docs/alerts.md#{name.lower()}"
            assert name.lower() in anchors, f"docs/alerts.md has no section `## {name}`"
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("values", [ENABLED, SHARDED], ids=["leader-election", "sharded"])
def test_helm_lint_strict_passes_with_the_rules(helm: Path, values: dict[str, Any]) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "--values", "-"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_prometheus_rule_unless_enabled(helm: Path) -> None:
    assert not [doc for doc in render(helm) if doc["kind"] == "PrometheusRule"]


def test_values_shape_the_rules(helm: Path) -> None:
    values: dict[str, Any] = {
        "prometheusRule": {
            "enabled": True,
            "namespace": "monitoring",
            "labels": {"release": "kube-prometheus"},
            "additionalAlertLabels": {"team": "data-platform"},
            "selector": 'job="rayref"',
            "runbookBaseUrl": "https://git.example.com/rayref/docs/alerts.md",
            "alerts": {
                "RayRefStale": {"seconds": 1200, "for": "10m"},
                "RayRefJobFailed": {"enabled": False, "severity": "page"},
                "RayRefWatchStuck": {"severity": "page"},
                "RayRefCloudThrottled": {"window": "30s"},
            },
        },
        "resources": {"limits": {"memory": "1Gi"}},
    }
    rule = prometheus_rule(render(helm, values))
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    found = alerts(rule)
    assert "RayRefJobFailed" not in found
    assert found["RayRefStale"]["for"] == "10m"
    assert re.search(r">\s*1200\s*$", found["RayRefStale"]["expr"])
    assert found["RayRefWatchStuck"]["labels"]["severity"] == "page"
    assert "[30s]" in found["RayRefCloudThrottled"]["expr"]
    assert "over the last 30s" in found["RayRefCloudThrottled"]["annotations"]["description"]
    # 0.9 of 1 GiB
    assert re.search(r">\s*966367641\s*$", found["RayRefMemoryNearLimit"]["expr"])
    for name, alert in found.items():
        assert alert["labels"]["team"] == "data-platform", name
        assert 'job="rayref"' in alert["expr"] and "job=~" not in alert["expr"], name
        url = alert["annotations"]["runbook_url"]
        assert url == f"https://git.example.com/rayref/docs/alerts.md#{name.lower()}"


def test_mode_and_limit_dependent_alerts_render_only_where_they_apply(helm: Path) -> None:
    default = alerts(prometheus_rule(render(helm, ENABLED)))
    assert "RayRefNoLeader" in default and "RayRefShardSlotUnowned" not in default
    sharded = alerts(prometheus_rule(render(helm, SHARDED)))
    assert "RayRefShardSlotUnowned" in sharded and "RayRefNoLeader" not in sharded
    # a slot is unowned a Lease duration (15 s) before anyone can take it over
    assert sharded["RayRefShardSlotUnowned"]["for"] == "75s"
    single = {**ENABLED, "replicas": 1, "leaderElection": {"enabled": False}}
    assert "RayRefNoLeader" not in alerts(prometheus_rule(render(helm, single)))
    unlimited = {**ENABLED, "resources": {"limits": {"cpu": "1", "memory": None}}}
    assert "RayRefMemoryNearLimit" not in alerts(prometheus_rule(render(helm, unlimited)))
