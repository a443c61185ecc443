"""One poll of one ref: credentials, remote read, pure mapping, write only on change.

Everything stateful arrives through `PollContext`; the decisions (status
content, conditions, transitions, the next delay) are the pure functions of
`rayref.mirror.mapping`. A poll that finds nothing new writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from rayref.controller.settings import OperatorSettings
from rayref.emr import endpoints
from rayref.emr.budget import RequestBudget
from rayref.emr.client import EmrClient, RequestObserver
from rayref.emr.credentials import Credentials
from rayref.emr.errors import AccessDeniedError, AuthenticationError, CredentialsError, EmrError
from rayref.emr.models import RayCluster, RayJob
from rayref.emr.retry import RetryPolicy
from rayref.kube.client import (
    KubeClient,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
    merge_patch,
)
from rayref.kube.connection import ConnectionSecretConflict, ConnectionSecrets
from rayref.kube.credentials import CredentialsSource
from rayref.kube.events import EventRecorder, InvolvedObject
from rayref.mirror import limits
from rayref.mirror.cluster import cluster_status, connection_secret_data
from rayref.mirror.failure import suspended, sync_failure
from rayref.mirror.job import job_status
from rayref.mirror.status import StatusUpdate
from rayref.observability.metrics import Metrics
from rayref.polling.scheduler import PollOutcome, RefSnapshot
from rayref.polling.timing import next_poll_delay, poll_interval

logger = logging.getLogger("rayref.poll")

JOB = "RayJobRef"
CLUSTER = "RayClusterRef"

# One quick retry of a blip inside the poll; anything longer is the scheduler's
# business (a poll must not hold a concurrency slot while it sleeps).
OPERATOR_RETRY = RetryPolicy(max_attempts=2, max_delay=1.0, max_retry_after=1.0)
# When the API server refuses a write (or is down), try again after this long.
KUBE_RETRY_DELAY = 5.0
# Answers to a status patch that say the status itself is unacceptable (invalid,
# too large): the same patch would fail again.
STATUS_REFUSED = frozenset({400, 413, 422})


@dataclass
class PollContext:
    settings: OperatorSettings
    kube: KubeClient
    http: httpx.AsyncClient
    budget: RequestBudget
    credentials: CredentialsSource
    events: EventRecorder
    connection_secrets: ConnectionSecrets
    metrics: Metrics
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Sees every cloud request's outcome (metrics, the budget's slowdown on throttling).
    observer: RequestObserver | None = None


# Failures a person fixes by editing the credentials Secret.
CREDENTIALS_ERRORS = (CredentialsError, AuthenticationError, AccessDeniedError)


@dataclass(frozen=True)
class _Denial:
    fingerprint: str
    retry_at: float  # time.monotonic()


def _fingerprint(credentials: Credentials) -> str:
    """Identifies a key pair without keeping its secret readable in memory dumps or logs."""
    material = "\0".join(
        (
            credentials.access_key_id,
            credentials.access_key_secret,
            credentials.security_token or "",
        )
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _involved(ref: RefSnapshot) -> InvolvedObject:
    return InvolvedObject(ref.key.kind, ref.key.namespace, ref.key.name, ref.uid)


class Poller:
    """The scheduler's poll function (see `scheduler.PerRefStrategy`)."""

    def __init__(self, context: PollContext) -> None:
        self._ctx = context
        # uid -> the refused credentials and when to try them on the cloud again
        self._denials: dict[str, _Denial] = {}

    async def __call__(self, ref: RefSnapshot) -> PollOutcome:
        started = time.monotonic()
        kind = ref.key.kind
        try:
            return await self._poll(ref)
        finally:
            self._ctx.metrics.poll_seconds.labels(kind).observe(time.monotonic() - started)

    def forget(self, uid: str) -> None:
        self._denials.pop(uid, None)

    async def report_failure(self, ref: RefSnapshot, error: Exception) -> PollOutcome:
        """Record a failed read that was not this ref's own (a list sweep that should
        have vouched for it): Synced=False with the error's reason, last state kept."""
        now = self._ctx.now()
        update = sync_failure(ref.key.kind, ref.status, error, generation=ref.generation, now=now)
        delay = next_poll_delay(
            ref.key.kind, update.status, poll_interval(ref.spec), error=error, now=now
        )
        return await self._write(ref, update, next_delay=delay, result="listed-failed")

    async def _poll(self, ref: RefSnapshot) -> PollOutcome:
        ctx = self._ctx
        now = ctx.now()
        interval = poll_interval(ref.spec)
        if ref.suspended:
            update = suspended(ref.key.kind, ref.status, generation=ref.generation, now=now)
            return await self._write(ref, update, next_delay=None, result="suspended")
        uses_secret = bool((ref.spec.get("credentialsSecretRef") or {}).get("name"))
        remote: RayJob | RayCluster | None = None
        error: Exception | None = None
        credentials: Credentials | None = None
        try:
            credentials = await ctx.credentials.credentials_for(ref.key.namespace, ref.spec)
        except KubeUnavailable as exc:
            # The API server cannot tell us the credentials; nothing to conclude about
            # the ref, and nothing could be written anyway.
            logger.debug("%s: credentials Secret unreadable (%s); retrying", ref.key, exc)
            ctx.metrics.polls.labels(ref.key.kind, "kube-unavailable").inc()
            return PollOutcome(next_delay=KUBE_RETRY_DELAY)
        except CredentialsError as exc:
            error = exc
        else:
            if self._still_denied(ref.uid, credentials):
                # Same refused key as before: wait for the Secret to change (checked
                # every interval, from the cached Secret read) or for the slow retry.
                ctx.metrics.polls.labels(ref.key.kind, "awaiting-credentials").inc()
                return PollOutcome(next_delay=interval)
            try:
                remote = await self._read_remote(ref, credentials)
            except (EmrError, endpoints.InvalidIdentifierError) as exc:
                error = exc
        if remote is None:
            assert error is not None
            update = sync_failure(
                ref.key.kind, ref.status, error, generation=ref.generation, now=now
            )
            delay = next_poll_delay(ref.key.kind, update.status, interval, error=error, now=now)
            if uses_secret and isinstance(error, CREDENTIALS_ERRORS):
                # A person fixes this by editing the Secret: look again every interval.
                if credentials is not None and delay is not None:
                    self._denials[ref.uid] = _Denial(
                        _fingerprint(credentials), time.monotonic() + delay
                    )
                delay = interval
            return await self._write(ref, update, next_delay=delay, result="error")
        self._denials.pop(ref.uid, None)
        if isinstance(remote, RayJob):
            update = job_status(remote, ref.status, generation=ref.generation, now=now)
        else:
            update = cluster_status(remote, ref.status, generation=ref.generation, now=now)
            await self._connection_secret(ref, remote)
        delay = next_poll_delay(ref.key.kind, update.status, interval, now=now)
        return await self._write(ref, update, next_delay=delay, result="ok")

    def _still_denied(self, uid: str, credentials: Credentials) -> bool:
        denial = self._denials.get(uid)
        return (
            denial is not None
            and denial.fingerprint == _fingerprint(credentials)
            and time.monotonic() < denial.retry_at
        )

    async def _read_remote(self, ref: RefSnapshot, credentials: Credentials) -> RayJob | RayCluster:
        ctx = self._ctx
        spec = ref.spec
        region = str(spec.get("regionId") or ctx.settings.default_region)
        endpoints.validate_region(region)
        workspace = endpoints.validate_workspace_id(str(spec.get("workspaceId", "")))
        client = EmrClient(
            credentials,
            region=region,
            network=ctx.settings.network,
            endpoint=ctx.settings.endpoint,
            http_client=ctx.http,
            budget=ctx.budget,
            retry_policy=OPERATOR_RETRY,
            observer=ctx.observer,
        )
        if ref.key.kind == JOB:
            submission = endpoints.validate_submission_id(str(spec.get("submissionId", "")))
            return await client.get_ray_job(workspace, submission)
        cluster = endpoints.validate_cluster_id(str(spec.get("clusterId", "")))
        return await client.get_ray_cluster(workspace, cluster)

    async def _write(
        self,
        ref: RefSnapshot,
        update: StatusUpdate,
        *,
        next_delay: float | None,
        result: str,
    ) -> PollOutcome:
        ctx = self._ctx
        ctx.metrics.polls.labels(ref.key.kind, result).inc()
        patch = merge_patch(ref.status, update.status) if update.changed else {}
        if not patch:
            if result == "ok":
                ctx.metrics.synced(ref.key)
            return PollOutcome(next_delay=next_delay)
        try:
            stored = await ctx.kube.patch_status(
                ref.key.kind, ref.key.namespace, ref.key.name, patch
            )
        except KubeNotFound:
            return PollOutcome(next_delay=None, gone=True)
        except KubeError as exc:
            if exc.status not in STATUS_REFUSED:
                logger.warning("status write for %s failed: %s", ref.key, exc)
                return PollOutcome(next_delay=KUBE_RETRY_DELAY)
            # The apiserver will refuse this very status again: retrying every few
            # seconds would re-read the cloud for nothing. Say so, and wait a cycle.
            logger.warning("status for %s refused by the API server: %s", ref.key, exc)
            await ctx.events.record(
                _involved(ref), "Warning", "StatusRefused", limits.clip_text(str(exc), 1024)
            )
            ctx.metrics.events.labels("Warning", "StatusRefused").inc()
            return PollOutcome(next_delay=next_delay)
        except (OSError, TimeoutError) as exc:
            logger.warning("status write for %s failed: %s", ref.key, exc)
            return PollOutcome(next_delay=KUBE_RETRY_DELAY)
        except Exception as exc:  # aiohttp client errors
            logger.warning("status write for %s failed: %s", ref.key, type(exc).__name__)
            return PollOutcome(next_delay=KUBE_RETRY_DELAY)
        ctx.metrics.status_writes.labels(ref.key.kind).inc()
        if result == "ok":
            ctx.metrics.synced(ref.key)
        metadata = stored.get("metadata") or {}
        logger.info(
            "%s status written (%s)",
            ref.key,
            ", ".join(sorted(patch)),
        )
        for transition in update.transitions:
            await ctx.events.record(
                _involved(ref), transition.type, transition.reason, transition.message
            )
            ctx.metrics.events.labels(transition.type, transition.reason).inc()
        return PollOutcome(
            next_delay=next_delay,
            status=stored.get("status") or {},
            resource_version=str(metadata.get("resourceVersion", "")),
        )

    async def _connection_secret(self, ref: RefSnapshot, remote: RayCluster) -> None:
        target = ref.spec.get("connectionSecretRef") or {}
        name = target.get("name") if isinstance(target, Mapping) else None
        if not name:
            return
        data = connection_secret_data(remote)
        if not data:
            return
        ctx = self._ctx
        try:
            written = await ctx.connection_secrets.ensure(
                namespace=ref.key.namespace,
                secret_name=str(name),
                owner_kind=ref.key.kind,
                owner_name=ref.key.name,
                owner_uid=ref.uid,
                data=data,
            )
        except ConnectionSecretConflict as exc:
            await ctx.events.record(_involved(ref), "Warning", "ConnectionSecretConflict", str(exc))
            return
        except (KubeError, OSError, TimeoutError) as exc:
            logger.warning("connection Secret of %s not written: %s", ref.key, exc)
            return
        if written:
            ctx.metrics.secret_writes.inc()
            await ctx.events.record(
                _involved(ref),
                "Normal",
                "ConnectionSecretUpdated",
                f"Secret {name} holds the connection details of the cluster",
            )
