"""The scheduler's strategy under sharding: refs of held slots are polled, the others
parked without a call; a slot is drained before it may be given up."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping, Sequence

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import parse_spec
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.sharding.ownership import (
    PARKED_RECHECK_SECONDS,
    Ownership,
    ShardedStrategy,
    shard_key,
)


def _ref(name: str, workspace: str, kind: str = JOB_KIND, **spec: object) -> RefSnapshot:
    body: dict[str, object] = {"workspaceId": workspace, **spec}
    if kind == JOB_KIND:
        body.setdefault("submissionId", f"rj-{name}")
    else:
        body.setdefault("clusterId", f"rc-{name}")
    return RefSnapshot(
        RefKey(kind, "team-a", name), f"uid-{name}", 1, parse_spec(kind, body), {}, "1"
    )


class Recording:
    def __init__(self) -> None:
        self.polled: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        return ref.key

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        self.polled += [ref.key.name for ref in refs]
        await self.release.wait()
        return {ref.key: PollOutcome(next_delay=30.0) for ref in refs}


def _workspaces_by_slot(ownership: Ownership) -> dict[int, str]:
    found: dict[int, str] = {}
    for i in range(200):
        workspace = f"w-{i:016x}"
        found.setdefault(ownership.slot(_ref("x", workspace)), workspace)
    return found


async def test_refs_of_held_slots_are_polled_and_the_others_parked() -> None:
    ownership = Ownership(3, "cn-hangzhou")
    ws = _workspaces_by_slot(ownership)
    ownership.gain(0)
    inner = Recording()
    strategy = ShardedStrategy(inner, ownership)
    mine, theirs = _ref("mine", ws[0]), _ref("theirs", ws[1])

    outcomes = await strategy.poll_batch([mine, theirs])

    assert inner.polled == ["mine"]
    assert outcomes[mine.key].next_delay == 30.0
    assert outcomes[theirs.key].next_delay == PARKED_RECHECK_SECONDS
    assert outcomes[theirs.key].status is None


async def test_a_workspaces_jobs_and_clusters_share_a_slot_and_credentials_split() -> None:
    ownership = Ownership(8, "cn-hangzhou")
    job, cluster = _ref("j", "w-1"), _ref("c", "w-1", CLUSTER_KIND)
    assert ownership.slot(job) == ownership.slot(cluster)
    assert shard_key(job, "cn-hangzhou").region == "cn-hangzhou"
    secrets = {
        ownership.slot(_ref("j", "w-1", credentialsSecretRef={"name": f"s{i}"})) for i in range(32)
    }
    assert len(secrets) > 1
    # the default region is part of the key: a ref naming it is the same group
    assert ownership.slot(_ref("r", "w-1", regionId="cn-hangzhou")) == ownership.slot(job)


async def test_an_invalid_spec_belongs_to_one_slot_by_its_name() -> None:
    ownership = Ownership(4, "cn-hangzhou")
    bad = RefSnapshot(RefKey(JOB_KIND, "team-a", "bad"), "u", 1, parse_spec(JOB_KIND, {}), {}, "1")
    assert ownership.slot(bad) == ownership.slot(bad)
    assert 0 <= ownership.slot(bad) < 4


async def test_gaining_a_slot_calls_the_hooks_once() -> None:
    ownership = Ownership(2, "cn-hangzhou")
    gained: list[int] = []
    ownership.on_gain(gained.append)
    ownership.gain(1)
    ownership.gain(1)
    assert gained == [1]
    assert ownership.held == {1}


async def test_a_dropped_slot_drains_its_running_polls_first() -> None:
    ownership = Ownership(3, "cn-hangzhou")
    ws = _workspaces_by_slot(ownership)
    ownership.gain(2)
    inner = Recording()
    inner.release.clear()
    strategy = ShardedStrategy(inner, ownership)
    running = asyncio.ensure_future(strategy.poll_batch([_ref("a", ws[2])]))
    await asyncio.sleep(0)
    ownership.drop(2)
    drained = asyncio.ensure_future(ownership.drained(2))
    await asyncio.sleep(0.01)
    assert not drained.done()  # the poll still runs and may still write
    # a new batch of the dropped slot is parked at once
    parked = await strategy.poll_batch([_ref("b", ws[2])])
    assert inner.polled == ["a"]
    assert next(iter(parked.values())).next_delay == PARKED_RECHECK_SECONDS
    inner.release.set()
    await running
    await asyncio.wait_for(drained, 1)


async def test_batches_never_mix_slots() -> None:
    ownership = Ownership(3, "cn-hangzhou")
    ws = _workspaces_by_slot(ownership)
    strategy = ShardedStrategy(Recording(), ownership)
    keys = {strategy.batch_key(_ref("a", ws[s])) for s in range(3)}
    assert len({key[0] for key in keys if isinstance(key, tuple)}) == 3
