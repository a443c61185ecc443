"""The Grafana dashboard: the committed JSON is what the code generates, every panel
queries metrics the operator registers (with the suffix and function their type takes),
and every selector is filtered by the namespace variable."""

from __future__ import annotations

import difflib
import json
import re
from types import SimpleNamespace
from typing import Any, cast

import pytest

from rayref.election.run import LeaderMetrics
from rayref.monitoring import dashboard
from rayref.monitoring.grafana import COLUMNS
from rayref.observability.metrics import Metrics
from rayref.sharding.run import ShardMetrics
from tests.fixtures.paths import REPO_ROOT

COMMITTED = REPO_ROOT / "charts" / "rayref-operator" / "dashboards" / "rayref-operator.json"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SELECTOR = re.compile(rf"({NAME})\{{([^}}]*)\}}")
RATED = re.compile(rf"\b(?:rate|increase)\(\s*({NAME})\{{")
GROUPING = re.compile(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)")
OPERATORS = {"and", "or", "unless", "bool", "offset"}
# What prometheus_client exposes for a family, by its type.
EXPOSED = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
NAMESPACE = 'namespace=~"$namespace"'


def exposed_names() -> dict[str, str]:
    """Every series name the operator's registry can expose -> the family's type: the
    metrics of every mode (leader election, sharding) on one registry, as in the
    recipe test of docs/metrics.md."""
    metrics = Metrics()
    LeaderMetrics(metrics.registry)
    member = SimpleNamespace(ownership=SimpleNamespace(held=()), live_members=lambda: [], slots=1)
    ShardMetrics(metrics.registry, cast(Any, member))
    return {
        family.name + suffix: family.type
        for family in metrics.registry.collect()
        for suffix in EXPOSED.get(family.type, ())
    }


def selectors(expr: str) -> list[tuple[str, str]]:
    return SELECTOR.findall(expr)


def bare_names(expr: str) -> list[str]:
    """Metric names selected without a `{...}` matcher (so without the namespace's)."""
    rest = SELECTOR.sub(" ", expr)
    rest = re.sub(r'"[^"]*"', " ", rest)
    rest = GROUPING.sub(" ", rest)
    rest = re.sub(r"\[[^\]]*\]", " ", rest)
    return [
        m.group(1)
        for m in re.finditer(rf"({NAME})(\s*\()?", rest)
        if not m.group(2) and m.group(1) not in OPERATORS
    ]


def problems_of(expr: str, exposed: dict[str, str]) -> list[str]:
    found = [f"{name} selected without the namespace matcher" for name in bare_names(expr)]
    for name, matchers in selectors(expr):
        if name not in exposed:
            found.append(f"{name} is not a series the operator exposes")
        if NAMESPACE not in matchers:
            found.append(f"{name}{{{matchers}}} is not filtered by {NAMESPACE}")
    for name in RATED.findall(expr):
        if exposed.get(name) not in ("counter", "histogram"):
            found.append(f"rate/increase of {name}, which is not a counter or histogram")
    return found


def test_committed_dashboard_matches_the_code() -> None:
    expected = dashboard.render()
    have = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if have != expected:
        diff = difflib.unified_diff(
            have.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=f"{COMMITTED.relative_to(REPO_ROOT)} (committed)",
            tofile=f"{COMMITTED.relative_to(REPO_ROOT)} (generated)",
        )
        pytest.fail(
            f"{COMMITTED.relative_to(REPO_ROOT)} drifted from rayref/monitoring/dashboard.py; "
            "run `make dashboard` and commit the result:\n" + "".join(diff)
        )


def test_every_panel_queries_exposed_metrics_filtered_by_namespace() -> None:
    exposed = exposed_names()
    found = [
        f"{query.panel}: {problem}"
        for query in dashboard.expressions()
        for problem in problems_of(query.expr, exposed)
    ]
    assert not found, "\n".join(found)


def test_the_check_sees_a_missing_filter_an_unknown_metric_and_a_rated_gauge() -> None:
    exposed = {"rayref_refs": "gauge", "rayref_polls_total": "counter"}
    assert problems_of(f"sum by (kind) (rayref_refs{{{NAMESPACE}}})", exposed) == []
    assert problems_of("sum(rayref_refs)", exposed) == [
        "rayref_refs selected without the namespace matcher"
    ]
    assert problems_of('rayref_polls_total{result="ok"}', exposed) == [
        f'rayref_polls_total{{result="ok"}} is not filtered by {NAMESPACE}'
    ]
    assert problems_of(f"rate(rayref_polls{{{NAMESPACE}}}[1m])", exposed) == [
        "rayref_polls is not a series the operator exposes",
        "rate/increase of rayref_polls, which is not a counter or histogram",
    ]
    assert problems_of(f"rate(rayref_refs{{{NAMESPACE}}}[5m])", exposed) == [
        "rate/increase of rayref_refs, which is not a counter or histogram"
    ]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    queried = {name for q in dashboard.expressions() for name, _ in selectors(q.expr)}
    wanted = {
        "rayref_refs_by_phase",  # refs by phase/state
        "rayref_job_failed",  # failed job refs by their namespace
        "rayref_refs_not_synced",  # sync failures by reason
        "rayref_refs",  # by install namespace
        "rayref_cloud_requests_total",  # requests by operation, failures by outcome
        "rayref_request_budget_rate",  # against the budget
        "rayref_cloud_throttled_total",
        "rayref_sync_oldest_unsynced_seconds",  # freshness lag
        "rayref_polls_total",  # sweeps' verdicts, deferred node refreshes
        "rayref_node_lists_oldest_seconds",  # node-list age
        "rayref_status_writes_total",  # API server writes
        "rayref_leader",
        "rayref_shard_slots_held",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    assert wanted <= queried, sorted(wanted - queried)


def test_registry_gauges_leave_out_warm_standbys_and_process_series_other_targets() -> None:
    # A warm standby holds its leader's refs: summed with it, every ref counts twice.
    registry_gauges = {
        "rayref_refs",
        "rayref_refs_by_phase",
        "rayref_refs_scheduled",
        "rayref_refs_checked",
        "rayref_refs_unsynced",
        "rayref_sync_oldest_unsynced_seconds",
        "rayref_request_budget_rate",
        "rayref_request_budget_tokens",
        "rayref_polls_in_flight",
        "rayref_refs_not_synced",
        "rayref_refs_not_synced_oldest_seconds",
        "rayref_job_failed",
        "rayref_node_lists_oldest_seconds",
    }
    for query in dashboard.expressions():
        names = {name for name, _ in selectors(query.expr)}
        if any(name.startswith("process_") for name in names):
            assert f"and on (job, instance) {dashboard.PRESENT}{{" in query.expr, query
            names.discard(dashboard.PRESENT)  # only the marker, not a count
        if names & registry_gauges:
            assert "unless on (job, instance) (rayref_leader{" in query.expr, query


def test_the_series_that_marks_a_rayref_process_exists_from_its_start() -> None:
    # The namespace variable and the process panels rely on it before any ref is seen.
    assert Metrics().registry.get_sample_value(dashboard.PRESENT) == 0


def test_variables_are_a_prometheus_datasource_and_a_multi_namespace() -> None:
    model = json.loads(dashboard.render())
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    namespace = variables["namespace"]
    assert namespace["type"] == "query"
    assert namespace["multi"] and namespace["includeAll"] and namespace["allValue"] == ".*"
    assert namespace["definition"] == f"label_values({dashboard.PRESENT}, namespace)"
    assert namespace["datasource"]["uid"] == "${datasource}"


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    model = json.loads(dashboard.render())
    for panel in model["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    model = json.loads(dashboard.render())
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= COLUMNS, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_promql_fills_in_every_grafana_variable() -> None:
    queries = dashboard.promql(namespace="rayref-system", rate_interval="2m")
    assert len(queries) == len(dashboard.expressions())
    for query in queries:
        assert "$" not in query.expr, query
    assert any('namespace=~"rayref-system"' in q.expr and "[2m]" in q.expr for q in queries)


def test_the_command_writes_the_file(tmp_path: Any) -> None:
    target = tmp_path / "out" / "rayref-operator.json"
    assert dashboard.main(["--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == dashboard.render()
