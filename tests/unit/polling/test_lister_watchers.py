"""Sets watching a group (GroupLister.watch / discover): one sweep serves refs and sets."""

from __future__ import annotations

import asyncio
import gc
import weakref
from dataclasses import replace
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.api.models import RayJobRefSpec
from rayref.emr.credentials import Credentials
from rayref.polling.cloud import EmrReader
from rayref.polling.lister import FAR_FUTURE_MS, PARALLEL_PAGES, GroupLister, Listing, SweepError
from rayref.polling.listings import GroupKey, JobListing
from rayref.polling.refs import RefKey, RefSnapshot
from tests.unit.polling.fakes import FakeClock, FakeEmr, FakeEmrClient

KEY = GroupKey(JOB_KIND, "cn-hangzhou", ("ns", "creds"), "w-abc")
SPEC = RayJobRefSpec(workspace_id="w-abc", submission_id="rj-1")


class Watcher:
    def __init__(self, oldest: int | None) -> None:
        self.oldest = oldest
        self.seen_listings: list[tuple[Listing, SweepError | None]] = []
        self.faults: list[tuple[str, str]] = []

    def oldest_submit_ms(self) -> int | None:
        return self.oldest

    def seen(self, listing: Listing, error: SweepError | None) -> None:
        self.seen_listings.append((listing, error))

    def fault(self, step: str, error: Exception) -> None:
        self.faults.append((step, type(error).__name__))


def lister(
    emr: FakeEmr,
    clock: FakeClock,
    client: type[FakeEmrClient] = FakeEmrClient,
    *,
    page_size: int = 10,
    **options: Any,
) -> GroupLister:
    async def client_for(key: GroupKey, ref: RefSnapshot) -> EmrReader:
        return client(emr, Credentials("AK", "secret"))

    return GroupLister(client_for, clock=clock, page_size=page_size, **options)


def snapshot(name: str, submit_ms: int) -> RefSnapshot:
    status = {"submitTime": f"1970-01-01T00:00:{submit_ms // 1000:02d}Z"}
    return RefSnapshot(RefKey(JOB_KIND, "ns", name), f"uid-{name}", 1, SPEC, status, "1")


def jobs(emr: FakeEmr, count: int) -> None:
    for i in range(count):
        emr.add_job(f"rj-{i}", submitTime=(i + 1) * 1000, name=f"job-{i}")


async def test_a_set_lists_its_whole_window_and_reuses_a_fresh_sweep_only_once() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 25)
    groups = lister(emr, clock)
    watcher = Watcher(oldest=None)
    groups.watch(KEY, "set", watcher)
    listing, error = await groups.discover(KEY, snapshot("set", 0), clock(), newer_than=0.0)
    assert error is None and isinstance(listing, JobListing) and listing.complete
    assert len(listing.items) == 25 and emr.count("ListRayJob") == 3
    assert emr.calls[0].submit_time == (0, FAR_FUTURE_MS)
    assert watcher.seen_listings == [(listing, None)]
    # Another set's call a second later reuses it; the set that has it gets a new one.
    clock.advance(1)
    again, _ = await groups.discover(KEY, snapshot("set", 0), clock(), newer_than=0.0)
    assert again is listing and emr.count("ListRayJob") == 3
    fresh, _ = await groups.discover(KEY, snapshot("set", 0), clock(), newer_than=listing.taken_at)
    assert fresh is not listing and emr.count("ListRayJob") == 6


async def test_a_watched_groups_ref_sweep_covers_the_set_and_is_handed_to_it() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 25)
    groups = lister(emr, clock)
    watcher = Watcher(oldest=5000)
    groups.watch(KEY, "set", watcher)
    found, _, error = await groups.lookup(KEY, [snapshot("r", 20_000)], clock())
    assert error is None and set(found) == {RefKey(JOB_KIND, "ns", "r")}
    # The window ran from the set's oldest submit time, not the ref's.
    assert emr.calls[0].submit_time == (5000, FAR_FUTURE_MS)
    ((listing, seen_error),) = watcher.seen_listings
    assert seen_error is None and len(listing.items) == 21
    groups.unwatch(KEY, "set")
    emr.reset_calls()
    clock.advance(60)
    await groups.lookup(KEY, [snapshot("r", 20_000)], clock())
    assert emr.calls[0].submit_time == (20_000, 20_000)


async def test_a_sweep_longer_than_the_reuse_window_serves_later_batches_by_page() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 50)  # submitted at 1 s .. 50 s, listed newest first, 5 a page

    class SlowClient(FakeEmrClient):
        async def list_ray_jobs(self, *args: Any, **kwargs: Any) -> Any:
            clock.advance(3)  # every page takes 3 s: the whole window 30 s
            return await super().list_ray_jobs(*args, **kwargs)

    groups = lister(emr, clock, SlowClient, page_size=5, reuse_seconds=10)
    start = clock()
    await groups.lookup(KEY, [snapshot("a", 1000), snapshot("b", 50_000)], start)
    assert emr.count("ListRayJob") == 10 and clock() == start + 30
    # A batch that fell due 25 s into that sweep: the oldest job's page came at 30 s and
    # serves it; the newest job's page came at 3 s, too old, so only its window is listed.
    oldest, newest = job_ref("rj-0", 1000), job_ref("rj-49", 50_000)
    found, taken_at, error = await groups.lookup(KEY, [oldest, newest], start + 25)
    assert error is None
    served = {key: getattr(item, "submission_id", None) for key, item in found.items()}
    assert served == {oldest.key: "rj-0", newest.key: "rj-49"}
    assert emr.count("ListRayJob") == 11
    assert emr.calls[-1].submit_time == (50_000, 50_000)
    # the batch is as old as the oldest page that served it
    assert taken_at == start + 30


def job_ref(submission_id: str, submit_ms: int) -> RefSnapshot:
    spec = RayJobRefSpec(workspace_id="w-abc", submission_id=submission_id)
    return replace(snapshot(submission_id, submit_ms), spec=spec)


async def test_a_listing_no_batch_can_reuse_is_not_kept() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 25)
    groups = lister(emr, clock)
    watcher = Watcher(oldest=None)
    groups.watch(KEY, "set", watcher)
    listing, _ = await groups.discover(KEY, snapshot("set", 0), clock(), newer_than=0.0)
    kept = weakref.ref(listing)
    del listing, watcher.seen_listings[:]
    groups.unwatch(KEY, "set")
    other = GroupKey(JOB_KIND, "cn-hangzhou", ("ns", "creds"), "w-other")
    # still reusable a moment later, so still kept
    clock.advance(5)
    await groups.lookup(other, [snapshot("r", 20_000)], clock())
    gc.collect()
    assert kept() is not None
    # once no batch could reuse it, the next sweep of any group lets it go
    clock.advance(60)
    await groups.lookup(other, [snapshot("r", 20_000)], clock())
    gc.collect()
    assert kept() is None


async def test_after_the_first_page_a_window_is_read_several_pages_at_a_time() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 50)  # 10 pages of 5
    in_flight, most = 0, 0

    class CountingClient(FakeEmrClient):
        async def list_ray_jobs(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().list_ray_jobs(*args, **kwargs)

    groups = lister(emr, clock, CountingClient, page_size=5)
    refs = [job_ref("rj-0", 1000), job_ref("rj-49", 50_000)]
    found, _, error = await groups.lookup(KEY, refs, clock())
    assert error is None and {getattr(i, "submission_id", None) for i in found.values()} == {
        "rj-0",
        "rj-49",
    }
    # exactly the pages there are, never more than PARALLEL_PAGES at once
    assert emr.count("ListRayJob") == 10
    assert most == PARALLEL_PAGES


class BrokenWatcher(Watcher):
    """A set whose window cannot be computed and whose hand-over raises."""

    def oldest_submit_ms(self) -> int | None:
        raise OverflowError("date value out of range")

    def seen(self, listing: Listing, error: SweepError | None) -> None:
        raise RuntimeError("cannot take it")


async def test_a_watcher_that_raises_is_told_and_the_sweep_serves_the_refs_and_other_sets() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 25)
    groups = lister(emr, clock)
    broken, healthy = BrokenWatcher(oldest=None), Watcher(oldest=5000)
    groups.watch(KEY, "broken", broken)
    groups.watch(KEY, "healthy", healthy)
    ref = job_ref("rj-19", 20_000)
    found, _, error = await groups.lookup(KEY, [ref], clock())
    assert error is None and getattr(found[ref.key], "submission_id", None) == "rj-19"
    # the healthy set's window, not the whole history the broken one cannot say
    assert emr.calls[0].submit_time == (5000, FAR_FUTURE_MS)
    assert len(healthy.seen_listings) == 1
    assert broken.faults == [("window", "OverflowError"), ("seen", "RuntimeError")]


async def test_a_group_whose_only_watcher_raises_is_swept_for_its_refs_alone() -> None:
    emr, clock = FakeEmr(), FakeClock()
    jobs(emr, 25)
    groups = lister(emr, clock)
    groups.watch(KEY, "broken", BrokenWatcher(oldest=None))
    ref = job_ref("rj-19", 20_000)
    found, _, error = await groups.lookup(KEY, [ref], clock())
    assert error is None and getattr(found[ref.key], "submission_id", None) == "rj-19"
    assert emr.calls[0].submit_time == (20_000, 20_000)
