"""The benchmark's baseline: the obvious operator, one kopf timer per ref.

Every 30 s each RayJobRef calls GetRayJob (each RayClusterRef GetRayCluster), maps the
answer with rayref's own mapping and writes the status when it changed. It shares one
token bucket of the same budget as rayref, so it is slowed, not throttled. Lives only
in the benchmark.

    python -m bench.baseline_operator   (KUBECONFIG, BASELINE_ENDPOINT, BASELINE_RATE,
                                         BASELINE_BURST, BASELINE_METRICS_PORT,
                                         BASELINE_INTERVAL)
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from rayref.api.kinds import GROUP, JOB_KIND, PLURALS, VERSION
from rayref.emr.budget import RequestBudget
from rayref.emr.client import EmrClient
from rayref.emr.credentials import Credentials
from rayref.emr.errors import EmrError
from rayref.emr.http import new_http_client
from rayref.emr.models import RayCluster, RayJob
from rayref.kube.client import KubeClient, merge_patch
from rayref.kube.credentials import credentials_from_secret
from rayref.mirror.cluster import cluster_status
from rayref.mirror.failure import sync_failure
from rayref.mirror.job import job_status

INTERVAL = float(os.environ.get("BASELINE_INTERVAL", "30"))

registry = CollectorRegistry()
checked_gauge = Gauge("baseline_refs_checked", "Refs read since start", registry=registry)
writes = Counter("baseline_status_writes", "Status patches", registry=registry)
calls = Counter("baseline_cloud_requests", "Cloud calls", ["operation"], registry=registry)


class State:
    def __init__(self) -> None:
        self.kube = KubeClient.from_environment()
        self.http = new_http_client(max_connections=32)
        self.budget = RequestBudget(
            float(os.environ.get("BASELINE_RATE", "20")),
            int(os.environ.get("BASELINE_BURST", "40")),
        )
        self.endpoint = os.environ["BASELINE_ENDPOINT"]
        self.credentials: dict[tuple[str, str], Credentials] = {}
        self.checked: set[str] = set()

    async def credentials_for(self, namespace: str, name: str) -> Credentials:
        key = (namespace, name)
        if key not in self.credentials:
            secret = await self.kube.get_secret(namespace, name)
            self.credentials[key] = credentials_from_secret(namespace, name, secret or {})
        return self.credentials[key]

    def client(self, credentials: Credentials) -> EmrClient:
        return EmrClient(
            credentials,
            endpoint=self.endpoint,
            http_client=self.http,
            budget=self.budget,
            observer=lambda operation, outcome, seconds: calls.labels(operation).inc(),
        )


STATE: State | None = None


def _state() -> State:
    global STATE
    if STATE is None:
        STATE = State()
    return STATE


async def _poll(
    kind: str,
    spec: Any,
    status: Any,
    meta: Any,
    namespace: str,
    name: str,
    uid: str,
) -> None:
    state = _state()
    now = datetime.now(UTC)
    previous = dict(status or {})
    generation = int(meta.get("generation") or 0)
    secret = (spec.get("credentialsSecretRef") or {}).get("name", "creds")
    client = state.client(await state.credentials_for(namespace, str(secret)))
    try:
        if kind == JOB_KIND:
            remote: RayJob | RayCluster = await client.get_ray_job(
                str(spec["workspaceId"]), str(spec["submissionId"])
            )
        else:
            remote = await client.get_ray_cluster(str(spec["workspaceId"]), str(spec["clusterId"]))
    except EmrError as error:
        update = sync_failure(kind, previous, error, generation=generation, now=now)
    else:
        if isinstance(remote, RayJob):
            update = job_status(remote, previous, generation=generation, now=now)
        else:
            update = cluster_status(remote, previous, generation=generation, now=now)
    state.checked.add(uid)
    checked_gauge.set(len(state.checked))
    patch = merge_patch(previous, update.status) if update.changed else {}
    if patch:
        await state.kube.patch_status(kind, namespace, name, patch)
        writes.inc()


def register(registry_: kopf.OperatorRegistry) -> None:
    @kopf.on.login(registry=registry_)
    def login(**kwargs: Any) -> Any:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry_)
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.watching.server_timeout = 300
        port = int(os.environ.get("BASELINE_METRICS_PORT", "0"))
        if port:
            start_http_server(port, registry=registry)

    for kind, plural in PLURALS.items():

        @kopf.timer(
            GROUP,
            VERSION,
            plural,
            id=f"poll-{plural}",
            interval=INTERVAL,
            param=kind,
            registry=registry_,
        )
        async def poll(
            *,
            spec: Any,
            status: Any,
            meta: Any,
            namespace: str | None,
            name: str,
            uid: str,
            param: Any = None,
            **_: Any,
        ) -> None:
            await _poll(str(param), spec, status, meta, str(namespace), name, uid)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    registry_ = kopf.OperatorRegistry()
    register(registry_)
    asyncio.run(kopf.operator(registry=registry_, standalone=True, clusterwide=True))


if __name__ == "__main__":
    main()
