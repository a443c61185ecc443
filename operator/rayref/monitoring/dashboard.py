"""rayref's Grafana dashboard: its panels, and the command that writes the JSON.

    python -m rayref.monitoring.dashboard \
        --output charts/rayref-operator/dashboards/rayref-operator.json

(`make dashboard`). The panels read the metrics of docs/metrics.md. Every selector
carries the `namespace` variable's matcher: the metrics have no namespace label of their
own (docs/metrics.md, Labels), so `namespace` is the scrape target's, the namespace the
operator runs in, which the chart's ServiceMonitor and PodMonitor add; one Prometheus
watching several installs (one per tenant) is filtered by it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rayref.monitoring.grafana import Dashboard, Panel, Query, QueryVariable, Row, to_json

NAMESPACE = 'namespace=~"$namespace"'
RATE_INTERVAL = "$__rate_interval"
# A label-less gauge every rayref process exports from its start, whatever its mode or
# role: `and on` it keeps the process_* series of rayref's own targets, not those of
# anything else scraped in the namespace.
PRESENT = "rayref_refs_scheduled"
# Per-replica label of a series: the chart's monitors add `pod`; `instance` is always there.
REPLICA = "job, instance"


def sel(metric: str, matchers: str = "") -> str:
    """A selector filtered by the namespace variable (and more matchers, if given)."""
    return f"{metric}{{{NAMESPACE}{', ' + matchers if matchers else ''}}}"


def working(metric: str, matchers: str = "") -> str:
    """A registry gauge of the replicas that poll: a warm standby holds the same refs as
    its leader (docs/operating.md, High availability) and would count them twice, so its
    series are dropped. A shard member, or a single replica, has no standby to drop."""
    standby = f"({sel('rayref_leader')} == 0)"
    return f"({sel(metric, matchers)} unless on ({REPLICA}) {standby})"


def rate(metric: str, matchers: str = "") -> str:
    return f"rate({sel(metric, matchers)}[{RATE_INTERVAL}])"


def increase(metric: str) -> str:
    return f"increase({sel(metric)}[{RATE_INTERVAL}])"


def own_process(expr: str) -> str:
    """`expr` (of process_* series) for rayref's own processes only."""
    return f"({expr} and on ({REPLICA}) {sel(PRESENT)})"


def p95(histogram: str, by: str) -> str:
    return f"histogram_quantile(0.95, sum by (le, {by}) ({rate(histogram + '_bucket')}))"


# Poll results that are the normal course of a check (docs/metrics.md, Polls and writes);
# the others mean a check that did not bring the ref up to date.
ROUTINE_RESULTS = "ok|suspended|listed-unchanged|listed-changed|listed-missing|listed-instances"
UNSYNCED_RESULT = f'result!~"{ROUTINE_RESULTS}"'
FAILED = 'outcome!="success"'
DEFERRED = 'result="listed-nodes-deferred"'


def stat(title: str, description: str, query: Query, unit: str = "short") -> Panel:
    return Panel(title, description, [query], unit=unit, kind="stat", width=4, height=4)


def overview() -> Row:
    return Row(
        "Overview",
        [
            stat(
                "Refs",
                "Refs the operator knows, in its watched namespaces.",
                Query(f"sum({working('rayref_refs')})"),
            ),
            stat(
                "Unsynced refs",
                "Active refs whose check fell due and has not succeeded since.",
                Query(f"sum({working('rayref_refs_unsynced')})"),
            ),
            stat(
                "Oldest unsynced",
                "How long the oldest unsynced active ref has been unsynced (freshness lag).",
                Query(f"max({working('rayref_sync_oldest_unsynced_seconds')})"),
                unit="s",
            ),
            stat(
                "Cloud throttling",
                "Cloud calls answered as throttled, per second.",
                Query(f"sum({rate('rayref_cloud_throttled_total')})"),
                unit="reqps",
            ),
            stat(
                "Leaders",
                "Replicas holding the leader Lease, per install: 1 with leader election, "
                "none without it or with sharding.",
                Query(f"sum by (namespace) ({sel('rayref_leader')})", "{{namespace}}"),
            ),
            stat(
                "Watches healthy",
                "1 while every watch of the refs lists and watches; 0 while one keeps "
                "failing (then /readyz fails too).",
                Query(f"min({sel('rayref_watch_healthy')})"),
            ),
        ],
    )


def refs() -> Row:
    return Row(
        "Refs",
        [
            Panel(
                "Refs by phase or state",
                "status.phase of the RayJobRefs, status.state of the RayClusterRefs; "
                "Unknown before the first read.",
                [
                    Query(
                        f"sum by (kind, phase) ({working('rayref_refs_by_phase')})",
                        "{{kind}} {{phase}}",
                    )
                ],
                stacked=True,
            ),
            Panel(
                "Refs by install namespace",
                "Refs per kind and operator install. The refs' own namespaces are not a "
                "label (docs/metrics.md, Labels): kubectl get rayref -A shows them.",
                [
                    Query(
                        f"sum by (namespace, kind) ({working('rayref_refs')})",
                        "{{namespace}} {{kind}}",
                    )
                ],
                stacked=True,
            ),
            Panel(
                "Failed job refs by namespace",
                "RayJobRefs whose phase is Failed, by the ref's own namespace: the one metric "
                "labelled by ref (docs/metrics.md), a series only while a ref is Failed.",
                [
                    Query(
                        f"count by (ref_namespace) ({working('rayref_job_failed')})",
                        "{{ref_namespace}}",
                    )
                ],
                stacked=True,
            ),
            Panel(
                "Failed job refs",
                "Each RayJobRef Failed now; kubectl describe rayjobref -n NAMESPACE NAME "
                "tells why (docs/alerts.md).",
                [
                    Query(
                        "sum by (namespace, ref_namespace, ref_name) "
                        f"({working('rayref_job_failed')})"
                    )
                ],
                kind="table",
                width=16,
            ),
            Panel(
                "Refs checked since the start",
                "Refs listed or read at least once since the operator started, against "
                "the refs and those with a check scheduled: the re-verification after a restart.",
                [
                    Query(f"sum({working('rayref_refs_checked')})", "checked"),
                    Query(f"sum({working('rayref_refs')})", "refs"),
                    Query(f"sum({working('rayref_refs_scheduled')})", "scheduled"),
                ],
            ),
        ],
    )


def freshness() -> Row:
    return Row(
        "Sync freshness and failures",
        [
            Panel(
                "Freshness lag",
                "Seconds the oldest unsynced active ref has been unsynced, per install; "
                "grows while reads fail, the cloud throttles or the budget is too small.",
                [
                    Query(
                        f"max by (namespace) ({working('rayref_sync_oldest_unsynced_seconds')})",
                        "{{namespace}}",
                    )
                ],
                unit="s",
            ),
            Panel(
                "Unsynced refs",
                "Active refs unsynced now, per install.",
                [Query(f"sum by (namespace) ({working('rayref_refs_unsynced')})", "{{namespace}}")],
            ),
            Panel(
                "Checks that did not sync",
                "Checks by result other than the routine ones: error, awaiting-credentials, "
                "kube-unavailable, listed-stale, listed-failed, listed-nodes-deferred.",
                [
                    Query(
                        f"sum by (kind, result) ({rate('rayref_polls_total', UNSYNCED_RESULT)})",
                        "{{kind}} {{result}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Refs not Synced, by reason",
                "Refs whose status shows Synced=False, by kind and reason (docs/status.md).",
                [
                    Query(
                        f"sum by (kind, reason) ({working('rayref_refs_not_synced')})",
                        "{{kind}} {{reason}}",
                    )
                ],
                stacked=True,
                width=12,
            ),
            Panel(
                "Longest Synced=False, by reason",
                "Age of the oldest Synced=False condition of each kind and reason, from its "
                "lastTransitionTime.",
                [
                    Query(
                        "max by (kind, reason) "
                        f"({working('rayref_refs_not_synced_oldest_seconds')})",
                        "{{kind}} {{reason}}",
                    )
                ],
                unit="s",
                width=12,
            ),
            Panel(
                "Failed cloud calls by reason",
                "Cloud calls by outcome other than success: the errors behind Synced=False "
                "(authentication, access_denied, not_found, throttled, server_error...).",
                [
                    Query(
                        f"sum by (outcome) ({rate('rayref_cloud_requests_total', FAILED)})",
                        "{{outcome}}",
                    )
                ],
                unit="reqps",
                width=12,
            ),
            Panel(
                "Contained faults",
                "Steps on one object that failed and were contained to it (bulkheads), by "
                "kind and step.",
                [
                    Query(
                        f"sum by (kind, step) ({rate('rayref_object_faults_total')})",
                        "{{kind}} {{step}}",
                    )
                ],
                unit="ops",
                width=12,
            ),
        ],
    )


def cloud() -> Row:
    return Row(
        "Cloud requests and budget",
        [
            Panel(
                "Cloud requests against the budget",
                "Cloud API calls per second by operation (each attempt), and the rate the "
                "request budget allows now (lowered while the cloud throttles).",
                [
                    Query(
                        f"sum by (operation) ({rate('rayref_cloud_requests_total')})",
                        "{{operation}}",
                    ),
                    Query(f"sum({working('rayref_request_budget_rate')})", "budget"),
                ],
                unit="reqps",
            ),
            Panel(
                "Throttling",
                "Calls the cloud answered as throttled, by operation, and the times the "
                "budget halved its rate because of it.",
                [
                    Query(
                        f"sum by (operation) ({rate('rayref_cloud_throttled_total')})",
                        "throttled {{operation}}",
                    ),
                    Query(
                        f"sum({rate('rayref_request_budget_slowdowns_total')})", "budget slowdowns"
                    ),
                ],
                unit="ops",
            ),
            Panel(
                "Budget tokens",
                "Tokens left in the request budget; at 0 the checks wait for it.",
                [
                    Query(
                        f"sum by (namespace) ({working('rayref_request_budget_tokens')})",
                        "{{namespace}}",
                    )
                ],
            ),
            Panel(
                "Cloud call latency (p95)",
                "95th percentile of one cloud call, budget wait excluded.",
                [Query(p95("rayref_cloud_request_duration_seconds", "operation"), "{{operation}}")],
                unit="s",
                width=12,
            ),
            Panel(
                "Check duration (p95)",
                "95th percentile of one per-ref check, the wait for the budget included.",
                [Query(p95("rayref_poll_duration_seconds", "kind"), "{{kind}}")],
                unit="s",
                width=12,
            ),
        ],
    )


def sweeps() -> Row:
    return Row(
        "Checks and sweeps",
        [
            Panel(
                "Checks by result",
                "Every check by kind and result; listed-* are the list sweeps' verdicts.",
                [
                    Query(
                        f"sum by (kind, result) ({rate('rayref_polls_total')})",
                        "{{kind}} {{result}}",
                    )
                ],
                unit="ops",
                stacked=True,
                width=12,
            ),
            Panel(
                "Node-list age",
                "Seconds since the node list of a Starting or Running cluster was last read, "
                "the oldest of them (list strategy); healthy under 4 x the longest interval.",
                [
                    Query(
                        f"max by (namespace) ({working('rayref_node_lists_oldest_seconds')})",
                        "{{namespace}}",
                    )
                ],
                unit="s",
                width=12,
            ),
            Panel(
                "Node refreshes deferred",
                "Running clusters whose node refresh was due but the budget had nothing to "
                "spare beyond its reserve: the node list shown is older than due.",
                [Query(f"sum({rate('rayref_polls_total', DEFERRED)})", "deferred")],
                unit="ops",
                width=12,
            ),
            Panel(
                "Checks in flight",
                "Refs being checked now.",
                [
                    Query(
                        f"sum by (namespace) ({working('rayref_polls_in_flight')})", "{{namespace}}"
                    )
                ],
                width=12,
            ),
        ],
    )


def kubernetes() -> Row:
    return Row(
        "Kubernetes API",
        [
            Panel(
                "API server writes",
                "Status patches by kind (only changes are written), connection Secrets "
                "written, Events posted.",
                [
                    Query(
                        f"sum by (kind) ({rate('rayref_status_writes_total')})", "status {{kind}}"
                    ),
                    Query(
                        f"sum({rate('rayref_connection_secret_writes_total')})",
                        "connection Secrets",
                    ),
                    Query(f"sum({rate('rayref_events_total')})", "Events"),
                ],
                unit="wps",
            ),
            Panel(
                "Events by reason",
                "Events posted for transitions, by type and reason.",
                [
                    Query(
                        f"sum by (type, reason) ({rate('rayref_events_total')})",
                        "{{type}} {{reason}}",
                    )
                ],
                unit="ops",
            ),
            Panel(
                "Watches",
                "Failed listings or watches of the refs per second, and whether every watch "
                "of the kind is healthy (1) or not (0).",
                [
                    Query(
                        f"sum by (kind) ({rate('rayref_watch_failures_total')})",
                        "failures {{kind}}",
                    ),
                    Query(f"min by (kind) ({sel('rayref_watch_healthy')})", "healthy {{kind}}"),
                ],
            ),
        ],
    )


def replicas() -> Row:
    return Row(
        "Leader election and sharding",
        [
            Panel(
                "Leader",
                "1 in the replica holding the leader Lease, 0 in a standby.",
                [Query(sel("rayref_leader"), "{{namespace}} {{pod}}")],
            ),
            Panel(
                "Leader transitions",
                "Times a replica became or stopped being the leader.",
                [
                    Query(
                        f"sum by (namespace) ({increase('rayref_leader_transitions_total')})",
                        "{{namespace}}",
                    )
                ],
            ),
            Panel(
                "Shard slots",
                "Slots each replica holds, against the slots of the install and the live "
                "members a replica sees.",
                [
                    Query(sel("rayref_shard_slots_held"), "held {{pod}}"),
                    Query(
                        f"max by (namespace) ({sel('rayref_shard_slots')})", "slots {{namespace}}"
                    ),
                    Query(
                        f"max by (namespace) ({sel('rayref_shard_members')})",
                        "members {{namespace}}",
                    ),
                ],
            ),
        ],
    )


def process() -> Row:
    return Row(
        "Process",
        [
            Panel(
                "CPU",
                "CPU of each operator process, in cores.",
                [
                    Query(
                        own_process(rate("process_cpu_seconds_total")),
                        "{{pod}}",
                    )
                ],
            ),
            Panel(
                "Resident memory",
                "Resident memory of each operator process; compare with the container's limit.",
                [Query(own_process(sel("process_resident_memory_bytes")), "{{pod}}")],
                unit="bytes",
            ),
            Panel(
                "Open file descriptors",
                "Open file descriptors of each operator process, against its limit.",
                [
                    Query(own_process(sel("process_open_fds")), "open {{pod}}"),
                    Query(own_process(sel("process_max_fds")), "limit {{pod}}"),
                ],
            ),
        ],
    )


NAMESPACE_VARIABLE = QueryVariable(
    name="namespace",
    label="Namespace",
    query=f"label_values({PRESENT}, namespace)",
    description="Namespace of the operator install (the scrape target's namespace label).",
)


def dashboard() -> Dashboard:
    return Dashboard(
        uid="rayref-operator",
        title="rayref operator",
        description="Refs, sync freshness, cloud requests and budget, sweeps, API server "
        "writes, replicas and process of the rayref operator (docs/metrics.md).",
        tags=("rayref",),
        rows=(
            overview(),
            refs(),
            freshness(),
            cloud(),
            sweeps(),
            kubernetes(),
            replicas(),
            process(),
        ),
        variables=(NAMESPACE_VARIABLE,),
    )


def render() -> str:
    """The dashboard JSON as committed: stable key order, two-space indent."""
    return json.dumps(to_json(dashboard()), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    expr: str


def expressions() -> list[PanelQuery]:
    """Every panel's PromQL as written, Grafana's variables left in."""
    return [PanelQuery(p.title, q.expr) for p in dashboard().panels() for q in p.queries]


def promql(namespace: str = ".*", rate_interval: str = "1m") -> list[PanelQuery]:
    """Every panel's PromQL with the variables as Grafana would fill them in (the
    namespace variable's "All" is `.*`), ready for Prometheus' query API."""
    return [
        PanelQuery(
            q.panel,
            q.expr.replace("$namespace", namespace).replace(RATE_INTERVAL, rate_interval),
        )
        for q in expressions()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rayref.monitoring.dashboard",
        description="Write rayref's Grafana dashboard JSON.",
    )
    parser.add_argument("--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    if args.output is None:
        sys.stdout.write(render())
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
