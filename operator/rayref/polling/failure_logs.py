"""A failed job's driver log, read once and off the poll's path: `FailureLogs`.

When a RayJobRef's status says Failed or Timeout and holds no `failureLog` yet, the poll
hands the ref to `consider` and goes on: the status with the new phase is already
written, and nothing here delays it. Workers then read the log's end (ListRayLogs,
GetRayLog, one ranged download) and write `status.failureLog` (the excerpt, or the
reason there is none) plus, with an excerpt, a second JobFailed / JobTimeout Event that
carries it.

The two cloud calls come only from budget nothing else needs: a worker waits until the
spare budget of `node_refresh.SpareBudget` (shared with node refreshes, so the two never
count the same tokens twice) grants both, so job phases and cluster states, which use
the reserve, are never queued behind log reads. The download goes to object storage,
not to the EMR API, and is not counted in the budget.

A read that fails for a while (throttled, a server error, an expired URL) is tried again
after 15 s, 60 s and 300 s, then recorded as LogUnavailable; a refused or missing log is
recorded at once. None of it touches the ref's Synced condition: the job's status was
read fine, only its log was not. The memory of the ref (`RefMemory.failure_log`) says it
was handled, so a ref is read at most once per operator run; a restarted operator reads
again only refs whose stored status has no `failureLog`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from rayref.api.kinds import JOB_KIND
from rayref.api.models import RayJobRefSpec
from rayref.emr import endpoints
from rayref.emr.errors import (
    EmrError,
    LogApiError,
    LogDownloadError,
    LogHostNotAllowedError,
)
from rayref.emr.log_download import LogReader
from rayref.emr.log_hosts import LogHosts
from rayref.emr.log_models import driver_log_path
from rayref.kube.client import KubeClient, KubeError, KubeNotFound, KubeUnavailable
from rayref.kube.events import MAX_MESSAGE, EventRecorder, InvolvedObject
from rayref.mirror import conditions as cond
from rayref.mirror.failure_log import excerpt
from rayref.mirror.job import WARNING_PHASES
from rayref.mirror.limits import clip_text
from rayref.mirror.times import rfc3339
from rayref.observability.metrics import Metrics
from rayref.polling.cloud import CloudAccess
from rayref.polling.node_refresh import NodeRefreshBudget
from rayref.polling.refs import RefSnapshot

logger = logging.getLogger("rayref.failure_logs")

LOG_READ = "LogRead"
NO_LOG_LOCATION = "NoLogLocation"
LOG_NOT_FOUND = "LogNotFound"
LOG_EMPTY = "LogEmpty"
LOG_REFUSED = "LogRefused"
LOG_HOST_NOT_ALLOWED = "LogHostNotAllowed"
LOG_UNAVAILABLE = "LogUnavailable"
INTERNAL_ERROR = "InternalError"
REASONS = (
    LOG_READ,
    NO_LOG_LOCATION,
    LOG_NOT_FOUND,
    LOG_EMPTY,
    LOG_REFUSED,
    LOG_HOST_NOT_ALLOWED,
    LOG_UNAVAILABLE,
    INTERNAL_ERROR,
)

# The end of the file that is read: ample for a traceback and the lines before it.
TAIL_BYTES = 64 * 1024
# Waits before the second, third and fourth try of a read that failed for a while.
RETRY_DELAYS = (15.0, 60.0, 300.0)
# ListRayLogs (one page for a job's few files) and GetRayLog.
CLOUD_CALLS = 2
# How often a worker asks again for spare budget.
SPARE_POLL_SECONDS = 0.5
WORKERS = 4
MESSAGE_MAX = 500


@dataclass(slots=True)
class FailureLogMemory:
    """On `RefMemory.failure_log`: the ref was handed over (and how often it was tried)."""

    attempts: int = 0
    done: bool = False


class _Transient(Exception):
    """A read that may work later."""


@dataclass(frozen=True)
class _Work:
    ref: RefSnapshot
    status: Mapping[str, Any]


def wants_log(status: Mapping[str, Any], spec: object, enabled: bool) -> bool:
    """Whether a job ref's status asks for its failure's log to be read."""
    return (
        enabled
        and isinstance(spec, RayJobRefSpec)
        and spec.failure_log_policy != "Skip"
        and status.get("phase") in WARNING_PHASES
        and status.get("failureLog") is None
    )


def failure_log_field(
    reason: str,
    message: str | None = None,
    *,
    file: str | None = None,
    text: str | None = None,
    read_time: datetime | None = None,
) -> dict[str, Any]:
    field: dict[str, Any] = {"reason": reason}
    if message:
        field["message"] = clip_text(message, MESSAGE_MAX)
    if file:
        field["file"] = clip_text(file, MESSAGE_MAX)
    if text:
        field["excerpt"] = text
    if read_time is not None:
        field["readTime"] = rfc3339(read_time)
    return field


def _relative(path: str, prefix: str) -> str:
    path = path.lstrip("/")
    return path[len(prefix) :].lstrip("/") if prefix and path.startswith(prefix) else path


def _text(data: bytes, partial: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    if partial:
        # The tail starts inside a line: drop it, every line shown is whole.
        text = text.partition("\n")[2]
    return text


class FailureLogs:
    """Reads failed jobs' logs in the background; `consider` is called after each poll."""

    def __init__(
        self,
        cloud: CloudAccess,
        kube: KubeClient,
        events: EventRecorder,
        metrics: Metrics,
        spare: NodeRefreshBudget,
        download_http: httpx.AsyncClient,
        *,
        enabled: bool = True,
        allowed_hosts: tuple[str, ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> None:
        self._cloud, self._kube, self._events, self._metrics = cloud, kube, events, metrics
        self._spare = spare
        self._http = download_http
        self.enabled = enabled
        self._allowed = allowed_hosts
        self._now, self._sleep = now, sleep
        self._retry_delays = retry_delays
        self._queue: asyncio.Queue[_Work] = asyncio.Queue()
        self._retries: set[asyncio.TimerHandle] = set()

    def consider(self, ref: RefSnapshot, status: Mapping[str, Any]) -> None:
        """Queue the ref if its status asks for the log and it was not queued before."""
        if ref.key.kind != JOB_KIND or ref.memory.failure_log is not None:
            return
        if not wants_log(status, ref.spec, self.enabled):
            return
        ref.memory.failure_log = FailureLogMemory()
        self._queue.put_nowait(_Work(ref, dict(status)))
        self._metrics.failure_logs.labels("queued").inc()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """The workers; cancelled at shutdown."""
        await asyncio.gather(*(self._worker() for _ in range(WORKERS)))

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()

    async def _worker(self) -> None:
        while True:
            work = await self._queue.get()
            try:
                await self._handle(work)
            except Exception as error:  # a bulkhead: the other refs' logs go on
                self._metrics.faults.report(JOB_KIND, work.ref.key, "failure-log", error)

    @staticmethod
    def _current(work: _Work) -> bool:
        # A queued read whose ref was deleted, or deleted and created again under its
        # name, holds a memory the scheduler forgot: it is dropped, so an old job's log
        # never lands on a new ref.
        return not work.ref.memory.forgotten

    async def _handle(self, work: _Work) -> None:
        memory = work.ref.memory.failure_log
        if memory is None or memory.done or not self._current(work):
            return  # already written, or the ref is gone
        memory.attempts += 1
        try:
            field = await self._budgeted_read(work)
        except _Transient as exc:
            if memory.attempts <= len(self._retry_delays):
                self._retry_later(work, self._retry_delays[memory.attempts - 1])
                self._metrics.failure_logs.labels("retried").inc()
                return
            field = failure_log_field(
                LOG_UNAVAILABLE, f"{exc} (tried {memory.attempts} times; not tried again)"
            )
        except Exception as error:
            shown = self._metrics.faults.report(JOB_KIND, work.ref.key, "failure-log", error)
            field = failure_log_field(INTERNAL_ERROR, f"The operator failed on this log: {shown}")
        memory.done = True
        if self._current(work):
            await self._write(work, field)

    def _retry_later(self, work: _Work, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def again() -> None:
            self._retries.discard(handle)
            self._queue.put_nowait(work)

        handle = loop.call_later(delay, again)
        self._retries.add(handle)

    async def _budgeted_read(self, work: _Work) -> dict[str, Any]:
        granted = 0
        try:
            while granted < CLOUD_CALLS:
                if self._spare.take():
                    granted += 1
                else:
                    await self._sleep(SPARE_POLL_SECONDS)
            return await self._read(work)
        finally:
            for _ in range(granted):
                self._spare.give_back()

    async def _read(self, work: _Work) -> dict[str, Any]:
        spec, status = work.ref.spec, work.status
        assert isinstance(spec, RayJobRefSpec)  # wants_log checked it
        location = status.get("logLocation") or {}
        bucket = str(location.get("bucketName") or "")
        prefix = str(location.get("path") or "").lstrip("/")
        if not bucket or not prefix:
            return failure_log_field(NO_LOG_LOCATION, "GetRayJob named no log location.")
        workspace = endpoints.validate_workspace_id(spec.workspace_id)
        submission = endpoints.validate_submission_id(spec.submission_id)
        region = self._cloud.region_of(spec)
        try:
            credentials = await self._cloud.credentials_for(work.ref.key.namespace, spec)
            client = self._cloud.log_client(credentials, region)
            files = [
                obj
                async for obj in client.iter_ray_logs(
                    workspace, submission, bucket_name=bucket, prefix=prefix
                )
                if not obj.is_dir and obj.path
            ]
            path = driver_log_path(files, submission)
            if path is None:
                return failure_log_field(
                    LOG_NOT_FOUND, f"No {submission}_driver.log under the job's log location."
                )
            url = await client.get_ray_log(workspace, submission, bucket_name=bucket, path=path)
            reader = LogReader(LogHosts.of(region, self._allowed), http_client=self._http)
            read = await reader.tail(url, TAIL_BYTES)
        except (LogApiError, LogHostNotAllowedError) as exc:
            return _refused(exc)
        except LogDownloadError as exc:
            raise _Transient(str(exc)) from None
        except EmrError as exc:
            if exc.retryable:
                raise _Transient(str(exc)) from None
            return _refused(exc)
        except KubeUnavailable as exc:
            raise _Transient(f"the credentials Secret could not be read: {exc}") from None
        shown_file = _relative(path, prefix)
        text = excerpt(_text(read.data, read.partial))
        if not text:
            return failure_log_field(LOG_EMPTY, "The driver log is empty.", file=shown_file)
        return failure_log_field(LOG_READ, file=shown_file, text=text, read_time=self._now())

    async def _write(self, work: _Work, field: dict[str, Any]) -> None:
        ref = work.ref
        key = ref.key
        self._metrics.failure_logs.labels(field["reason"]).inc()
        try:
            await self._kube.patch_status(key.kind, key.namespace, key.name, {"failureLog": field})
        except KubeNotFound:
            return
        except (KubeError, OSError, TimeoutError) as exc:
            logger.warning("failureLog of %s not written: %s", key, exc)
            return
        logger.info("%s failureLog written (%s)", key, field["reason"])
        if field["reason"] != LOG_READ:
            return
        phase = str(work.status.get("phase"))
        involved = InvolvedObject(key.kind, key.namespace, key.name, ref.uid, ref.memory)
        reason = cond.safe_reason(f"Job{phase}")
        intro = f"Driver log ({field.get('file')}), last exception first:\n"
        message = intro + event_excerpt(field["excerpt"], MAX_MESSAGE - len(intro))
        await self._events.record(involved, "Warning", reason, message)
        self._metrics.events.labels("Warning", reason).inc()


def event_excerpt(text: str, limit: int) -> str:
    """The excerpt within an Event's 1 KiB: its header (the exception and `---`) kept, the
    oldest of the last lines dropped first, so the Event still ends where the log ends."""
    lines = text.splitlines()
    head = lines[:2] if len(lines) > 2 and lines[1] == "---" else []
    body = lines[len(head) :]
    while body and len("\n".join(head + body)) > limit:
        body = body[1:]
    return "\n".join(head + body)[:limit]


def _refused(exc: EmrError) -> dict[str, Any]:
    reason = LOG_HOST_NOT_ALLOWED if isinstance(exc, LogHostNotAllowedError) else LOG_REFUSED
    hint = (
        "allow it in the operator's RAYREF_LOG_HOSTS (chart: failureLogs.allowedHosts)"
        if reason == LOG_HOST_NOT_ALLOWED
        else exc.hint
    )
    return failure_log_field(reason, f"{exc}; {hint}")
