"""How polling reaches the cloud: credentials for a ref, and an EMR client for a region.

One place builds every `EmrClient` (the per-ref poll and the list sweeps alike), with
the operator's one HTTP pool, request budget and observer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from rayref.api.specs import RefSpec, credentials_secret
from rayref.emr import endpoints
from rayref.emr.budget import RequestBudget
from rayref.emr.client import EmrClient, RequestObserver
from rayref.emr.credentials import Credentials
from rayref.emr.models import RayCluster, RayClusterPage, RayJob, RayJobPage
from rayref.emr.retry import RetryPolicy
from rayref.kube.credentials import CredentialsSource

# One quick retry of a blip inside the poll; anything longer is the scheduler's
# business (a poll must not hold a concurrency slot while it sleeps).
OPERATOR_RETRY = RetryPolicy(max_attempts=2, max_delay=1.0, max_retry_after=1.0)


class EmrReader(Protocol):
    """The reads polling makes; `EmrClient` is the one implementation (tests fake it)."""

    async def get_ray_job(self, workspace_id: str, submission_id: str) -> RayJob: ...

    async def get_ray_cluster(self, workspace_id: str, cluster_id: str) -> RayCluster: ...

    async def list_ray_jobs(
        self,
        workspace_id: str,
        *,
        page_num: int = ...,
        page_size: int = ...,
        submit_time: tuple[int, int] | str | None = ...,
    ) -> RayJobPage: ...

    async def list_ray_clusters(
        self, workspace_id: str, *, page_num: int = ..., page_size: int = ...
    ) -> RayClusterPage: ...


def fingerprint(credentials: Credentials) -> str:
    """Identifies a key pair without keeping its secret readable in memory dumps or logs."""
    material = "\0".join(
        (credentials.access_key_id, credentials.access_key_secret, credentials.security_token or "")
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class CloudAccess:
    """The operator-wide cloud settings and shared clients that every read uses."""

    http: httpx.AsyncClient
    budget: RequestBudget
    credentials: CredentialsSource
    default_region: str
    network: str = "public"
    # RAYREF_ENDPOINT: set by the administrator, never by a custom resource.
    endpoint: str | None = None
    shared_credentials_allowed: Callable[[str], bool] = lambda namespace: False
    observer: RequestObserver | None = None

    def region_of(self, spec: RefSpec) -> str:
        return spec.region_id or self.default_region

    async def credentials_for(self, namespace: str, spec: RefSpec) -> Credentials:
        return await self.credentials.credentials_for(namespace, credentials_secret(spec))

    def client(self, credentials: Credentials, region: str) -> EmrReader:
        return self.log_client(credentials, region)

    def log_client(self, credentials: Credentials, region: str) -> EmrClient:
        """The whole client, log operations (ListRayLogs, GetRayLog) included."""
        # Checked again here, not only by the CRD: the region becomes part of a host name.
        endpoints.validate_region(region)
        return EmrClient(
            credentials,
            region=region,
            network=self.network,
            endpoint=self.endpoint,
            http_client=self.http,
            budget=self.budget,
            retry_policy=OPERATOR_RETRY,
            observer=self.observer,
        )
