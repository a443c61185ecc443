"""Prometheus metrics of the operator (no label ever carries a secret or a remote ID)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.refs = Gauge(
            "rayref_refs", "Refs known to the scheduler", ["kind"], registry=self.registry
        )
        self.refs_scheduled = Gauge(
            "rayref_refs_scheduled",
            "Refs with a next poll scheduled (not stopped or suspended)",
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
        self.cloud_requests = Counter(
            "rayref_cloud_requests",
            "Cloud API calls (attempts) by operation and outcome",
            ["operation", "outcome"],
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

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)
