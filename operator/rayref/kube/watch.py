"""List and watch one collection by label selector: the informer pattern, small.

A sharded replica follows only the refs of the slots it holds, each slot a label
selector of its own, started and stopped as slots come and go. kopf watches a resource
with one fixed selector for the whole run, so these watches are the operator's own:
a paged list, then a watch from the list's resourceVersion with bookmarks, picked up
again from the last version seen when the server ends it, and listed again when that
version has expired (410 Gone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from rayref.api.kinds import PLURALS
from rayref.kube.client import JsonObject, KubeClient, KubeError, KubeUnavailable
from rayref.observability.faults import describe
from rayref.observability.metrics import Metrics

logger = logging.getLogger("rayref.kube.watch")

LIST_PAGE = 500
# The server ends a watch after this long; it is started again from the last version.
WATCH_SECONDS = 300
RETRY_SECONDS = 2.0
# A watch failing again and again waits longer each time, up to this (a listing refused
# with 403 costs the API server a request every 2 s otherwise, for ever).
RETRY_MAX_SECONDS = 30.0
# A watch that has been failing this long without completing a listing is stalled: the
# readiness probe fails (docs/operating.md). Longer than a few retries of a passing fault.
STALLED_AFTER_SECONDS = 60.0
# While a watch keeps failing, one warning line this often (and the first at once).
FAILURE_LOG_SECONDS = 300.0


@dataclass
class _Progress:
    kind: str
    failing_since: float | None = None
    failures: int = 0
    logged_at: float | None = None


class WatchHealth:
    """Whether each watch makes progress, for the readiness probe and the metrics.

    A watch is stalled when it has failed since its last completed listing (or watch)
    and the first of those failures is STALLED_AFTER_SECONDS old. A slow first listing
    that has not failed is not stalled: 100,000 refs take a while to list.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._watches: dict[str, _Progress] = {}
        self.metrics: Metrics | None = None

    def started(self, name: str, kind: str) -> None:
        self._watches[name] = _Progress(kind)
        self._set_gauge(kind)

    def progressed(self, name: str) -> None:
        """A listing completed, or a watch ended normally."""
        progress = self._watches.get(name)
        if progress is None or progress.failing_since is None:
            return
        logger.warning("watch %s works again after %d failed attempts", name, progress.failures)
        progress.failing_since, progress.failures, progress.logged_at = None, 0, None
        self._set_gauge(progress.kind)

    def failed(self, name: str, error: BaseException) -> int:
        """Note a failure; returns how many in a row. Logs at most once per interval."""
        progress = self._watches.setdefault(name, _Progress(""))
        now = self._clock()
        if progress.failing_since is None:
            progress.failing_since = now
        progress.failures += 1
        if self.metrics is not None:
            self.metrics.watch_failures.labels(progress.kind).inc()
        if progress.logged_at is None or now - progress.logged_at >= FAILURE_LOG_SECONDS:
            progress.logged_at = now
            logger.warning(
                "watch %s failed (%d in a row): %s; listing again with backoff",
                name,
                progress.failures,
                describe(error),
            )
        self._set_gauge(progress.kind)
        return progress.failures

    def stopped(self, name: str) -> None:
        progress = self._watches.pop(name, None)
        if progress is not None:
            self._set_gauge(progress.kind)

    def stalled(self) -> list[str]:
        """The watches failing for STALLED_AFTER_SECONDS or more, by name."""
        now = self._clock()
        return sorted(
            name
            for name, progress in self._watches.items()
            if progress.failing_since is not None
            and now - progress.failing_since >= STALLED_AFTER_SECONDS
        )

    def _set_gauge(self, kind: str) -> None:
        if self.metrics is None or not kind:
            return
        failing = any(
            p.kind == kind and p.failing_since is not None for p in self._watches.values()
        )
        self.metrics.watch_healthy.labels(kind).set(0 if failing else 1)


# One per process: the readiness probe reads it, every informer reports to it.
WATCH_HEALTH = WatchHealth()


def kind_of(path: str) -> str:
    plural = path.rstrip("/").rsplit("/", 1)[-1]
    return next((kind for kind, name in PLURALS.items() if name == plural), plural)


def retry_delay(failures: int) -> float:
    """RETRY_SECONDS, doubled with each failure in a row, at most RETRY_MAX_SECONDS."""
    return min(RETRY_MAX_SECONDS, RETRY_SECONDS * 2.0 ** min(max(failures - 1, 0), 16))


class WatchExpired(Exception):
    """The version to watch from is gone from the server's history: list again."""


def _query(params: Mapping[str, str | int]) -> str:
    return urlencode({key: value for key, value in params.items() if value != ""})


PageHandler = Callable[[list[JsonObject], bool], Awaitable[None]]


async def list_pages(client: KubeClient, path: str, selector: str, on_page: PageHandler) -> str:
    """Hand every page of the objects matching `selector` to `on_page(items, first)`
    as it arrives (a whole listing of 100,000 refs is never in memory at once); returns
    the listing's resourceVersion."""
    token, first = "", True
    while True:
        query = _query({"labelSelector": selector, "limit": LIST_PAGE, "continue": token})
        page = await client.request("GET", f"{path}?{query}")
        await on_page(list(page.get("items") or []), first)
        first = False
        metadata = page.get("metadata") or {}
        token = str(metadata.get("continue") or "")
        if not token:
            return str(metadata.get("resourceVersion", ""))


EventHandler = Callable[[str, JsonObject], None]


async def watch_from(
    client: KubeClient, path: str, selector: str, version: str, on_event: EventHandler
) -> str:
    """Follow the collection from `version` until the server ends the watch; returns
    the last version seen. Raises WatchExpired when `version` is too old."""
    query = _query(
        {
            "labelSelector": selector,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": version,
            "timeoutSeconds": WATCH_SECONDS,
        }
    )
    async for event in client.stream(f"{path}?{query}", seconds=WATCH_SECONDS + 30):
        kind = str(event.get("type", ""))
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpired(str(obj.get("message", "")))
            raise KubeUnavailable(int(obj.get("code") or 0), "WatchError", str(obj.get("message")))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind != "BOOKMARK":
            on_event(kind, obj)
    return version


async def informer(
    client: KubeClient,
    path: str,
    selector: str,
    *,
    on_page: PageHandler,
    on_listed: Callable[[], None],
    on_event: EventHandler,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    health: WatchHealth | None = None,
) -> None:
    """List, then watch, for ever (until cancelled). Each listing comes page by page
    (`on_page`), then `on_listed`, so the caller can drop what is no longer there.
    Failures are reported to `health` (WATCH_HEALTH by default): bounded warnings, the
    metrics, and the readiness probe when they last."""
    health = WATCH_HEALTH if health is None else health
    name = f"{path}?{selector}" if selector else path
    health.started(name, kind_of(path))
    try:
        while True:
            try:
                version = await list_pages(client, path, selector, on_page)
                on_listed()
                health.progressed(name)
                while True:
                    version = await watch_from(client, path, selector, version, on_event)
            except WatchExpired:
                logger.info("watch of %s (%s) expired; listing again", path, selector)
            except Exception as error:  # a watch that ended for good would freeze its refs
                if not isinstance(error, KubeError):  # a bug: its traceback for a developer
                    logger.debug("watch %s broke", name, exc_info=True)
                await sleep(retry_delay(health.failed(name, error)))
    finally:
        health.stopped(name)
