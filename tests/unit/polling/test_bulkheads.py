"""Per-ref bulkheads of the poll: an unforeseen error in one ref's poll or judgement stays
on that ref (Synced=False InternalError), and a stored status with unreadable fields is
repaired by the ref's next write."""

from __future__ import annotations

import pytest

from rayref.api.kinds import JOB_KIND
from rayref.mirror.stored import read_status
from rayref.polling import listings
from rayref.polling.refs import RefSnapshot
from rayref.polling.timing import CRASH_RETRY_DELAY, KUBE_RETRY_DELAY
from tests.unit.polling.fakes import World, condition, synced


@pytest.fixture
def world() -> World:
    return World()


def faults(world: World, step: str) -> float:
    value = world.metrics.registry.get_sample_value(
        "rayref_object_faults_total", {"kind": JOB_KIND, "step": step}
    )
    return value or 0.0


async def test_an_unforeseen_error_in_one_poll_becomes_that_refs_condition(world: World) -> None:
    world.emr.add_job("rj-one")
    world.emr.errors["GetRayJob"] = RuntimeError("a bug\nacross lines")
    ref = world.job_ref("j1", "rj-one")

    outcome = await world.poller(ref)

    assert outcome.next_delay == CRASH_RETRY_DELAY
    status = world.kube.status(ref.key)
    assert synced(status) == ("False", "InternalError")
    assert condition(status, "Synced")["message"].endswith("RuntimeError: a bug across lines")
    assert faults(world, "poll") == 1


async def test_the_other_refs_of_a_batch_are_read_when_one_crashes(world: World) -> None:
    world.emr.add_job("rj-one")
    world.emr.add_job("rj-two")
    good = world.job_ref("j2", "rj-two")
    bad = world.job_ref("j1", "rj-one")
    # What the registry holds for a bad ref can break the mirror: a status object
    # that is not a mapping at all (the poll must not raise past the ref).
    broken = RefSnapshot(
        key=bad.key,
        uid=bad.uid,
        generation=bad.generation,
        spec=bad.spec,
        status={"conditions": [None]},
        resource_version=bad.resource_version,
    )
    strategy = world.sweeps()

    outcomes = await strategy.poll_batch([broken, good])

    assert synced(world.kube.status(good.key)) == ("True", "Synced")
    assert outcomes[good.key].next_delay is not None
    assert outcomes[bad.key].next_delay is not None  # tried again, not dropped
    assert faults(world, "poll") == 1


async def test_an_unreadable_stored_field_is_removed_by_the_next_write(world: World) -> None:
    world.emr.add_job("rj-one")
    stored = {"phase": "Running", "usage": {"cuHours": "lots"}, "observedGeneration": 1}
    ref = world.job_ref("j1", "rj-one", status=stored)
    readable = read_status(JOB_KIND, stored)
    registered = RefSnapshot(
        key=ref.key,
        uid=ref.uid,
        generation=ref.generation,
        spec=ref.spec,
        status=readable.status,
        resource_version=ref.resource_version,
    )

    outcome = await world.poller(registered)

    # A merge patch would merge the remote's usage into the bad one: the first write
    # removes it, and the poll comes back soon to write the remote's.
    assert "usage" not in world.kube.status(ref.key)
    assert outcome.next_delay is not None and outcome.next_delay <= KUBE_RETRY_DELAY
    await world.poller(world.current(ref))
    status = world.kube.status(ref.key)
    assert status["usage"]["cuHours"] == 24  # the remote's
    assert synced(status) == ("True", "Synced")


@pytest.mark.parametrize("step", ["needs_read_before_listing", "judge"])
async def test_a_sweep_that_fails_on_one_ref_serves_the_others_and_reads_that_one_alone(
    world: World, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    refs = []
    for i in range(3):
        world.emr.add_job(f"rj-{i}", submitTime=1_700_000_000_000 + i)
        ref = world.job_ref(f"j{i}", f"rj-{i}")
        await world.poller(ref)
        refs.append(world.current(ref))
    world.emr.reset_calls()
    broken = refs[1].key
    original = getattr(listings, step)

    def fails_on_one(ref: RefSnapshot, *args: object, **kwargs: object) -> object:
        if ref.key == broken:
            raise RuntimeError("a rule no one foresaw")
        return original(ref, *args, **kwargs)

    monkeypatch.setattr(listings, step, fails_on_one)
    strategy = world.sweeps()

    outcomes = await strategy.poll_batch(refs)

    assert set(outcomes) == {ref.key for ref in refs}  # every ref has its next check
    assert world.emr.counts() == {"ListRayJob": 1, "GetRayJob": 1}
    assert [call.object_id for call in world.emr.calls if call.operation == "GetRayJob"] == ["rj-1"]
    assert world.polls(JOB_KIND, "listed-unchanged") == 2
    step_name = "sort" if step == "needs_read_before_listing" else "judge"
    assert faults(world, step_name) == 1
