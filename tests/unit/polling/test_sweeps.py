"""`ListPollStrategy`, the list sweeps, against fakes of the cloud and Kubernetes.

Each rule of the module docstring of `rayref.polling.sweeps` as a user sees it: how many
List and Get calls a batch of refs costs, what is written, and when the refs are due next.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr.errors import AccessDeniedError, BadRequestError, ServerError, ThrottledError
from rayref.polling.memory import RefMemory
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.polling.sweeps import REFUSED_SWEEP_SECONDS, ListPollStrategy
from rayref.polling.timing import TICK_SECONDS
from tests.unit.polling.fakes import KEY_TWO, NAMESPACE, SECRET, World, synced

INTERVAL = 30.0  # the default pollIntervalSeconds
# Jobs submitted a minute apart, so a window's ends are easy to tell.
SUBMIT_MS = [1773475200000 + i * 60_000 for i in range(6)]


@pytest.fixture(autouse=True)
def seeded() -> Iterator[None]:
    # Each group's ticks have a random phase: fixed here so a failure can be replayed.
    state = random.getstate()
    random.seed(18)
    yield
    random.setstate(state)


@pytest.fixture
def world() -> World:
    return World()


async def read_jobs(world: World, count: int, **spec: object) -> list[RefSnapshot]:
    """`count` running jobs, each already read once by a Get (as the operator does first)."""
    refs = []
    for i in range(count):
        world.emr.add_job(f"rj-job{i}", submitTime=SUBMIT_MS[i])
        ref = world.job_ref(f"j{i}", f"rj-job{i}", **spec)
        await world.poller(ref)
        refs.append(world.current(ref))
    world.emr.reset_calls()
    return refs


async def read_clusters(world: World, count: int, **changes: object) -> list[RefSnapshot]:
    refs = []
    for i in range(count):
        world.emr.add_cluster(f"ray-cl{i}", **changes)
        ref = world.cluster_ref(f"c{i}", f"ray-cl{i}")
        await world.poller(ref)
        refs.append(world.current(ref))
    world.emr.reset_calls()
    return refs


async def sweep(
    world: World, strategy: ListPollStrategy, refs: Sequence[RefSnapshot]
) -> tuple[Mapping[RefKey, PollOutcome], list[RefSnapshot]]:
    """One batch, and the refs as the watch delivers them afterwards."""
    outcomes = await strategy.poll_batch(refs)
    assert set(outcomes) == {ref.key for ref in refs}  # an outcome for every ref
    return outcomes, [world.current(ref) for ref in refs]


def delays(outcomes: Mapping[RefKey, PollOutcome]) -> list[float]:
    found = [outcome.next_delay for outcome in outcomes.values()]
    assert all(delay is not None for delay in found)
    return [delay for delay in found if delay is not None]


def throttled(retry_after: float | None = None) -> ThrottledError:
    return ThrottledError(
        "Request was denied due to user flow control.",
        code="Throttling.User",
        status_code=429,
        retry_after=retry_after,
    )


# ---------------------------------------------------------------- who is listed


async def test_refs_never_read_are_read_by_gets_without_a_list(world: World) -> None:
    strategy = world.sweeps()
    for i in range(3):
        world.emr.add_job(f"rj-job{i}", submitTime=SUBMIT_MS[i])
    refs = [world.job_ref(f"j{i}", f"rj-job{i}") for i in range(3)]

    _, refs = await sweep(world, strategy, refs)

    assert world.emr.counts() == {"GetRayJob": 3}
    assert all(synced(ref.status) == ("True", "Synced") for ref in refs)
    assert strategy.checked == 3


async def test_unchanged_refs_cost_one_list_call_and_no_write(world: World) -> None:
    refs = await read_jobs(world, 4)
    strategy = world.sweeps()
    writes = len(world.kube.writes)

    await sweep(world, strategy, refs)

    assert world.emr.counts() == {"ListRayJob": 1}
    # The window holds exactly the refs' jobs: no later job can shift its pages.
    assert world.emr.calls[0].submit_time == (SUBMIT_MS[0], SUBMIT_MS[3])
    assert len(world.kube.writes) == writes
    assert strategy.sweeps == 1 and strategy.checked == 4
    assert world.polls(JOB_KIND, "listed-unchanged") == 4


async def test_the_refs_of_a_group_are_due_together_on_a_tick(world: World) -> None:
    refs = await read_jobs(world, 4)
    strategy = world.sweeps()

    outcomes, _ = await sweep(world, strategy, refs)

    found = delays(outcomes)
    assert len({round(world.clock() + delay, 6) for delay in found}) == 1  # one next sweep
    # The tick nearest the interval: at most half a tick late, never much early.
    assert all(
        INTERVAL - TICK_SECONDS / 2 <= delay <= INTERVAL + TICK_SECONDS / 2 for delay in found
    )


async def test_a_changed_item_costs_a_get_for_that_ref_only(world: World) -> None:
    refs = await read_jobs(world, 3)
    strategy = world.sweeps()
    world.emr.jobs["rj-job1"]["status"] = "Succeeded"

    _, refs = await sweep(world, strategy, refs)

    assert world.emr.counts() == {"ListRayJob": 1, "GetRayJob": 1}
    assert [ref.status["phase"] for ref in refs] == ["Running", "Succeeded", "Running"]
    assert [w.key.name for w in world.kube.writes][-1:] == ["j1"]
    assert world.events.recorded[-1].reason == "JobSucceeded"


async def test_a_job_missing_from_its_window_is_read_and_reported(world: World) -> None:
    refs = await read_jobs(world, 2)
    strategy = world.sweeps()
    del world.emr.jobs["rj-job0"]

    _, refs = await sweep(world, strategy, refs)

    assert world.emr.counts() == {"ListRayJob": 1, "GetRayJob": 1}
    assert synced(refs[0].status) == ("False", "RemoteNotFound")
    assert synced(refs[1].status) == ("True", "Synced")


async def test_a_changed_spec_is_read_by_a_get(world: World) -> None:
    (ref,) = await read_jobs(world, 1)
    strategy = world.sweeps()

    _, (ref,) = await sweep(world, strategy, [world.current(ref, generation=2)])

    assert world.emr.counts() == {"GetRayJob": 1}
    assert ref.status["observedGeneration"] == 2


async def test_a_ref_whose_last_read_failed_is_read_by_a_get(world: World) -> None:
    refs = await read_jobs(world, 2)
    world.emr.errors["GetRayJob"] = ServerError("boom", code="InternalError", status_code=500)
    await world.poller(refs[0])
    refs[0] = world.current(refs[0])
    assert synced(refs[0].status) == ("False", "RemoteError")
    del world.emr.errors["GetRayJob"]
    world.emr.reset_calls()

    _, refs = await sweep(world, world.sweeps(), refs)

    assert world.emr.counts() == {"ListRayJob": 1, "GetRayJob": 1}
    assert synced(refs[0].status) == ("True", "Synced")


async def test_a_suspended_ref_is_not_listed(world: World) -> None:
    (ref,) = await read_jobs(world, 1)
    suspended = world.job_ref("j0", "rj-job0", suspend=True, status=ref.status, generation=2)
    strategy = world.sweeps()

    outcomes, (ref,) = await sweep(world, strategy, [suspended])
    assert outcomes[ref.key].next_delay is None
    assert ref.status["conditions"][-1]["type"] == "Suspended"
    # Fed again later (an operator restart), its status now up to date for the generation:
    # still no call and no schedule.
    outcomes, _ = await sweep(world, strategy, [ref])

    assert world.emr.calls == []
    assert outcomes[ref.key].next_delay is None


async def test_operator_wide_credentials_are_listed_only_where_allowed() -> None:
    world = World()
    world.credentials.shared_namespaces = frozenset({NAMESPACE})
    refs = await read_jobs(world, 2, credentialsSecretRef=None)
    strategy = world.sweeps()

    await strategy.poll_batch(refs)
    assert world.emr.counts() == {"ListRayJob": 1}

    # The administrator takes the namespace off the list: each ref's own poll says why.
    world.credentials.shared_namespaces = frozenset()
    world.emr.reset_calls()
    world.clock.advance(INTERVAL)
    _, refs = await sweep(world, strategy, refs)
    assert world.emr.calls == []
    assert all(synced(ref.status) == ("False", "CredentialsNotFound") for ref in refs)


async def test_an_invalid_spec_is_reported_by_its_own_poll(world: World) -> None:
    ref = world.job_ref("bad", "rj-job0", workspaceId="W!")
    strategy = world.sweeps()

    assert strategy.batch_key(ref) == ref.key  # a batch of its own
    outcomes, (ref,) = await sweep(world, strategy, [ref])

    assert world.emr.calls == []
    assert outcomes[ref.key].next_delay is None
    assert synced(ref.status) == ("False", "InvalidSpec")


# ---------------------------------------------------------------- reusing and paging


async def test_a_recent_sweep_serves_the_next_batch_of_the_group(world: World) -> None:
    refs = await read_jobs(world, 4)
    strategy = world.sweeps(reuse_seconds=10.0)

    await strategy.poll_batch(refs[:2])
    world.clock.advance(3.0)
    # The first sweep's window did not hold these two: a second, narrower one does.
    await strategy.poll_batch(refs[2:])
    world.clock.advance(3.0)
    await strategy.poll_batch(refs)  # every ref is covered by a sweep 3-6 s old
    assert world.emr.count("ListRayJob") == 2
    assert world.emr.calls[1].submit_time == (SUBMIT_MS[2], SUBMIT_MS[3])

    world.clock.advance(11.0)
    await strategy.poll_batch(refs)
    assert world.emr.count("ListRayJob") == 3 and strategy.sweeps == 3


async def test_a_window_larger_than_a_page_is_read_page_by_page(world: World) -> None:
    refs = await read_jobs(world, 5)
    strategy = world.sweeps(page_size=2)

    await strategy.poll_batch(refs)

    assert [call.page_num for call in world.emr.calls] == [1, 2, 3]
    assert world.emr.count("GetRayJob") == 0
    assert strategy.sweeps == 1


# ---------------------------------------------------------------- a failing sweep


@pytest.mark.parametrize(
    ("error", "soonest", "latest"),
    [
        # No hint: a tick (the refs' last status is still there, nothing is spent).
        (ServerError("boom", code="InternalError", status_code=500), 0.0, 2 * TICK_SECONDS),
        # The server's hint, snapped to a tick.
        (throttled(20.0), 20.0 * 0.75, 20.0 + TICK_SECONDS / 2),
        # At most the interval, whatever the hint.
        (throttled(600.0), INTERVAL * 0.75, INTERVAL + TICK_SECONDS / 2),
    ],
)
async def test_a_failing_sweep_leaves_the_status_and_retries_soon(
    world: World, error: Exception, soonest: float, latest: float
) -> None:
    refs = await read_jobs(world, 3)
    world.emr.errors["ListRayJob"] = error
    writes = len(world.kube.writes)

    outcomes, after = await sweep(world, world.sweeps(), refs)

    assert world.emr.counts() == {"ListRayJob": 1}  # no Get per ref
    assert len(world.kube.writes) == writes
    assert [ref.status for ref in after] == [ref.status for ref in refs]
    assert all(soonest <= delay <= latest for delay in delays(outcomes)), delays(outcomes)
    assert world.polls(JOB_KIND, "listed-stale") == 3


async def test_sweeps_failing_for_an_interval_are_reported_then_a_working_one_heals(
    world: World,
) -> None:
    refs = await read_jobs(world, 2)
    strategy = world.sweeps()
    world.emr.errors["ListRayJob"] = throttled()

    _, refs = await sweep(world, strategy, refs)
    world.clock.advance(INTERVAL / 2)
    _, refs = await sweep(world, strategy, refs)
    assert all(synced(ref.status) == ("True", "Synced") for ref in refs)  # not yet

    world.clock.advance(INTERVAL / 2)
    _, refs = await sweep(world, strategy, refs)
    for ref in refs:
        assert synced(ref.status) == ("False", "Throttled")
        assert ref.status["phase"] == "Running"  # the last state is kept
    assert world.events.reasons().count("Throttled") == 2
    assert world.emr.count("GetRayJob") == 0

    # Still failing: the refs stay with the sweeps (no Get each) and nothing new is written.
    writes = len(world.kube.writes)
    world.clock.advance(INTERVAL)
    _, refs = await sweep(world, strategy, refs)
    assert world.emr.counts() == {"ListRayJob": 4}
    assert len(world.kube.writes) == writes

    # The first sweep that works sends each to a Get, which restores Synced=True.
    del world.emr.errors["ListRayJob"]
    world.clock.advance(5.0)
    _, refs = await sweep(world, strategy, refs)
    assert world.emr.counts() == {"ListRayJob": 5, "GetRayJob": 2}
    assert all(synced(ref.status) == ("True", "Synced") for ref in refs)

    # And from then on the sweeps vouch for them again.
    world.emr.reset_calls()
    world.clock.advance(INTERVAL)
    await strategy.poll_batch(refs)
    assert world.emr.counts() == {"ListRayJob": 1}


# ---------------------------------------------------------------- a refused sweep


@pytest.mark.parametrize(
    "error",
    [
        AccessDeniedError("no ListRayJob", code="Forbidden.RAM", status_code=403),
        BadRequestError("unknown API", code="InvalidApi.NotFound", status_code=404),
    ],
)
async def test_a_refused_sweep_hands_the_refs_to_gets_for_a_while(
    world: World, error: Exception
) -> None:
    refs = await read_jobs(world, 2)
    strategy = world.sweeps()
    world.emr.errors["ListRayJob"] = error  # the Gets are still allowed

    _, refs = await sweep(world, strategy, refs)
    assert world.emr.counts() == {"ListRayJob": 1, "GetRayJob": 2}
    assert all(synced(ref.status) == ("True", "Synced") for ref in refs)

    world.emr.reset_calls()
    world.clock.advance(REFUSED_SWEEP_SECONDS - 10)
    await strategy.poll_batch(refs)
    assert world.emr.counts() == {"GetRayJob": 2}  # no listing meanwhile

    world.emr.reset_calls()
    del world.emr.errors["ListRayJob"]
    world.clock.advance(10)
    await strategy.poll_batch(refs)
    assert world.emr.counts() == {"ListRayJob": 1}


async def test_a_refused_sweep_is_tried_again_with_a_new_key(world: World) -> None:
    refs = await read_jobs(world, 2)
    strategy = world.sweeps()
    world.emr.errors["ListRayJob"] = AccessDeniedError("denied", code="Forbidden.RAM")
    await strategy.poll_batch(refs)
    del world.emr.errors["ListRayJob"]
    world.credentials.secrets[(NAMESPACE, SECRET)] = KEY_TWO
    world.emr.reset_calls()

    # Well before the refusal would expire, the next batch lists with the new key.
    world.clock.advance(INTERVAL)
    await strategy.poll_batch(refs)

    assert world.emr.counts() == {"ListRayJob": 1}
    assert world.emr.keys_used("ListRayJob") == [KEY_TWO.access_key_id]


# ---------------------------------------------------------------- clusters


async def test_a_stopped_cluster_is_listed_without_node_reads(world: World) -> None:
    refs = await read_clusters(world, 3, state="Stopped", instances=[])
    strategy = world.sweeps()

    await strategy.poll_batch(refs)
    world.clock.advance(INTERVAL)
    await strategy.poll_batch(refs)

    assert world.emr.counts() == {"ListRayCluster": 2}
    assert world.polls(CLUSTER_KIND, "listed-unchanged") == 6


async def test_running_clusters_nodes_are_read_every_interval_then_less_often(
    world: World,
) -> None:
    (ref,) = await read_clusters(world, 1)
    strategy = world.sweeps()

    gets = []
    for _ in range(14):
        before = world.emr.count("GetRayCluster")
        outcomes, (ref,) = await sweep(world, strategy, [ref])
        gets.append(world.emr.count("GetRayCluster") - before)
        world.clock.advance(outcomes[ref.key].next_delay or 0.0)

    assert world.emr.count("ListRayCluster") == 14  # the state is seen every interval
    # Nodes that keep not changing are read every interval, then every 2, then every 4.
    assert gets == [1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1]


async def test_a_node_change_found_by_the_refresh_is_written(world: World) -> None:
    (ref,) = await read_clusters(world, 1)
    strategy = world.sweeps()
    instances = world.emr.clusters["ray-cl0"]["instances"]
    world.emr.clusters["ray-cl0"]["instances"] = instances[:1]

    _, (ref,) = await sweep(world, strategy, [ref])

    assert world.emr.counts() == {"ListRayCluster": 1, "GetRayCluster": 1}
    assert len(world.kube.writes_of(ref.key)) == 2  # the first read, and this change


# ---------------------------------------------------------------- restart re-verification


async def test_checked_counts_each_ref_once_and_forgets_deleted_ones(world: World) -> None:
    refs = await read_jobs(world, 3)
    strategy = world.sweeps()

    await strategy.poll_batch(refs)
    world.clock.advance(INTERVAL)
    await strategy.poll_batch(refs)
    assert strategy.checked == 3
    assert world.metrics.registry.get_sample_value("rayref_refs_checked") == 3

    strategy.forget(refs[0].memory)
    strategy.forget(RefMemory())  # never seen
    assert strategy.checked == 2


# ---------------------------------------------------------------- the event loop


async def test_judging_a_large_group_lets_other_tasks_run(world: World) -> None:
    # The Lease renewals of leader election share the event loop with the sweeps: a
    # group of thousands of refs must not hold it for the whole judging.
    refs = []
    for i in range(400):
        world.emr.add_job(f"rj-big{i}", submitTime=SUBMIT_MS[0])
        ref = world.job_ref(f"big{i}", f"rj-big{i}")
        await world.poller(ref)
        refs.append(world.current(ref))
    world.emr.reset_calls()
    strategy = world.sweeps()
    ran = 0

    async def renewer() -> None:
        nonlocal ran
        while True:
            ran += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(renewer())
    await asyncio.sleep(0)
    started = ran
    outcomes = await strategy.poll_batch(refs)
    other.cancel()

    assert len(outcomes) == 400 and world.emr.count("GetRayJob") == 0
    # the judging gave way every 100 refs (the fake client's pages never do)
    assert ran - started >= 3
