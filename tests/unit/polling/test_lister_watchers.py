"""Sets watching a group (GroupLister.watch / discover): one sweep serves refs and sets."""

from __future__ import annotations

from rayref.api.kinds import JOB_KIND
from rayref.api.models import RayJobRefSpec
from rayref.emr.credentials import Credentials
from rayref.polling.cloud import EmrReader
from rayref.polling.lister import FAR_FUTURE_MS, GroupLister, Listing, SweepError
from rayref.polling.listings import GroupKey, JobListing
from rayref.polling.refs import RefKey, RefSnapshot
from tests.unit.polling.fakes import FakeClock, FakeEmr, FakeEmrClient

KEY = GroupKey(JOB_KIND, "cn-hangzhou", ("ns", "creds"), "w-abc")
SPEC = RayJobRefSpec(workspace_id="w-abc", submission_id="rj-1")


class Watcher:
    def __init__(self, oldest: int | None) -> None:
        self.oldest = oldest
        self.seen_listings: list[tuple[Listing, SweepError | None]] = []

    def oldest_submit_ms(self) -> int | None:
        return self.oldest

    def seen(self, listing: Listing, error: SweepError | None) -> None:
        self.seen_listings.append((listing, error))


def lister(emr: FakeEmr, clock: FakeClock) -> GroupLister:
    async def client_for(key: GroupKey, ref: RefSnapshot) -> EmrReader:
        return FakeEmrClient(emr, Credentials("AK", "secret"))

    return GroupLister(client_for, clock=clock, page_size=10)


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
