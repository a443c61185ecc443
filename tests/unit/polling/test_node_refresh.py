"""Node refreshes take only spare budget: with the bucket drained by other reads they
wait, jobs and cluster states do not; the oldest node lists go first; a changed cluster
is read at once whatever the budget."""

from __future__ import annotations

import asyncio

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr.budget import RequestBudget
from rayref.polling.node_refresh import SpareBudget
from rayref.polling.refs import RefSnapshot
from tests.support.clock import ManualClock
from tests.unit.polling.fakes import World
from tests.unit.polling.test_sweeps import INTERVAL, read_clusters, read_jobs, sweep


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _budget(
    tokens: float, *, burst: int = 10, rate: float = 1.0
) -> tuple[RequestBudget, ManualClock]:
    clock = ManualClock()
    budget = RequestBudget(rate, burst, clock=clock, sleep=_no_sleep)
    budget._tokens = tokens  # a bucket other reads have drawn down to this
    return budget, clock


def test_spare_budget_grants_beyond_the_reserve_and_counts_what_it_granted() -> None:
    budget, _ = _budget(8.0)  # reserve 5 of a burst of 10: 3 to spare
    spare = SpareBudget(budget)
    assert [spare.take() for _ in range(5)] == [True, True, True, False, False]
    assert (spare.granted, spare.deferred, spare.outstanding) == (3, 2, 3)
    spare.give_back()
    assert spare.take() is True


def test_spare_budget_refills_with_the_bucket() -> None:
    budget, clock = _budget(5.0)
    spare = SpareBudget(budget)
    assert spare.take() is False
    clock.t = 2.0  # two tokens later
    assert spare.take() is True


@pytest.fixture
def world() -> World:
    return World()


async def test_node_refreshes_wait_for_spare_budget_and_states_do_not(world: World) -> None:
    clusters = await read_clusters(world, 4)
    budget, clock = _budget(5.0)  # nothing beyond the reserve
    spare = SpareBudget(budget)
    strategy = world.sweeps(node_budget=spare)
    world.clock.advance(INTERVAL)

    outcomes, clusters = await sweep(world, strategy, clusters)

    # The state came with the list; the nodes wait, and nothing is written.
    assert world.emr.counts() == {"ListRayCluster": 1}
    assert spare.deferred == 4
    assert all(o.next_delay is not None for o in outcomes.values())
    assert all(len(world.kube.writes_of(ref.key)) == 1 for ref in clusters)

    # A changed cluster is read at once, budget or not (its Get shows the nodes too).
    world.emr.clusters["ray-cl0"]["state"] = "Stopping"
    world.clock.advance(INTERVAL)
    _, clusters = await sweep(world, strategy, clusters)
    assert world.emr.count("GetRayCluster") == 1
    assert len(world.kube.writes_of(clusters[0].key)) == 2

    # Budget to spare for two: the two oldest node lists are read.
    clock.t = 2.0
    world.emr.reset_calls()
    world.clock.advance(INTERVAL)
    _, clusters = await sweep(world, strategy, clusters[1:])
    assert world.emr.count("GetRayCluster") == 2
    assert spare.outstanding == 0  # given back after the reads


async def test_oldest_node_lists_are_refreshed_first(world: World) -> None:
    clusters = await read_clusters(world, 3)
    budget, _ = _budget(6.0)
    strategy = world.sweeps(node_budget=SpareBudget(budget))
    read: list[str] = []
    for _ in range(3):
        budget._tokens = 6.0  # other reads leave one token to spare each round
        world.emr.reset_calls()
        world.clock.advance(INTERVAL)
        _, clusters = await sweep(world, strategy, clusters)
        read += [str(c.object_id) for c in world.emr.calls if c.operation == "GetRayCluster"]
    # each round the one not refreshed for longest: all three, once each
    assert sorted(read) == ["ray-cl0", "ray-cl1", "ray-cl2"]


async def test_jobs_never_wait_for_node_refreshes(world: World) -> None:
    jobs = await read_jobs(world, 2)
    clusters = await read_clusters(world, 2)
    budget, _ = _budget(5.0)
    strategy = world.sweeps(node_budget=SpareBudget(budget))
    world.emr.jobs["rj-job0"]["status"] = "Succeeded"
    world.clock.advance(INTERVAL)

    refs: list[RefSnapshot] = [*jobs, *clusters]
    for kind in (JOB_KIND, CLUSTER_KIND):
        await sweep(world, strategy, [r for r in refs if r.key.kind == kind])

    assert world.emr.count("GetRayJob") == 1  # the changed job, at once
    assert world.emr.count("GetRayCluster") == 0  # nodes wait for spare budget
