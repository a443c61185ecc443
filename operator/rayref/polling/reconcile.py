"""One reconcile of one ref: credentials -> remote read -> pure mapping -> write on change.

Everything stateful arrives through `PollContext`; the decisions (status content,
conditions, transitions, the next delay) are the pure functions of `rayref.mirror` and
`rayref.polling.timing`. A poll that finds nothing new writes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rayref.api.models import RayClusterRefSpec, RayJobRefSpec
from rayref.api.specs import InvalidSpec, RefSpec
from rayref.emr import endpoints
from rayref.emr.credentials import Credentials
from rayref.emr.errors import CredentialsError, EmrError
from rayref.emr.models import RayCluster, RayJob
from rayref.kube.client import KubeClient, KubeError, KubeNotFound, KubeUnavailable, merge_patch
from rayref.kube.connection import ConnectionSecretConflict, ConnectionSecrets
from rayref.kube.events import EventRecorder, InvolvedObject
from rayref.mirror import limits
from rayref.mirror.cluster import cluster_status, connection_secret_data
from rayref.mirror.failure import (
    INTERNAL_ERROR,
    INVALID_SPEC,
    suspended,
    sync_failure,
    sync_failure_reason,
)
from rayref.mirror.failure_table import SECRET_FIXES, row_for
from rayref.mirror.job import job_status
from rayref.mirror.status import StatusUpdate
from rayref.observability.metrics import Metrics
from rayref.polling.cloud import CloudAccess, fingerprint
from rayref.polling.failure_logs import FailureLogs
from rayref.polling.refs import PollOutcome, RefSnapshot
from rayref.polling.timing import CRASH_RETRY_DELAY, KUBE_RETRY_DELAY, next_poll_delay

logger = logging.getLogger("rayref.poll")

# Answers to a status patch that say the status itself is unacceptable (invalid,
# too large): the same patch would fail again.
STATUS_REFUSED = frozenset({400, 413, 422})
# Failures a person fixes by editing the credentials Secret: the failure table's (kept
# under its old name).
CREDENTIALS_ERRORS = SECRET_FIXES


@dataclass
class PollContext:
    cloud: CloudAccess
    kube: KubeClient
    events: EventRecorder
    connection_secrets: ConnectionSecrets
    metrics: Metrics
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    clock: Callable[[], float] = time.monotonic
    # Reads a failed job's log after its status is written (None: never read).
    failure_logs: FailureLogs | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    """The ref's refused credentials, and when to try them on the cloud again (kept on
    the ref's memory, `RefMemory.denial`)."""

    fingerprint: str
    retry_at: float  # on PollContext.clock


def _involved(ref: RefSnapshot) -> InvolvedObject:
    return InvolvedObject(ref.key.kind, ref.key.namespace, ref.key.name, ref.uid, ref.memory)


def _removed_unreadable(patch: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return any(value is None and status.get(key) is not None for key, value in patch.items())


class Poller:
    """Reads one ref and writes its status; the scheduler's poll function."""

    def __init__(self, context: PollContext) -> None:
        self._ctx = context

    async def __call__(self, ref: RefSnapshot) -> PollOutcome:
        started = time.monotonic()
        try:
            return await self._poll(ref)
        except Exception as error:  # a bulkhead: the batch's other refs go on
            return await self._crashed(ref, error)
        finally:
            self._ctx.metrics.poll_seconds.labels(ref.key.kind).observe(time.monotonic() - started)

    async def _crashed(self, ref: RefSnapshot, error: Exception) -> PollOutcome:
        """An unforeseen error in this ref's poll: Synced=False InternalError on the ref,
        counted, logged at most once per interval, and tried again after a while."""
        message = self._ctx.metrics.faults.report(ref.key.kind, ref.key, "poll", error)
        try:
            update = sync_failure_reason(
                ref.key.kind,
                ref.status,
                INTERNAL_ERROR,
                f"The operator failed on this ref: {message}",
                generation=ref.generation,
                now=self._ctx.now(),
            )
            return await self._write(ref, update, next_delay=CRASH_RETRY_DELAY, result="error")
        except Exception as again:
            self._ctx.metrics.faults.report(ref.key.kind, ref.key, "poll-report", again)
            return PollOutcome(next_delay=CRASH_RETRY_DELAY)

    async def report_failure(self, ref: RefSnapshot, error: Exception) -> PollOutcome:
        """Record a failed read that was not this ref's own (a list sweep that should
        have vouched for it): Synced=False with the error's reason, last state kept."""
        now = self._ctx.now()
        update = sync_failure(ref.key.kind, ref.status, error, generation=ref.generation, now=now)
        delay = next_poll_delay(ref.key.kind, update.status, ref.interval, error=error, now=now)
        return await self._write(ref, update, next_delay=delay, result="listed-failed")

    async def _poll(self, ref: RefSnapshot) -> PollOutcome:
        spec, now = ref.spec, self._ctx.now()
        if isinstance(spec, InvalidSpec):
            # The CRD should have refused it; nothing to read until the spec changes.
            update = sync_failure_reason(
                ref.key.kind,
                ref.status,
                INVALID_SPEC,
                spec.message,
                generation=ref.generation,
                now=now,
            )
            return await self._write(ref, update, next_delay=None, result="error")
        if spec.suspend:
            update = suspended(ref.key.kind, ref.status, generation=ref.generation, now=now)
            return await self._write(ref, update, next_delay=None, result="suspended")
        try:
            credentials = await self._ctx.cloud.credentials_for(ref.key.namespace, spec)
        except KubeUnavailable as exc:
            # The API server cannot tell us the credentials; nothing to conclude about
            # the ref, and nothing could be written anyway.
            logger.debug("%s: credentials Secret unreadable (%s); retrying", ref.key, exc)
            self._ctx.metrics.polls.labels(ref.key.kind, "kube-unavailable").inc()
            return PollOutcome(next_delay=KUBE_RETRY_DELAY)
        except CredentialsError as exc:
            return await self._failed(ref, spec, exc, None)
        if self._still_denied(ref, credentials):
            # Same refused key as before: wait for the Secret to change (checked every
            # interval, from the cached Secret read) or for the slow retry.
            self._ctx.metrics.polls.labels(ref.key.kind, "awaiting-credentials").inc()
            return PollOutcome(next_delay=ref.interval)
        try:
            remote = await self._read_remote(ref.key.namespace, spec, credentials)
        except (EmrError, endpoints.InvalidIdentifierError) as exc:
            return await self._failed(ref, spec, exc, credentials)
        ref.memory.denial = None
        if isinstance(remote, RayJob):
            update = job_status(remote, ref.status, generation=ref.generation, now=now)
        else:
            update = cluster_status(remote, ref.status, generation=ref.generation, now=now)
            await self._connection_secret(ref, remote)
        delay = next_poll_delay(ref.key.kind, update.status, ref.interval, now=now)
        outcome = await self._write(ref, update, next_delay=delay, result="ok")
        if self._ctx.failure_logs is not None and not outcome.gone:
            # After the write: the new phase is out before any log is read.
            self._ctx.failure_logs.consider(ref, update.status)
        return outcome

    async def _failed(
        self, ref: RefSnapshot, spec: RefSpec, error: Exception, credentials: Credentials | None
    ) -> PollOutcome:
        now = self._ctx.now()
        update = sync_failure(ref.key.kind, ref.status, error, generation=ref.generation, now=now)
        delay = next_poll_delay(ref.key.kind, update.status, ref.interval, error=error, now=now)
        if spec.credentials_secret_ref is not None and row_for(error).fixed_by_secret:
            # A person fixes this by editing the Secret: look again every interval, but
            # call the cloud with the same refused key only at the failure's slow pace.
            if credentials is not None and delay is not None:
                ref.memory.denial = Denial(fingerprint(credentials), self._ctx.clock() + delay)
            delay = ref.interval
        return await self._write(ref, update, next_delay=delay, result="error")

    def _still_denied(self, ref: RefSnapshot, credentials: Credentials) -> bool:
        denial = ref.memory.denial
        return (
            denial is not None
            and denial.fingerprint == fingerprint(credentials)
            and self._ctx.clock() < denial.retry_at
        )

    async def _read_remote(
        self, namespace: str, spec: RefSpec, credentials: Credentials
    ) -> RayJob | RayCluster:
        cloud = self._ctx.cloud
        client = cloud.client(credentials, cloud.region_of(spec))
        # The IDs end up in a URL path: checked again here, not only by the CRD.
        workspace = endpoints.validate_workspace_id(spec.workspace_id)
        if isinstance(spec, RayJobRefSpec):
            submission = endpoints.validate_submission_id(spec.submission_id)
            return await client.get_ray_job(workspace, submission)
        cluster = endpoints.validate_cluster_id(spec.cluster_id)
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
                ctx.metrics.synced(ref.memory)
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
        if _removed_unreadable(patch, update.status) and next_delay is not None:
            # The write removed unreadable fields that the new status sets (a merge patch
            # cannot replace an object whole): the next poll writes them, soon.
            next_delay = min(next_delay, KUBE_RETRY_DELAY)
        if result == "ok":
            ctx.metrics.synced(ref.memory)
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
        spec = ref.spec
        if not isinstance(spec, RayClusterRefSpec) or spec.connection_secret_ref is None:
            return
        name = spec.connection_secret_ref.name
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
                memory=ref.memory,
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
