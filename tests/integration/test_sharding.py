"""Sharding by workspace: two `rayref run` processes split the workspaces through slot
Leases, against the real kube-apiserver and the simulator.

Each replica talks to the API server through its own recording proxy
(tests/support/apiproxy.py), so every status write is attributed to the replica that
sent it, with its time. Checked: each workspace is written by one replica only; when
one replica is killed the other takes its slots once their Leases expire and writes
none of them before the killed one's last write; when it comes back, the slots are
shared again and every moved workspace's last write by the giver comes before the
taker's first. Figures go to stdout ([reliability] lines).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.sharding.slots import ShardKey, slot_of
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.apiproxy import ApiProxy, Sent
from tests.support.refs import (
    cluster_ref,
    create_refs,
    eventually,
    get_ref,
    job_ref,
    list_refs,
    patch_spec,
    put_secret,
)
from tests.support.reliability import Remote, ScenarioSecrets, converge, remote_truth, report

SLOTS = 4
LEASE_DURATION, RENEW_DEADLINE, RETRY = 15.0, 10.0, 2.0
POLL = 5
WORKSPACES_PER_SLOT = 2
JOBS_PER_WORKSPACE, CLUSTERS_PER_WORKSPACE = 25, 3
REGION = "cn-hangzhou"
MARGIN = 30.0
# How long past a Lease duration a slot may take to change hands before the test gives
# up: the times are reported, not asserted; under six pytest-xdist workers on 2 cores the
# first split once took longer than a Lease plus 10 s.
SLACK = 60.0


@dataclass
class Shard:
    name: str
    proxy: ApiProxy
    process: OperatorProcess

    def slots_held(self) -> int:
        return int(self.process.metric("rayref_shard_slots_held"))

    def slots(self) -> set[int]:
        """The slots it holds, as its /healthz says."""
        url = f"http://127.0.0.1:{self.process.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return set(json.loads(response.read())["slots"])

    def status_writes(self, since: float = 0.0) -> list[Sent]:
        return [
            sent
            for sent in self.proxy.ref_writes(since)
            if sent.method == "PATCH" and sent.path.endswith("/status")
        ]


class Shards:
    def __init__(
        self,
        kube: KubeTestBed,
        simulator: SimulatorSession,
        factory: OperatorFactory,
        namespace: str,
        directory: Path,
    ) -> None:
        self.kube, self.simulator, self.factory = kube, simulator, factory
        self.namespace, self.directory = namespace, directory
        self.shards: list[Shard] = []

    def start(self, name: str, proxy: ApiProxy | None = None) -> Shard:
        proxy = proxy or ApiProxy(self.kube, self.directory, name)
        process = self.factory.start(
            kubeconfig=proxy.kubeconfig,
            endpoint=self.simulator.base_url,
            namespaces=[self.namespace],
            settings={
                "SHARDS": str(SLOTS),
                "LEADER_ELECTION_NAMESPACE": self.namespace,
                "LEADER_ELECTION_LEASE_DURATION": str(LEASE_DURATION),
                "LEADER_ELECTION_RENEW_DEADLINE": str(RENEW_DEADLINE),
                "LEADER_ELECTION_RETRY_PERIOD": str(RETRY),
                "POLL_STRATEGY": "list",
            },
            env={"POD_NAME": name},
        )
        shard = Shard(name, proxy, process)
        self.shards.append(shard)
        return shard

    def close(self) -> None:
        for shard in self.shards:
            shard.process.stop()
        for proxy in {id(s.proxy): s.proxy for s in self.shards}.values():
            proxy.close()


@pytest.fixture
def shards(
    kube: KubeTestBed,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Shards]:
    kube.apply_crds()
    group = Shards(kube, simulator, operator_factory, namespace, tmp_path)
    try:
        yield group
    finally:
        group.close()


async def workspaces_covering_every_slot(
    control: SimulatorControl, namespace: str
) -> dict[str, int]:
    """Workspace -> slot, WORKSPACES_PER_SLOT of each slot (so both shards have work)."""
    found: dict[str, int] = {}
    per_slot: dict[int, int] = defaultdict(int)
    for _ in range(200):
        workspace = await control.create_workspace()
        slot = slot_of(ShardKey(REGION, (namespace, "creds"), workspace), SLOTS)
        if per_slot[slot] < WORKSPACES_PER_SLOT:
            per_slot[slot] += 1
            found[workspace] = slot
        if len(found) == SLOTS * WORKSPACES_PER_SLOT:
            return found
    raise AssertionError(f"no workspace for some slot: {dict(per_slot)}")


async def frozen_world(
    kube: KubeTestBed, namespace: str, control: SimulatorControl, *more_secrets: str
) -> dict[str, int]:
    """A key in the simulator and in Secrets ("creds" and `more_secrets`), the remote
    clock stopped, and workspaces covering every slot (workspace -> slot)."""
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    for name in ("creds", *more_secrets):
        put_secret(kube, namespace, secrets.key, name=name)
    await control.set_speed(0)
    return await workspaces_covering_every_slot(control, namespace)


async def populate(
    kube: KubeTestBed, namespace: str, control: SimulatorControl, workspace: str, tag: str
) -> list[Remote]:
    specs = [
        control.job_spec(
            script={
                "submittedSeconds": 2 + i % 7,
                # long enough that jobs still change in the last window (about 300
                # simulated seconds after the start)
                "pendingSeconds": 10 + 9 * (i % 11),
                "runningSeconds": 200 + 20 * (i % 13),
                "outcome": ("Succeeded", "Failed", None)[i % 3],
            },
            name=f"job-{i}",
        )
        for i in range(JOBS_PER_WORKSPACE)
    ]
    created = await control.create_jobs(workspace, specs)
    remotes = [Remote(JOB_KIND, f"{tag}-job-{i}", job.id) for i, job in enumerate(created)]
    for i in range(CLUSTERS_PER_WORKSPACE):
        cluster = await control.create_cluster(
            workspace,
            name=f"cluster-{i}",
            script={"startingSeconds": 10 + 10 * i, "workersReadySeconds": 10},
        )
        remotes.append(Remote(CLUSTER_KIND, f"{tag}-cluster-{i}", cluster.id))
    await asyncio.to_thread(
        create_refs,
        kube,
        [
            (job_ref if r.kind == JOB_KIND else cluster_ref)(
                namespace, r.ref_name, workspace, r.remote_id, poll=POLL
            )
            for r in remotes
        ],
    )
    return remotes


def ref_name(sent: Sent) -> str:
    return sent.path.rsplit("/", 2)[-2]


@pytest.mark.slow
async def test_two_shards_split_the_workspaces_and_hand_them_over_without_overlap(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, shards: Shards
) -> None:
    control = simulator.control
    slot_of_workspace = await frozen_world(kube, namespace, control)
    remotes: dict[str, list[Remote]] = {}
    workspace_of: dict[str, str] = {}
    for index, workspace in enumerate(slot_of_workspace):
        remotes[workspace] = await populate(kube, namespace, control, workspace, f"w{index}")
        workspace_of.update({r.ref_name: workspace for r in remotes[workspace]})
    refs = sum(len(r) for r in remotes.values())

    async def in_sync(what: str, within: float) -> float:
        truth: dict[str, str] = {}
        for workspace, items in remotes.items():
            truth.update(await remote_truth(control, workspace, items))
        every = [r for items in remotes.values() for r in items]
        _, took = await converge(
            kube, namespace, control, "", every, within=within, what=what, truth=truth
        )
        return took

    def writers(since: float) -> dict[str, set[str]]:
        """Workspace -> the replicas that wrote a status of its refs since `since`."""
        found: dict[str, set[str]] = defaultdict(set)
        for shard in shards.shards:
            for sent in shard.status_writes(since):
                found[workspace_of[ref_name(sent)]].add(shard.name)
        return found

    async def slots_are(expected: dict[str, int], what: str, within: float) -> float:
        started = time.monotonic()

        def check() -> None:
            held = {s.name: s.slots_held() for s in shards.shards if s.process.running}
            assert held == expected, f"slots held {held}"

        await eventually(check, what=what, within=within)
        return time.monotonic() - started

    a, b = shards.start("shard-a"), shards.start("shard-b")
    await slots_are({"shard-a": 2, "shard-b": 2}, "two slots each", LEASE_DURATION + SLACK)
    await in_sync("first sync", 60 + MARGIN)

    # 1. churn: every workspace is written by exactly one replica
    window = time.monotonic()
    await control.set_speed(4)
    await asyncio.sleep(4 * POLL)  # a fixed window of remote changes on purpose
    await control.set_speed(0)
    await in_sync("sync after churn", 60 + MARGIN)
    split = writers(window)
    assert all(len(names) == 1 for names in split.values()), split
    assert {n for names in split.values() for n in names} == {"shard-a", "shard-b"}

    # 2. SIGKILL one: the other takes its slots once their Leases expire
    owned_by_b = {w for w, names in split.items() if names == {"shard-b"}}
    b.process.kill()
    killed = time.monotonic()
    b_last = max((s.answered for s in b.status_writes()), default=0.0)
    await control.set_speed(4)
    takeover = await slots_are({"shard-a": 4}, "one shard holds every slot", LEASE_DURATION + SLACK)
    await asyncio.sleep(2 * POLL)
    await control.set_speed(0)
    synced_after_kill = await in_sync("sync after the kill", 60 + MARGIN)
    a_first_on_b = min(
        s.received for s in a.status_writes(killed) if workspace_of[ref_name(s)] in owned_by_b
    )
    assert a_first_on_b > b_last, "shard-a wrote a workspace of shard-b before its last write"

    # 3. it comes back: the slots are shared again, each moved one drained first
    rejoin = time.monotonic()
    b2 = shards.start("shard-b", proxy=b.proxy)
    rebalance = await slots_are(
        {"shard-a": 2, "shard-b": 2}, "shared again", LEASE_DURATION + SLACK
    )
    window = time.monotonic()
    await control.set_speed(4)
    await asyncio.sleep(3 * POLL)  # a fixed window of remote changes on purpose
    await control.set_speed(0)
    await in_sync("sync after the rejoin", 60 + MARGIN)
    split_again = writers(window)
    assert all(len(names) == 1 for names in split_again.values()), split_again
    moved = {w for w, slot in slot_of_workspace.items() if slot in b2.slots()}
    assert moved and all(split_again.get(w, {"shard-b"}) == {"shard-b"} for w in moved)
    a_on_moved = [s.answered for s in a.status_writes(rejoin) if workspace_of[ref_name(s)] in moved]
    a_last_on_moved = max(a_on_moved, default=0.0)
    b_first_on_moved = min(
        s.received for s in b2.status_writes(rejoin) if workspace_of[ref_name(s)] in moved
    )
    assert a_last_on_moved < b_first_on_moved, "a moved workspace was written by both at once"
    report(
        f"sharding, {refs} refs in {len(remotes)} workspaces, {SLOTS} slots, 2 replicas: "
        f"every workspace written by one replica; SIGKILL of one: the other held every slot "
        f"{takeover:.1f} s later (lease {LEASE_DURATION:g} s), all in sync "
        f"{synced_after_kill:.1f} s after that, first write on a taken workspace "
        f"{a_first_on_b - b_last:.1f} s after the killed one's last; back: shared again in "
        f"{rebalance:.1f} s, {len(moved)} workspaces moved with no overlap"
    )


def label_writes(shard: Shard) -> list[Sent]:
    """PATCHes of a ref itself (its labels), not of its status."""
    return [
        sent
        for sent in shard.proxy.requests()
        if sent.method == "PATCH"
        and sent.status < 400
        and "/rayref.io/" in sent.path
        and not sent.path.endswith("/status")
    ]


def refs_followed(shard: Shard) -> int:
    return int(shard.process.metric("rayref_refs"))


async def test_each_shard_follows_only_its_slots_refs_and_labels_each_ref_once(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, shards: Shards
) -> None:
    control = simulator.control
    slot_of_workspace = await frozen_world(kube, namespace, control, "creds-2")
    remotes: dict[str, list[Remote]] = {}
    for index, workspace in enumerate(slot_of_workspace):
        remotes[workspace] = await populate(kube, namespace, control, workspace, f"w{index}")
    every = [r for items in remotes.values() for r in items]
    workspace_of = {r.ref_name: w for w, items in remotes.items() for r in items}

    a, b = shards.start("shard-a"), shards.start("shard-b")

    def split_two_by_two() -> None:
        assert (a.slots_held(), b.slots_held()) == (2, 2)

    await eventually(split_two_by_two, what="two slots each", within=LEASE_DURATION + SLACK)
    truth: dict[str, str] = {}
    for workspace, items in remotes.items():
        truth.update(await remote_truth(control, workspace, items))
    await converge(
        kube, namespace, control, "", every, within=60 + MARGIN, what="sync", truth=truth
    )

    # Every ref carries its group's slot, written once (by whichever replica held the
    # slot then: before the second replica joins, the first holds every slot).
    listed = {**list_refs(kube, JOB_KIND, namespace), **list_refs(kube, CLUSTER_KIND, namespace)}
    assert len(listed) == len(every)
    for name, obj in listed.items():
        labels = obj["metadata"].get("labels") or {}
        expected = str(slot_of_workspace[workspace_of[name]])
        assert labels.get("rayref.io/slot") == expected, (name, labels)
        assert labels.get("rayref.io/slots") == str(SLOTS), (name, labels)
    written = [ref_name_of(sent) for shard in (a, b) for sent in label_writes(shard)]
    assert sorted(written) == sorted(listed), "each ref labelled exactly once"

    # Each replica follows only the refs of its own slots: the registries split the refs.
    def follows_its_share() -> None:
        for shard in (a, b):
            mine = [n for n in listed if slot_of_workspace[workspace_of[n]] in shard.slots()]
            assert refs_followed(shard) == len(mine), (shard.name, refs_followed(shard))

    await eventually(follows_its_share, what="registries hold their slots' refs", within=20)
    assert refs_followed(a) + refs_followed(b) == len(every)
    assert 0 < refs_followed(a) < len(every)

    # A spec change that moves a ref to another group (another credentials Secret) whose
    # slot the other replica holds: relabelled, followed and written by that replica.
    moved_name, target = next(
        (r.ref_name, slot_of(ShardKey(REGION, (namespace, "creds-2"), w), SLOTS))
        for w, items in remotes.items()
        for r in items
        if r.kind == JOB_KIND
        and (slot_of_workspace[w] in a.slots())
        != (slot_of(ShardKey(REGION, (namespace, "creds-2"), w), SLOTS) in a.slots())
    )
    before = {shard.name: refs_followed(shard) for shard in (a, b)}
    giver, taker = (a, b) if target in b.slots() else (b, a)
    since = time.monotonic()
    patch_spec(kube, JOB_KIND, namespace, moved_name, {"credentialsSecretRef": {"name": "creds-2"}})
    await control.set_speed(4)  # the remote job changes, so the taker has a status to write

    def moved() -> None:
        labels = get_ref(kube, JOB_KIND, namespace, moved_name)["metadata"]["labels"]
        assert labels["rayref.io/slot"] == str(target)
        assert refs_followed(giver) == before[giver.name] - 1
        assert refs_followed(taker) == before[taker.name] + 1
        assert any(ref_name(s) == moved_name for s in taker.status_writes(since))

    await eventually(moved, what="the moved ref followed by the other replica", within=60)
    await control.set_speed(0)
    report(
        f"sharding: {len(every)} refs labelled once each; replicas follow "
        f"{before['shard-a']} and {before['shard-b']} refs; a ref moved by a spec change "
        f"is followed by the other replica"
    )


def ref_name_of(sent: Sent) -> str:
    return sent.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
