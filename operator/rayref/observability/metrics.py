"""Prometheus metrics of the operator.

Labels are only ever a kind, a phase/state, an operation, an outcome, a poll result,
a Synced=False reason or an event type/reason: never a remote ID or anything secret, and
a ref's name only on `rayref_job_failed` (one series per Failed RayJobRef, gone with the
ref: the per-ref alert teams asked for), so the series count does not grow with the
number of refs. docs/metrics.md lists every metric.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from rayref.observability.faults import Faults
from rayref.observability.sync import SyncMemory, SyncTimes, SyncTracker

__all__ = ["Metrics", "SyncMemory", "SyncTimes", "SyncTracker"]

# Cloud calls take tens of milliseconds when healthy; the read timeout is 10 s.
CLOUD_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        # A registry of our own has none of prometheus_client's default collectors; the
        # process_* series (CPU, resident memory, open fds) are what the dashboard and the
        # memory alert read, and the kubelet's container metrics are not always scraped.
        ProcessCollector(registry=self.registry)
        self.sync = SyncTracker(clock)
        # Per-object faults contained by a bulkhead (observability.faults).
        self.faults = Faults(self.registry, clock=clock)
        self.refs = Gauge(
            "rayref_refs", "Refs known to the scheduler", ["kind"], registry=self.registry
        )
        self.refs_by_phase = Gauge(
            "rayref_refs_by_phase",
            "Refs by kind and mirrored phase (RayJobRef) or state (RayClusterRef); "
            "Unknown before the first read",
            ["kind", "phase"],
            registry=self.registry,
        )
        self.refs_scheduled = Gauge(
            "rayref_refs_scheduled",
            "Refs with a next poll scheduled (not stopped or suspended)",
            registry=self.registry,
        )
        self.refs_unsynced = Gauge(
            "rayref_refs_unsynced",
            "Active refs whose check fell due and has not succeeded since",
            registry=self.registry,
        )
        self.sync_oldest_unsynced = Gauge(
            "rayref_sync_oldest_unsynced_seconds",
            "Seconds since the oldest missed due time of an active ref that has not "
            "synced since (0 when every active ref is synced)",
            registry=self.registry,
        )
        self.polls_in_flight = Gauge(
            "rayref_polls_in_flight", "Polls running now", registry=self.registry
        )
        self.polls = Counter(
            "rayref_polls", "Polls by kind and result", ["kind", "result"], registry=self.registry
        )
        self.poll_seconds = Histogram(
            "rayref_poll_duration_seconds",
            "Duration of one poll, waiting for the request budget included",
            ["kind"],
            registry=self.registry,
        )
        self.status_writes = Counter(
            "rayref_status_writes", "Status patches sent", ["kind"], registry=self.registry
        )
        self.secret_writes = Counter(
            "rayref_connection_secret_writes",
            "Connection Secrets created or updated",
            registry=self.registry,
        )
        self.events = Counter(
            "rayref_events", "Events posted", ["type", "reason"], registry=self.registry
        )
        self.failure_logs = Counter(
            "rayref_failure_logs",
            "Failed jobs' driver logs: queued, retried, and each written failureLog reason",
            ["outcome"],
            registry=self.registry,
        )
        self.cloud_requests = Counter(
            "rayref_cloud_requests",
            "Cloud API calls (attempts) by operation and outcome",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.cloud_request_seconds = Histogram(
            "rayref_cloud_request_duration_seconds",
            "Duration of one cloud API call (attempt), budget wait excluded",
            ["operation"],
            buckets=CLOUD_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cloud_throttled = Counter(
            "rayref_cloud_throttled",
            "Cloud API calls the cloud refused as throttled",
            ["operation"],
            registry=self.registry,
        )
        self.budget_slowdowns = Counter(
            "rayref_request_budget_slowdowns",
            "Times the request budget lowered its rate because the cloud throttled",
            registry=self.registry,
        )
        self.refs_checked = Gauge(
            "rayref_refs_checked",
            "Refs checked (listed or read) at least once since the operator started",
            registry=self.registry,
        )
        self.budget_rate = Gauge(
            "rayref_request_budget_rate",
            "Current rate of the cloud request budget (lowered while the cloud throttles)",
            registry=self.registry,
        )
        self.budget_tokens = Gauge(
            "rayref_request_budget_tokens",
            "Tokens left in the cloud request budget",
            registry=self.registry,
        )
        # The refs' own watches (kube.watch.WatchHealth): a watch that cannot list stops
        # the refs of its kind and namespace from being seen at all.
        self.watch_failures = Counter(
            "rayref_watch_failures",
            "Failed listings or watches of the refs (each retried with backoff), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.watch_healthy = Gauge(
            "rayref_watch_healthy",
            "1 while every watch of the kind lists and watches; 0 while one keeps failing",
            ["kind"],
            registry=self.registry,
        )
        # For the alerts (docs/alerts.md), set with the registry-derived gauges.
        self.refs_not_synced = Gauge(
            "rayref_refs_not_synced",
            "Refs whose status shows Synced=False, by kind and reason",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.refs_not_synced_oldest = Gauge(
            "rayref_refs_not_synced_oldest_seconds",
            "Age of the oldest Synced=False condition (its lastTransitionTime), by kind and reason",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.node_lists_oldest = Gauge(
            "rayref_node_lists_oldest_seconds",
            "Seconds since the nodes of a Starting or Running cluster were last read, the "
            "oldest of them (list strategy; 0 when none)",
            registry=self.registry,
        )
        # The one gauge labelled by ref: a series exists only while the ref is Failed.
        self.job_failed = Gauge(
            "rayref_job_failed",
            "1 for each RayJobRef whose phase is Failed (removed when the ref goes)",
            ["ref_namespace", "ref_name"],
            registry=self.registry,
        )

    def cloud_request(self, operation: str, outcome: str, seconds: float) -> None:
        """One cloud call's result (the EMR client's observer)."""
        self.cloud_requests.labels(operation, outcome).inc()
        self.cloud_request_seconds.labels(operation).observe(seconds)
        if outcome == "throttled":
            self.cloud_throttled.labels(operation).inc()

    def synced(self, ref: SyncMemory) -> None:
        """A check of the ref succeeded (see `SyncTracker`)."""
        self.sync.synced(ref)

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)
