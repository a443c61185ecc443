"""Shard members on a virtual clock: slots spread, a dead replica's slots taken after
its lease, a partitioned one exits before anyone takes its slots, a graceful stop hands
over at once, a joining replica gets its share only after the giver's polls drained.
The invariant checked in every test: no slot is ever held by two replicas at once."""

from __future__ import annotations

import asyncio

import pytest

from rayref.election.lease import LeaseRecord
from rayref.sharding.leases import MEMBER
from tests.unit.election.fakes import FakeClock
from tests.unit.sharding.fakes import (
    TIMING,
    FakeLeaseSet,
    Holding,
    Replica,
    overlaps,
    replica,
)

RETRY = TIMING.retry_period


def _start(replicas: list[Replica]) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(r.member.run()) for r in replicas]


def _held(replicas: list[Replica]) -> dict[str, list[int]]:
    return {r.name: sorted(r.ownership.held) for r in replicas}


def _kill(task: asyncio.Task[None], r: Replica) -> None:
    """SIGKILL: the loop stops where it is, nothing is released."""
    task.cancel()
    r.ownership.drop_all()


@pytest.fixture
def world() -> tuple[FakeClock, FakeLeaseSet, list[Holding]]:
    clock = FakeClock()
    return clock, FakeLeaseSet(clock, slots=3), []


async def test_three_replicas_starting_together_each_hold_one_slot(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    replicas = [replica(n, leases, log) for n in ("a", "b", "c")]
    tasks = _start(replicas)
    await clock.run_until(60)
    held = _held(replicas)
    assert sorted(s for slots in held.values() for s in slots) == [0, 1, 2], held
    assert all(len(slots) == 1 for slots in held.values()), held
    assert overlaps(log) == []
    # no slot changed hands while they started: each was taken once
    assert len(log) == 3, log
    for task in tasks:
        task.cancel()


async def test_one_replica_alone_holds_every_slot(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    alone = replica("a", leases, log)
    task = asyncio.ensure_future(alone.member.run())
    await clock.run_until(10)
    assert alone.ownership.held == {0, 1, 2}
    task.cancel()


async def test_a_killed_replicas_slot_is_taken_after_its_lease_and_not_before(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    replicas = [replica(n, leases, log) for n in ("a", "b", "c")]
    tasks = _start(replicas)
    await clock.run_until(60)
    victim_slot = next(iter(replicas[2].ownership.held))
    killed_at = clock.now()
    _kill(tasks[2], replicas[2])
    await clock.run_until(killed_at + TIMING.lease_duration + 3 * RETRY)
    taken = [h for h in log if h.slot == victim_slot and h.start > killed_at]
    assert len(taken) == 1, log
    # not before the victim's last renewal plus the lease, and soon after
    assert killed_at + TIMING.lease_duration - RETRY <= taken[0].start
    assert taken[0].start <= killed_at + TIMING.lease_duration + 2 * RETRY
    assert sorted(s for r in replicas[:2] for s in r.ownership.held) == [0, 1, 2]
    assert overlaps(log) == []
    for task in tasks[:2]:
        task.cancel()


async def test_a_partitioned_replica_exits_before_anyone_takes_its_slot(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    replicas = [replica(n, leases, log) for n in ("a", "b")]
    tasks = _start(replicas)
    await clock.run_until(60)
    cut = replicas[1]
    its_slots = set(cut.ownership.held)
    assert its_slots
    cut.api.refused = True
    cut_at = clock.now()
    await clock.run_until(cut_at + TIMING.lease_duration + 4 * RETRY)
    assert len(cut.exits) == 1
    assert cut.exits[0] - cut_at <= TIMING.renew_deadline + RETRY
    assert cut.ownership.held == set()
    takeovers = [h for h in log if h.slot in its_slots and h.replica == "a" and h.start > cut_at]
    assert {h.slot for h in takeovers} == its_slots
    # the margin between the two: lease duration minus renew deadline
    assert min(h.start for h in takeovers) - cut.exits[0] >= TIMING.margin - RETRY
    assert overlaps(log) == []
    for task in tasks:
        task.cancel()


async def test_a_graceful_stop_hands_its_slots_over_within_a_retry_period(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    replicas = [replica(n, leases, log) for n in ("a", "b")]
    tasks = _start(replicas)
    await clock.run_until(60)
    leaving = replicas[1]
    its_slots = set(leaving.ownership.held)
    tasks[1].cancel()
    leaving.ownership.drop_all()
    stopped = clock.now()
    release = asyncio.ensure_future(leaving.member.release_all())
    await clock.run_until(stopped + 2 * RETRY + 1)
    assert release.done()
    assert "rayref-member-b" not in leases.stored
    taken = [h for h in log if h.slot in its_slots and h.replica == "a"]
    assert {h.slot for h in taken} == its_slots
    assert max(h.start for h in taken) - stopped <= 2 * RETRY
    assert overlaps(log) == []
    tasks[0].cancel()


async def test_a_joining_replica_gets_a_slot_once_the_givers_polls_drained(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    first = [replica(n, leases, log) for n in ("a", "b")]
    tasks = _start(first)
    await clock.run_until(60)
    giver = next(r for r in first if len(r.ownership.held) == 2)
    # a poll of each of the giver's slots is running and will take 20 s
    polls = [giver.ownership.polling(slot) for slot in giver.ownership.held]
    for poll in polls:
        poll.__enter__()
    joined_at = clock.now()
    newcomer = replica("c", leases, log)
    tasks.append(asyncio.ensure_future(newcomer.member.run()))
    await clock.run_until(joined_at + 20)
    assert newcomer.ownership.held == set()  # the giver stopped polling it, but it drains
    assert len(giver.ownership.held) == 1
    for poll in polls:
        poll.__exit__(None, None, None)
    finished = clock.now()
    await clock.run_until(finished + 3 * RETRY)
    assert len(newcomer.ownership.held) == 1
    (gained,) = [h for h in log if h.replica == "c"]
    assert gained.start >= finished
    assert sorted(s for r in [*first, newcomer] for s in r.ownership.held) == [0, 1, 2]
    assert overlaps(log) == []
    for task in tasks:
        task.cancel()


async def test_replicas_with_another_slot_count_take_nothing_while_the_others_live(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    old = replica("old", leases, log, slots=2)
    old_task = asyncio.ensure_future(old.member.run())
    await clock.run_until(10)
    assert old.ownership.held == {0, 1}
    new = replica("new", leases, log)  # 3 slots
    new_task = asyncio.ensure_future(new.member.run())
    await clock.run_until(60)
    assert new.ownership.held == set()
    _kill(old_task, old)
    await clock.run_until(60 + TIMING.lease_duration + 3 * RETRY)
    assert new.ownership.held == {0, 1, 2}
    new_task.cancel()


async def test_member_leases_of_long_gone_pods_are_deleted(
    world: tuple[FakeClock, FakeLeaseSet, list[Holding]],
) -> None:
    clock, leases, log = world
    leases.store("rayref-member-gone", MEMBER, LeaseRecord("gone-1", 15, None, None, 0), 3)
    alive = replica("a", leases, log)
    task = asyncio.ensure_future(alive.member.run())
    await clock.run_until(5 * TIMING.lease_duration)
    assert "rayref-member-gone" in leases.stored
    await clock.run_until(11 * TIMING.lease_duration)
    assert "rayref-member-gone" not in leases.stored
    assert "rayref-member-a" in leases.stored
    task.cancel()
