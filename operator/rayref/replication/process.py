"""One replica's process in the replicated modes: who it is, its Lease timing, its
probes for the whole run, and the clean-up at its end."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rayref.election.lease import ElectionTiming
from rayref.kube.health import Body, serve_health

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class LeaseSettings(Protocol):
    """The settings that place a replica's Leases (`controller.settings`)."""

    @property
    def leader_election_lease_duration(self) -> float: ...
    @property
    def leader_election_renew_deadline(self) -> float: ...
    @property
    def leader_election_retry_period(self) -> float: ...
    @property
    def leader_election_identity(self) -> str | None: ...
    @property
    def leader_election_namespace(self) -> str | None: ...


@dataclass(frozen=True)
class ReplicaPlace:
    """Who a replica is among the others, where its Leases live, how they are timed."""

    identity: str
    namespace: str
    timing: ElectionTiming


def replica_place(settings: LeaseSettings, environ: dict[str, str]) -> ReplicaPlace:
    """The settings win; else the pod's name and namespace (downward API, service
    account), so that the chart need not set them."""
    return ReplicaPlace(
        identity=settings.leader_election_identity or default_identity(environ),
        namespace=settings.leader_election_namespace or default_namespace(environ),
        timing=ElectionTiming(
            settings.leader_election_lease_duration,
            settings.leader_election_renew_deadline,
            settings.leader_election_retry_period,
        ),
    )


def default_identity(environ: dict[str, str] | os._Environ[str]) -> str:
    """The pod name (downward API) or the host name, plus a random suffix: a restarted
    container of the same pod is a new candidate, never mistaken for the old holder."""
    base = environ.get("POD_NAME") or socket.gethostname() or "rayref"
    return f"{base}-{secrets.token_hex(3)}"


def default_namespace(environ: dict[str, str] | os._Environ[str]) -> str:
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        if namespace:
            return namespace
    return "default"


def exit_now(code: int) -> None:
    """The step-down of a replica that may no longer write: immediate, no clean-up
    that could let one more write out."""
    logging.shutdown()  # flush what was logged so far
    os._exit(code)


@contextlib.asynccontextmanager
async def replica_process(
    health_port: int, health: Body, close: Callable[[], Awaitable[None]] | None
) -> AsyncIterator[None]:
    """Serves `/healthz` (body `health()`) and `/readyz` while the replica runs, then
    stops serving and closes its Lease client (whose failure to close changes nothing
    of the exit code: every Lease was released or given up by then)."""
    runner = await serve_health(health_port, health)
    try:
        yield
    finally:
        if runner is not None:
            await runner.cleanup()
        if close is not None:
            with contextlib.suppress(Exception):
                await close()
