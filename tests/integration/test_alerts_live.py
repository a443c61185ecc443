"""The chart's alerts and the dashboard's queries on a real Prometheus scraping a running
operator (issue 26; docs/alerts.md, "Proven on a real Prometheus").

A real kube-apiserver, the simulator, one operator of this test's namespace and a
`prometheus` server scraping it every second, with the job and labels the chart's
ServiceMonitor gives and the rules rendered by helm from the chart with short `for`
durations and thresholds set through values. Three faults at once: a job fails, a ref's
credentials Secret is deleted, the simulator throttles the cluster reads. The matching
alerts go firing; then every dashboard query returns data (save the ones named in
NO_DATA); then the faults are cleared and the alerts resolve. The times are reported.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.monitoring.dashboard import dashboard, promql
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.prometheus import PrometheusFactory, PrometheusServer, scrape_config
from tests.fixtures.simulator import SimulatorSession
from tests.support.chart import RELEASE_NAMESPACE, helm_binary, prometheus_rule, render
from tests.support.refs import (
    apply,
    cluster_ref,
    credentials_secret,
    eventually,
    job_ref,
    put_secret,
    synced,
    wait_status,
)
from tests.support.reliability import report

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]

FOR = "5s"
VALUES: dict[str, Any] = {
    # the operator below runs alone, without leader election
    "leaderElection": {"enabled": False},
    "replicas": 1,
    "prometheusRule": {
        "enabled": True,
        "alerts": {
            "RayRefJobFailed": {"for": FOR},
            # 0.05 minutes: a Synced=False older than 3 s
            "RayRefNotSynced": {"for": FOR, "minutes": 0.05},
            # resolves a window after the last throttled answer: 30 s, not 5 minutes
            "RayRefCloudThrottled": {"for": FOR, "window": "30s"},
        },
    },
}
RESOLVE_WITHIN = 180.0
FIRE_WITHIN = 180.0

# Dashboard queries that cannot have data in this setup, by (panel, metric read).
NO_DATA = {
    ("Leaders", "rayref_leader"): "no leader election: rayref_leader is not exported",
    ("Leader", "rayref_leader"): "no leader election: rayref_leader is not exported",
    ("Leader transitions", "rayref_leader_transitions_total"): "no leader election",
    ("Shard slots", "rayref_shard_slots_held"): "no sharding",
    ("Shard slots", "rayref_shard_slots"): "no sharding",
    ("Shard slots", "rayref_shard_members"): "no sharding",
}
# Queries that may or may not have data here: they count events this test does not
# cause but a loaded machine can (a watch timing out under CI load once gave the
# Watches panel data). With data, their legends are still checked.
MAYBE_DATA = {
    ("Watches", "rayref_watch_failures_total"): "no watch failure is caused",
    ("Contained faults", "rayref_object_faults_total"): "no step on an object is made to raise",
    ("Node refreshes deferred", "rayref_polls_total"): (
        "the get strategy (the operator fixture's) defers no node refresh; only list sweeps do"
    ),
}


@dataclass(frozen=True)
class Expected:
    """An alert the test's faults must fire: its name and the labels that single it out."""

    fault: str
    alert: str
    labels: Mapping[str, str]

    def matches(self, alert: Mapping[str, Any]) -> bool:
        labels = alert["labels"]
        if labels.get("alertname") != self.alert:
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


def scrape_of_the_chart(service: Mapping[str, Any], metrics_port: int) -> dict[str, Any]:
    """The target as the chart's ServiceMonitor would give it: `job` is the metrics
    Service's name, `namespace` the install's (the dashboard's variable filters on it)."""
    name = service["metadata"]["name"]
    labels = {
        "namespace": service["metadata"]["namespace"],
        "service": name,
        "endpoint": "metrics",
        "pod": f"{name.removesuffix('-metrics')}-0",
    }
    return scrape_config(name, f"127.0.0.1:{metrics_port}", labels)


def firing(server: PrometheusServer) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/api/v1/alerts", timeout=10)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
    return [alert for alert in alerts if alert["state"] == "firing"]


def query(server: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.base_url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def wait_alerts(
    server: PrometheusServer, expected: list[Expected], *, firing_now: bool, since: float
) -> dict[str, float]:
    """Seconds from `since` until each expected alert is firing (or no longer is)."""
    seen: dict[str, float] = {}

    def probe() -> None:
        alerts = firing(server)
        for item in expected:
            if item.alert not in seen and any(item.matches(a) for a in alerts) == firing_now:
                seen[item.alert] = time.monotonic() - since
        missing = [item.alert for item in expected if item.alert not in seen]
        shown = sorted({a["labels"]["alertname"] for a in alerts})
        assert not missing, f"still waiting for {missing}; firing: {shown}"

    state = "firing" if firing_now else "resolved"
    within = FIRE_WITHIN if firing_now else RESOLVE_WITHIN
    await eventually(probe, what=f"alerts {state}", within=within, every=0.5)
    return seen


def metric_read(expr: str, metric: str) -> bool:
    return re.search(rf"\b{re.escape(metric)}\{{", expr) is not None


def no_data_reason(
    panel: str, expr: str, table: dict[tuple[str, str], str] = NO_DATA
) -> str | None:
    for (title, metric), reason in table.items():
        if title == panel and metric_read(expr, metric):
            return reason
    return None


def check_dashboard(server: PrometheusServer, namespace: str) -> list[str]:
    """Every panel query against the live server; returns the problems found."""
    problems: list[str] = []
    legends = [q.legend for p in dashboard().panels() for q in p.queries]
    for item, legend in zip(promql(namespace=namespace, rate_interval="1m"), legends, strict=True):
        result = query(server, item.expr)
        reason = no_data_reason(item.panel, item.expr)
        if reason is not None:
            if result:
                problems.append(f"{item.panel}: data where none was expected ({reason})")
            continue
        if not result and no_data_reason(item.panel, item.expr, MAYBE_DATA) is None:
            problems.append(f"{item.panel}: no data for {item.expr}")
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            if any(label not in series["metric"] for series in result):
                problems.append(f"{item.panel}: legend label {label!r} not in {item.expr}")
    return problems


async def test_alerts_fire_and_resolve_and_every_panel_has_data_on_a_real_prometheus(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    prometheus_factory: PrometheusFactory,
) -> None:
    kube.apply_crds()
    control, workspace = simulator.control, simulator.workspace_id
    docs = render(helm_binary(), VALUES)
    (service,) = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
    ]
    groups = prometheus_rule(docs)["spec"]["groups"]
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig, endpoint=simulator.base_url, namespaces=[namespace]
    )
    server = prometheus_factory.start([scrape_of_the_chart(service, operator.metrics_port)], groups)

    job = await control.create_job(workspace, script={"outcome": None})
    steady = await control.create_job(workspace, script={"outcome": None})
    cluster = await control.create_cluster(workspace)
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        credentials_secret(namespace, simulator.credentials, "keyed"),
        job_ref(namespace, "nightly", workspace, job.id),
        job_ref(namespace, "keyed", workspace, steady.id, secret="keyed"),
        cluster_ref(namespace, "pool", workspace, cluster.id),
    )
    for kind, name in ((JOB_KIND, "nightly"), (JOB_KIND, "keyed"), (CLUSTER_KIND, "pool")):
        await wait_status(
            kube, kind, namespace, name, lambda o: synced(o)[0] == "True", what=f"{name} synced"
        )

    def operator_up() -> None:
        assert query(server, f'up{{job="{service["metadata"]["name"]}"}} == 1')

    await eventually(operator_up, what="Prometheus scrapes the operator", within=60)
    assert not firing(server), "an alert fires before any fault"

    expected = [
        Expected(
            "the remote job failed", "RayRefJobFailed", {"namespace": namespace, "name": "nightly"}
        ),
        Expected(
            "the ref's credentials Secret was deleted",
            "RayRefNotSynced",
            {"kind": JOB_KIND, "reason": "CredentialsNotFound"},
        ),
        Expected("the simulator throttles GetRayCluster", "RayRefCloudThrottled", {}),
    ]
    started = time.monotonic()
    await control.update_job(workspace, job.id, action="fail", message="exit code 1")
    kube.kubectl("delete", "secret", "keyed", "-n", namespace)
    await control.set_faults(operation="GetRayCluster", rate=0.001, burst=1, retry_after_ms=1000)
    fired = await wait_alerts(server, expected, firing_now=True, since=started)
    others = sorted(
        {a["labels"]["alertname"] for a in firing(server)} - {e.alert for e in expected}
    )

    problems = check_dashboard(server, RELEASE_NAMESPACE)
    assert not problems, "\n".join(problems)

    cleared = time.monotonic()
    kube.kubectl("delete", "rayjobref", "nightly", "-n", namespace, "--wait=true")
    put_secret(kube, namespace, simulator.credentials, "keyed")
    await control.clear_faults()
    resolved = await wait_alerts(server, expected, firing_now=False, since=cleared)

    for item in expected:
        report(
            f"live alert {item.alert} on '{item.fault}': firing after "
            f"{fired[item.alert]:.1f} s, resolved {resolved[item.alert]:.1f} s after the fault "
            "was cleared"
        )
    report(f"live alerts also firing during the faults: {others or 'none'}")
