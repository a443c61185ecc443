"""Taking list sweeps: the pages of one group, coalesced across its batches and reused.

A sweep is ListRayJob pages of a `submitTime` window that covers the refs asked about,
or every ListRayCluster page. A group watched by a set (`watch`) lists the set's window
too (from its oldest accepted submit time, or the whole history, to the far future), and
every sweep of the group is handed to its watchers: the set and the refs share one sweep.
Batches of one group that arrive while a sweep runs wait and are served by the next one;
a sweep started within `reuse_seconds` serves later batches as if it were theirs. What
the items mean for each ref is the caller's business
(`sweeps.ListPollStrategy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rayref.api.kinds import JOB_KIND
from rayref.emr import endpoints
from rayref.emr.errors import EmrError
from rayref.emr.models import RayJobPage
from rayref.kube.client import KubeError
from rayref.mirror.times import epoch_ms
from rayref.polling import listings
from rayref.polling.cloud import EmrReader
from rayref.polling.listings import ClusterListing, GroupKey, JobListing
from rayref.polling.refs import RefKey, RefSnapshot

# KubeError: the credentials Secret could not be read (API server unavailable).
SweepError = EmrError | endpoints.InvalidIdentifierError | KubeError
# The list item (None: absent) of every ref a sweep covers, when it was taken, and the
# error that cut it short.
Found = tuple[dict[RefKey, "listings.Summary | None"], float, "SweepError | None"]
ClientFor = Callable[[GroupKey, RefSnapshot], Awaitable[EmrReader]]

T = TypeVar("T")
# Job pages requested at once, once the first page has told how many there are.
PARALLEL_PAGES = 4
# A sweep started this recently serves later batches of its group as if it were theirs
# (the next check is then timed from the sweep, so refs are not checked less often).
REUSE_SECONDS = 10.0
# The upper end of a watched group's window: 3000-01-01, so that jobs submitted by a
# remote clock ahead of the operator's are listed too.
FAR_FUTURE_MS = 32_503_680_000_000

Listing = JobListing | ClusterListing


class ListingWatcher(Protocol):
    """A set that wants every sweep of a group, and the window it needs listed."""

    def oldest_submit_ms(self) -> int | None:
        """The oldest submitTime the set accepts (ms); None: the whole history."""
        ...

    def fault(self, step: str, error: Exception) -> None:
        """One of the calls above raised: the watcher says so on its own object. The
        sweep goes on for the group's other refs and sets."""
        ...

    def seen(self, listing: Listing, error: SweepError | None) -> None:
        """A sweep of the group ended (cut short by `error`, when not None)."""
        ...


@dataclass
class _Waiting:
    """A batch waiting for its group's sweep; `result` is set by whoever sweeps."""

    refs: list[RefSnapshot]
    started: float
    result: Found | None = None


class GroupLister:
    def __init__(
        self,
        client_for: ClientFor,
        *,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = listings.PAGE_SIZE,
        reuse_seconds: float = REUSE_SECONDS,
    ) -> None:
        self._client_for = client_for
        self._clock = clock
        self._page_size = page_size
        self._reuse_seconds = reuse_seconds
        self._locks: dict[GroupKey, asyncio.Lock] = {}
        self._queues: dict[GroupKey, list[_Waiting]] = {}
        self._job_listings: dict[GroupKey, list[JobListing]] = {}
        self._cluster_listings: dict[GroupKey, ClusterListing] = {}
        self._latest: dict[GroupKey, Listing] = {}
        self._watchers: dict[GroupKey, dict[str, ListingWatcher]] = {}
        self.sweeps = 0

    # -- sets watching a group ------------------------------------------------------

    def watch(self, key: GroupKey, name: str, watcher: ListingWatcher) -> None:
        self._watchers.setdefault(key, {})[name] = watcher

    def unwatch(self, key: GroupKey, name: str) -> None:
        watchers = self._watchers.get(key, {})
        watchers.pop(name, None)
        if not watchers:
            self._watchers.pop(key, None)

    def _watched_low(self, key: GroupKey) -> int | None:
        """The low end of the watchers' window; None: the group is not watched."""
        watchers = self._watchers.get(key)
        if not watchers:
            return None
        lows = [
            _contained(watcher, "window", watcher.oldest_submit_ms) for watcher in watchers.values()
        ]
        # A watcher whose window cannot be computed is not served (it was told why);
        # the sweep covers the others'.
        served = [low or 0 for low in lows if not isinstance(low, _Faulted)]
        return min(served) if served else None

    def _serves_watchers(self, key: GroupKey, listing: Listing) -> bool:
        if isinstance(listing, ClusterListing):
            return listing.complete
        low = self._watched_low(key) or 0
        return listing.complete and listing.low <= low and listing.high >= FAR_FUTURE_MS

    def _notify(self, key: GroupKey, error: SweepError | None) -> None:
        listing = self._latest.get(key)
        if listing is None:
            return
        for watcher in list(self._watchers.get(key, {}).values()):
            _contained(watcher, "seen", functools.partial(watcher.seen, listing, error))

    def _forget_stale(self) -> None:
        """Drop the listings no batch can reuse any more. Each holds every item of its
        window (a workspace's whole history, for finished jobs), and a group swept
        every few minutes kept its last one all that time: at 110,000 refs, a large
        part of the operator's memory. The latest listing of a group that sets watch
        is kept for them."""
        cutoff = self._clock() - 2 * self._reuse_seconds
        for key, held in list(self._job_listings.items()):
            kept = [listing for listing in held if listing.last_page_at >= cutoff]
            if kept:
                self._job_listings[key] = kept
            else:
                del self._job_listings[key]
        for key, cluster_listing in list(self._cluster_listings.items()):
            if cluster_listing.last_page_at < cutoff:
                del self._cluster_listings[key]
        for key, latest in list(self._latest.items()):
            if key not in self._watchers and latest.last_page_at < cutoff:
                del self._latest[key]

    async def discover(
        self, key: GroupKey, ref: RefSnapshot, started: float, *, newer_than: float
    ) -> tuple[Listing, SweepError | None]:
        """The group's sweep for a watcher: the latest one when it is fresh, covers the
        watchers' window and was taken after `newer_than` (the one the watcher already
        has never counts), else a new one (handed to every watcher). `ref` stands for the
        watcher where a client is built (namespace, credentials)."""
        self._forget_stale()
        async with self._locks.setdefault(key, asyncio.Lock()):
            latest = self._latest.get(key)
            if (
                latest is not None
                and latest.taken_at > newer_than
                and latest.taken_at >= started - self._reuse_seconds
                and self._serves_watchers(key, latest)
            ):
                return latest, None
            before = self.sweeps
            error: SweepError | None = None
            try:
                if key.kind == JOB_KIND:
                    listing = JobListing(
                        low=self._watched_low(key) or 0, high=FAR_FUTURE_MS, taken_at=self._clock()
                    )
                    self._start_job_listing(key, listing)
                    await self._page_jobs(key, ref, listing)
                else:
                    await self._sweep_clusters(key, [ref], started, {})
            except (EmrError, endpoints.InvalidIdentifierError, KubeError) as exc:
                error = exc
            if self.sweeps != before:
                self._notify(key, error)
            return self._latest[key], error

    async def lookup(self, key: GroupKey, refs: list[RefSnapshot], started: float) -> Found:
        """The sweep result for `refs`, coalesced with other batches of the group.

        Batches of a group queue up; whoever holds the group's lock sweeps for every
        batch queued so far (one window for all of them) and hands each its part.
        While one sweep runs, the batches arriving meanwhile (an operator start
        feeds thousands of refs in a trickle) wait and are served by the next one.
        """
        self._forget_stale()
        waiting = _Waiting(refs, started)
        queue = self._queues.setdefault(key, [])
        queue.append(waiting)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if waiting.result is None:
                served = self._queues.pop(key, [])
                try:
                    found, taken_at, error = await self._sweep(
                        key,
                        [ref for item in served for ref in item.refs],
                        min(item.started for item in served),
                    )
                except BaseException:
                    # cancelled or crashed mid-sweep: the next lock holder serves the others
                    others = [item for item in served if item is not waiting]
                    self._queues.setdefault(key, []).extend(others)
                    raise
                for item in served:
                    item.result = (
                        {ref.key: found[ref.key] for ref in item.refs if ref.key in found},
                        taken_at,
                        error,
                    )
        assert waiting.result is not None
        return waiting.result

    async def _sweep(self, key: GroupKey, refs: list[RefSnapshot], started: float) -> Found:
        """The list item (None: absent) of every ref a sweep covers, when the sweep was
        taken, and the error that cut it short."""
        found: dict[RefKey, listings.Summary | None] = {}
        before = self.sweeps
        error: SweepError | None = None
        try:
            if key.kind == JOB_KIND:
                taken_at = await self._sweep_jobs(key, refs, started, found)
            else:
                taken_at = await self._sweep_clusters(key, refs, started, found)
        except (EmrError, endpoints.InvalidIdentifierError, KubeError) as exc:
            taken_at, error = self._clock(), exc
        if self.sweeps != before:
            self._notify(key, error)
        return found, taken_at, error

    def _fresh_job_listings(self, key: GroupKey, started: float) -> list[JobListing]:
        """The group's job listings with a page recent enough to serve `started`."""
        fresh = [
            listing
            for listing in self._job_listings.get(key, [])
            if listing.last_page_at >= started - self._reuse_seconds
        ]
        self._job_listings[key] = fresh
        return fresh

    def _reusable(
        self, listings_: list[JobListing], ref: RefSnapshot, submit: int, started: float
    ) -> tuple[JobListing, float] | None:
        """The newest listing whose page for `ref` arrived within the reuse window."""
        remote_id = listings.remote_id(ref)
        for listing in reversed(listings_):
            if listing.covers(submit):
                at = listing.read_at(remote_id, submit)
                if at >= started - self._reuse_seconds:
                    return listing, at
        return None

    async def _sweep_jobs(
        self,
        key: GroupKey,
        refs: list[RefSnapshot],
        started: float,
        found: dict[RefKey, listings.Summary | None],
    ) -> float:
        uncovered: list[tuple[RefSnapshot, int]] = []
        taken_at = self._clock()
        reusable = self._fresh_job_listings(key, started)
        for ref in refs:
            submit = epoch_ms(ref.status.get("submitTime"))
            assert submit is not None  # needs_read_before_listing sent the others away
            reused = self._reusable(reusable, ref, submit, started)
            if reused is None:
                uncovered.append((ref, submit))
            else:
                found[ref.key] = reused[0].items.get(listings.remote_id(ref))
                taken_at = min(taken_at, reused[1])
        if not uncovered:
            return taken_at
        low, high = listings.job_window(s for _, s in uncovered)
        watched_low = self._watched_low(key)
        if watched_low is not None:  # a set lists this workspace too: one sweep for both
            low, high = min(low, watched_low), FAR_FUTURE_MS
        listing = JobListing(low=low, high=high, taken_at=self._clock())
        self._start_job_listing(key, listing)
        try:
            await self._page_jobs(key, uncovered[0][0], listing)
        finally:
            for ref, submit in uncovered:
                if listing.covers(submit):
                    found[ref.key] = listing.items.get(listings.remote_id(ref))
        return min(taken_at, listing.taken_at)

    def _start_job_listing(self, key: GroupKey, listing: JobListing) -> None:
        self._job_listings.setdefault(key, []).append(listing)
        self._latest[key] = listing
        self.sweeps += 1

    async def _page_jobs(self, key: GroupKey, ref: RefSnapshot, listing: JobListing) -> None:
        """The window's pages: the first alone, then (its totalCount known) up to
        PARALLEL_PAGES at a time. One after another, a window of a hundred pages took
        many seconds of round trips while the budget had room, and every change in it
        waited that much longer to show; the budget still paces each request."""
        client = await self._client_for(key, ref)

        async def fetch(page_num: int) -> tuple[RayJobPage, float]:
            page = await client.list_ray_jobs(
                key.workspace_id,
                page_num=page_num,
                page_size=self._page_size,
                submit_time=(listing.low, listing.high),
            )
            return page, self._clock()

        page_num, total = 1, None
        while page_num <= listings.MAX_PAGES:
            count = 1
            if total is not None:  # only the pages the total says there are
                last_page = min(listings.MAX_PAGES, -(-total // self._page_size))
                count = max(1, min(PARALLEL_PAGES, last_page - page_num + 1))
            for page, arrived in await _all_or_none([fetch(page_num + i) for i in range(count)]):
                total = page.total_count if page.total_count is not None else total
                last = len(page.ray_jobs) < self._page_size or (
                    total is not None and page_num * self._page_size >= total
                )
                listing.add_page(list(page.ray_jobs), last=last, at=arrived)
                if last:
                    return
                page_num += 1

    async def _sweep_clusters(
        self,
        key: GroupKey,
        refs: list[RefSnapshot],
        started: float,
        found: dict[RefKey, listings.Summary | None],
    ) -> float:
        listing = self._cluster_listings.get(key)
        if (
            listing is None
            or not listing.complete
            or (listing.taken_at < started - self._reuse_seconds)
        ):
            listing = ClusterListing(taken_at=self._clock())
            self._cluster_listings[key] = self._latest[key] = listing
            self.sweeps += 1
            try:
                client = await self._client_for(key, refs[0])
                for page_num in range(1, listings.MAX_PAGES + 1):
                    page = await client.list_ray_clusters(
                        key.workspace_id, page_num=page_num, page_size=self._page_size
                    )
                    last = len(page.ray_clusters) < self._page_size
                    listing.add_page(list(page.ray_clusters), last=last, at=self._clock())
                    if last:
                        break
            finally:
                for ref in refs:
                    cluster_id = listings.remote_id(ref)
                    if cluster_id in listing.items or listing.complete:
                        found[ref.key] = listing.items.get(cluster_id)
            return listing.taken_at
        for ref in refs:
            found[ref.key] = listing.items.get(listings.remote_id(ref))
        return listing.taken_at


class _Faulted:
    """What `_contained` returns for a watcher's call that raised."""


_FAULTED = _Faulted()


def _contained(watcher: ListingWatcher, step: str, call: Callable[[], T]) -> T | _Faulted:
    """A watcher's call, its exception kept from the sweep: other tenants' refs and sets
    are served by the same sweep."""
    try:
        return call()
    except Exception as error:
        # A watcher's report of its own fault cannot stop a sweep either.
        with contextlib.suppress(Exception):
            watcher.fault(step, error)
        return _FAULTED


async def _all_or_none(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """The results in order; on the first error the other calls are cancelled and the
    error itself (not a group of errors) is raised, as a single call would."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
