"""High availability: two or three `rayref run` processes with leader election, against
the real kube-apiserver and the simulator.

Each replica talks to the API server through its own recording proxy
(tests/support/apiproxy.py), so every write is attributed to the replica that sent it,
with its time; the proxy can also cut one replica off from the Lease alone. A small
"kubelet" restarts a replica that exits, as the Deployment's pods would be.

Figures go to stdout ([reliability] lines) and docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.apiproxy import ApiProxy, Sent
from tests.support.refs import (
    cluster_ref,
    create_refs,
    events_of,
    eventually,
    job_ref,
    list_refs,
    occurrences,
    patch_spec,
    put_secret,
    resource_versions,
)
from tests.support.reliability import (
    Remote,
    ScenarioSecrets,
    converge,
    excess_events,
    expected_events,
    mismatches,
    remote_truth,
    report,
)

JOB, CLUSTER = JOB_KIND, CLUSTER_KIND


LEASE = "rayref-operator"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 15.0, 10.0, 2.0
POLL = 5
RATE, BURST = 60.0, 80
CHURN_REFS = 1000
OUTAGE_SECONDS = 30.0
MARGIN = 30.0
SEED = int(time.time())


# ---------------------------------------------------------------- replicas


@dataclass
class Replica:
    name: str  # the pod name; the identity is this plus a random suffix
    proxy: ApiProxy
    process: OperatorProcess
    exits: list[tuple[int, float]] = field(default_factory=list)

    def owns(self, holder: str) -> bool:
        return holder.startswith(f"{self.name}-")


class Replicas:
    """Operators with election on, each behind its own proxy, restarted when they exit."""

    def __init__(
        self,
        kube: KubeTestBed,
        simulator: SimulatorSession,
        factory: OperatorFactory,
        namespace: str,
        directory: Path,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.kube, self.simulator, self.factory = kube, simulator, factory
        self.namespace = namespace
        self.directory = directory
        self.settings = {
            "LEADER_ELECTION": "true",
            "LEADER_ELECTION_NAMESPACE": namespace,
            "LEADER_ELECTION_LEASE_DURATION": str(LEASE_DURATION),
            "LEADER_ELECTION_RENEW_DEADLINE": str(RENEW_DEADLINE),
            "LEADER_ELECTION_RETRY_PERIOD": str(RETRY),
            "REQUEST_RATE": str(RATE),
            "REQUEST_BURST": str(BURST),
            **(settings or {}),
        }
        self.replicas: list[Replica] = []
        self._kubelet: asyncio.Task[None] | None = None

    def start(self, count: int) -> list[Replica]:
        for _ in range(count):
            name = f"replica-{len(self.replicas)}"
            proxy = ApiProxy(self.kube, self.directory, name)
            self.replicas.append(Replica(name, proxy, self._exec(name, proxy)))
        self._kubelet = asyncio.get_running_loop().create_task(self._restart_exited())
        return self.replicas

    def _exec(self, name: str, proxy: ApiProxy) -> OperatorProcess:
        return self.factory.start(
            kubeconfig=proxy.kubeconfig,
            endpoint=self.simulator.base_url,
            namespaces=[self.namespace],
            settings=self.settings,
            env={"POD_NAME": name},
        )

    async def _restart_exited(self) -> None:
        # restartPolicy: Always, without the kubelet's back-off.
        while True:
            for replica in self.replicas:
                process = replica.process
                if not process.running and process.proc.returncode is not None:
                    replica.exits.append((process.proc.returncode, time.monotonic()))
                    process.stop()
                    replica.process = await asyncio.to_thread(
                        self._exec, replica.name, replica.proxy
                    )
            await asyncio.sleep(0.2)

    def stop_restarting(self) -> None:
        if self._kubelet is not None:
            self._kubelet.cancel()

    def close(self) -> None:
        self.stop_restarting()
        for replica in self.replicas:
            replica.process.stop()
            replica.proxy.close()

    def holder(self) -> str:
        with self.kube.api_client() as api:
            try:
                lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE, self.namespace)
            except ApiException as error:
                if error.status == 404:
                    return ""
                raise
        return "" if lease.spec is None else str(lease.spec.holder_identity or "")

    def leader(self) -> Replica | None:
        holder = self.holder()
        return next((r for r in self.replicas if holder and r.owns(holder)), None)

    async def wait_leader(
        self, *, other_than: Replica | None = None, within: float = 60.0, every: float = 0.05
    ) -> tuple[Replica, float]:
        # The Lease alone is not enough: after an outage it still names the replica that
        # stepped down, and its restarted process carries the same pod name. A leader is a
        # replica the Lease names whose own process says it leads.
        started = time.monotonic()
        while time.monotonic() - started < within:
            leader = await asyncio.to_thread(self.leader)
            if (
                leader is not None
                and leader is not other_than
                and leader.process.running
                and await asyncio.to_thread(leads, leader)
            ):
                return leader, time.monotonic() - started
            await asyncio.sleep(every)
        raise AssertionError(f"no new leader within {within:.0f} s (holder {self.holder()!r})")

    def when_led(self, other_than: Replica, within: float) -> tuple[Replica, float]:
        """In a thread, so that the tests' blocking calls do not delay it: the first
        replica other than `other_than` seen holding the Lease, and when (monotonic)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None and leader is not other_than:
                return leader, time.monotonic()
            time.sleep(0.02)
        raise AssertionError(f"no new leader within {within:.0f} s (holder {self.holder()!r})")

    def others(self, leader: Replica) -> list[Replica]:
        return [r for r in self.replicas if r is not leader]


def leads(replica: Replica) -> bool:
    try:
        return replica.process.metric("rayref_leader") == 1
    except OSError:  # not serving yet (just restarted)
        return False


@pytest.fixture
def replicas(
    kube: KubeTestBed,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Replicas]:
    kube.apply_crds()
    group = Replicas(kube, simulator, operator_factory, namespace, tmp_path)
    try:
        yield group
    finally:
        group.close()


# ---------------------------------------------------------------- remote objects


async def populate(
    kube: KubeTestBed,
    namespace: str,
    control: SimulatorControl,
    workspace: str,
    secrets: ScenarioSecrets,
    count: int,
    rng: random.Random,
    *,
    spread: float = 1.0,
) -> list[Remote]:
    """`count` refs, one in ten a cluster, each with a lifecycle that keeps changing."""
    clusters = count // 10
    specs = [
        control.job_spec(
            script={
                "submittedSeconds": rng.uniform(0, 20),
                "pendingSeconds": rng.uniform(5, 40) * spread,
                "runningSeconds": rng.uniform(10, 200) * spread,
                "outcome": rng.choice(["Succeeded", "Failed", "Cancelled", None]),
                "clusterReleaseSeconds": rng.uniform(2, 20),
                "cuHoursDelaySeconds": rng.uniform(30, 120),
            },
            name=f"job-{i}",
        )
        for i in range(count - clusters)
    ]
    remotes: list[Remote] = []
    for start in range(0, len(specs), 200):
        created = await control.create_jobs(workspace, specs[start : start + 200])
        remotes += [Remote(JOB, f"job-{start + i}", job.id) for i, job in enumerate(created)]
    for index in range(clusters):
        cluster = await control.create_cluster(
            workspace,
            name=f"cluster-{index}",
            script={
                "startingSeconds": rng.uniform(5, 60) * spread,
                "headReadySeconds": rng.uniform(2, 10),
                "workersAppearSeconds": rng.uniform(2, 10),
                "workersReadySeconds": rng.uniform(5, 30),
            },
        )
        remotes.append(Remote(CLUSTER, f"cluster-{index}", cluster.id))
    await asyncio.to_thread(
        create_refs,
        kube,
        [
            (job_ref if r.kind == JOB else cluster_ref)(
                namespace, r.ref_name, workspace, r.remote_id
            )
            for r in remotes
        ],
    )
    return remotes


async def setup_world(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, count: int, seed: int
) -> tuple[ScenarioSecrets, list[Remote]]:
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    await control.set_speed(0)
    remotes = await populate(
        kube, namespace, control, workspace, secrets, count, random.Random(seed)
    )
    return secrets, remotes


def all_refs(kube: KubeTestBed, namespace: str) -> dict[str, dict[str, Any]]:
    return {**list_refs(kube, JOB, namespace), **list_refs(kube, CLUSTER, namespace)}


def cycle(refs: int) -> float:
    return max(POLL, refs / RATE)


def writes_after_death(replica: Replica, reaped: float) -> list[Sent]:
    """Writes of a SIGKILLed replica that its proxy read after the process was reaped.

    A request the proxy reads only then was sent before the death (its bytes were in the
    socket); its client is gone, so it is never answered and the proxy records status 0.
    Under load the proxy's thread reads such a request late (twice by about 0.05 s in a
    CI run), so only a write that got an answer counts: one the dead process made.
    """
    return [s for s in replica.proxy.ref_writes(reaped) if s.status != 0]


def status_writes(replica: Replica, since: float = 0.0) -> Counter[str]:
    """Status patches per ref sent by this replica since `since`, but for the one that
    writes a failed job's `failureLog` alone (docs/logs.md: a write of its own, once)."""
    return Counter(
        sent.path.rsplit("/", 2)[-2]
        for sent in replica.proxy.ref_writes(since)
        if sent.method == "PATCH"
        and sent.path.endswith("/status")
        and sent.status_keys != {"failureLog"}
    )


def ref_requests(replica: Replica, since: float = 0.0) -> list[str]:
    """The methods of its requests about the refs (list, watch, status): a cold standby
    sends none, a warm one lists and watches (GET) only."""
    return [
        sent.method
        for sent in replica.proxy.requests()
        if "/rayref.io/" in sent.path and sent.received >= since
    ]


# ---------------------------------------------------------------- 1. one writer


@pytest.mark.parametrize("standby_mode", ["cold", "warm"])
async def test_exactly_one_of_three_replicas_polls_and_writes(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    replicas: Replicas,
    standby_mode: str,
) -> None:
    _, remotes = await setup_world(kube, namespace, simulator, 60, SEED)
    replicas.settings["LEADER_ELECTION_STANDBY"] = standby_mode
    replicas.start(3)
    leader, took = await replicas.wait_leader()
    control, workspace = simulator.control, simulator.workspace_id
    await converge(
        kube, namespace, control, workspace, remotes, within=cycle(60) + MARGIN, what="first sync"
    )
    # A window of churn: the remote objects change, the leader polls and writes.
    window = time.monotonic()
    sent_before = (await control.counters(workspace)).total
    leader_before = leader.process.metric("rayref_cloud_requests_total")
    await control.set_speed(4)
    await asyncio.sleep(3 * POLL)  # a fixed window on purpose: the standbys must not write in it
    await control.set_speed(0)

    async def accounted() -> tuple[int, float]:
        sent = (await control.counters(workspace)).total - sent_before
        leader_sent = leader.process.metric("rayref_cloud_requests_total") - leader_before
        assert leader_sent == sent, f"the leader counts {leader_sent}, the simulator {sent}"
        return sent, leader_sent

    # The requests in flight when the churn ended land, then both sides count the same.
    sent, leader_sent = await eventually(accounted, what="every cloud request counted", within=30)

    assert status_writes(leader, window), "the leader wrote nothing during the churn"
    for standby in replicas.others(leader):
        assert standby.proxy.ref_writes() == [], f"{standby.name} wrote to the API server"
        watched = ref_requests(standby)
        if standby_mode == "cold":
            assert watched == [], f"{standby.name} read or watched the refs"
        else:
            assert watched and set(watched) == {"GET"}, f"{standby.name}: {Counter(watched)}"
        assert standby.process.metric("rayref_cloud_requests_total") == 0
        assert standby.process.metric("rayref_leader") == 0
        lease_calls = [s for s in standby.proxy.requests() if s.lease]
        assert lease_calls, "a standby that never looked at the Lease"
    assert leader.process.metric("rayref_leader") == 1
    assert leader.process.metric("rayref_leader_transitions_total") == 1
    # Every cloud request the simulator saw came from the leader.
    assert sent > 0 and leader_sent == sent
    report(
        f"one writer ({standby_mode} standbys): 3 replicas, {leader.name} led after "
        f"{took:.1f} s; churn window: "
        f"{sum(status_writes(leader, window).values())} status writes and {sent} cloud "
        f"requests, all from the leader; standbys: 0 writes, 0 cloud calls, ref requests "
        f"{[len(ref_requests(r)) for r in replicas.others(leader)]} (all GET)"
    )


# ---------------------------------------------------------------- 2. SIGKILL under churn


@pytest.mark.slow
async def test_sigkill_of_the_leader_under_churn_hands_over_without_double_writes(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, replicas: Replicas
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    _, remotes = await setup_world(kube, namespace, simulator, CHURN_REFS, SEED + 1)
    replicas.start(2)
    old, _ = await replicas.wait_leader()
    _, took = await converge(
        kube,
        namespace,
        control,
        workspace,
        remotes,
        within=cycle(CHURN_REFS) + 2 * MARGIN,
        what="first sync",
    )
    replicas.stop_restarting()  # the killed one stays dead: the other must take over
    rng = random.Random(SEED)
    await control.set_speed(2)
    await asyncio.sleep(rng.uniform(3.0, 8.0))  # a random moment: amid the churn's writes
    old.process.kill()
    killed = time.monotonic()
    led = asyncio.ensure_future(
        asyncio.to_thread(replicas.when_led, old, LEASE_DURATION + RETRY + 10)
    )
    # The remote goes on changing while nobody leads, then holds still so that
    # "converged" has one meaning.
    await asyncio.sleep(2.0)  # a window on purpose: changes while nobody leads
    await control.set_speed(0)
    # A fixed settle on purpose: a new leader may write any moment, so no quiet state to wait for.
    await asyncio.sleep(1.0)
    before = all_refs(kube, namespace)
    events_before = events_of(kube, namespace)
    truth = await remote_truth(control, workspace, remotes)
    stale = mismatches(before, truth)

    new, led_at = await led
    takeover = led_at - killed
    assert takeover <= LEASE_DURATION + RETRY, f"takeover took {takeover:.1f} s"
    after, synced_in = await converge(
        kube,
        namespace,
        control,
        workspace,
        remotes,
        # As long as the first sync may take: the new leader reads every ref again, and
        # under six xdist workers on 2 cores one cycle plus a margin was once not enough.
        within=cycle(CHURN_REFS) + 2 * MARGIN,
        what="sync after the takeover",
        truth=truth,
    )
    first_write = min((s.received for s in new.proxy.ref_writes(killed)), default=None)
    # The rest of the first cycle, then a quiet cycle: nothing more may be written (a fixed
    # window on purpose: it proves an absence).
    await asyncio.sleep(cycle(CHURN_REFS) + 2)
    after = all_refs(kube, namespace)
    events = events_of(kube, namespace)
    assert not mismatches(after, truth), "refs left the remote truth again"

    writes = status_writes(new, killed)
    twice = {name: n for name, n in writes.items() if n > 1}
    unchanged = {
        name
        for name in writes
        if (before.get(name) or {}).get("status") == (after.get(name) or {}).get("status")
    }
    transitions = sum(
        expected_events(obj.get("kind", ""), before.get(name, {}), obj)
        for name, obj in after.items()
    )
    posted = occurrences(events) - occurrences(events_before)
    excess = excess_events(before, after, events_before, events)
    assert not twice, (
        f"refs written more than once for one remote change: {dict(list(twice.items())[:5])}"
    )
    assert not unchanged, f"refs written with nothing new: {sorted(unchanged)[:5]}"
    assert not excess, f"more events than transitions: {dict(list(excess.items())[:3])}"
    assert posted <= transitions
    quiet = resource_versions(after)
    await asyncio.sleep(cycle(CHURN_REFS) + 2)  # a fixed window on purpose: no write in it
    assert resource_versions(all_refs(kube, namespace)) == quiet, "writes in a quiet cycle"
    assert writes_after_death(old, killed) == []
    report(
        f"SIGKILL: {len(remotes)} refs (seed {SEED}) first in sync {took:.1f} s after the "
        f"start; {new.name} leads {takeover:.1f} s after the kill (lease {LEASE_DURATION:g} s), "
        f"first write {first_write - killed if first_write else float('nan'):.1f} s after it; "
        f"{len(stale)} refs stale at the kill, all in sync {synced_in:.1f} s after the "
        f"takeover; {sum(writes.values())} status writes to {len(writes)} refs, 0 twice, "
        f"0 without change; {posted} events for {transitions} transitions"
    )


WARM_REFS = 300


@pytest.mark.slow
async def test_a_warm_standby_takes_over_without_double_writes_and_sees_what_changed_meanwhile(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, replicas: Replicas
) -> None:
    """SIGKILL amid churn with a warm standby; while nobody leads, a ref is created and
    another one's spec changes: the new leader, which does not list the refs again, must
    pick up both."""
    control, workspace = simulator.control, simulator.workspace_id
    _, remotes = await setup_world(kube, namespace, simulator, WARM_REFS, SEED + 5)
    replicas.settings["LEADER_ELECTION_STANDBY"] = "warm"
    replicas.start(2)
    old, _ = await replicas.wait_leader()
    (standby,) = replicas.others(old)
    await converge(
        kube, namespace, control, workspace, remotes, within=cycle(WARM_REFS) + MARGIN, what="sync"
    )

    def warm() -> None:
        assert standby.process.metric("rayref_refs") == WARM_REFS

    await eventually(warm, what="the standby's registry holding every ref", within=MARGIN)
    replicas.stop_restarting()
    await control.set_speed(2)
    await asyncio.sleep(random.Random(SEED).uniform(3.0, 6.0))  # amid the churn's writes
    old.process.kill()
    killed = time.monotonic()
    led = asyncio.ensure_future(
        asyncio.to_thread(replicas.when_led, old, LEASE_DURATION + RETRY + 10)
    )
    await control.set_speed(0)
    created = await control.create_job(workspace, age_seconds=600, script={"outcome": "Failed"})
    await asyncio.to_thread(
        create_refs, kube, [job_ref(namespace, "job-new", workspace, created.id)]
    )
    await asyncio.to_thread(
        patch_spec, kube, JOB, namespace, "job-1", {"pollIntervalSeconds": POLL + 1}
    )
    remotes = [*remotes, Remote(JOB, "job-new", created.id)]
    assert not led.done(), "the standby led before the changes were made"
    before = all_refs(kube, namespace)
    events_before = events_of(kube, namespace)
    truth = await remote_truth(control, workspace, remotes)

    new, led_at = await led
    takeover = led_at - killed
    assert new is standby and takeover <= LEASE_DURATION + RETRY, f"takeover {takeover:.1f} s"
    after, synced_in = await converge(
        kube,
        namespace,
        control,
        workspace,
        remotes,
        within=cycle(WARM_REFS) + MARGIN,
        what="sync after the takeover",
        truth=truth,
    )
    changed = after["job-1"]
    assert changed["metadata"]["generation"] == 2
    assert changed["status"]["observedGeneration"] == 2, "the spec change was not picked up"
    assert after["job-new"]["status"]["observedGeneration"] == 1
    await asyncio.sleep(cycle(WARM_REFS) + 2)  # a fixed window on purpose: no write in it
    after = all_refs(kube, namespace)
    writes = status_writes(new, killed)
    twice = {name: n for name, n in writes.items() if n > 1}
    unchanged = {
        name
        for name in writes
        if (before.get(name) or {}).get("status") == (after.get(name) or {}).get("status")
    }
    excess = excess_events(before, after, events_before, events_of(kube, namespace))
    assert not twice, f"refs written twice: {dict(list(twice.items())[:5])}"
    assert not unchanged, f"refs written with nothing new: {sorted(unchanged)[:5]}"
    assert not excess, f"more events than transitions: {dict(list(excess.items())[:3])}"
    assert {"job-1", "job-new"} <= set(writes)
    assert writes_after_death(old, killed) == []
    report(
        f"warm SIGKILL: {len(remotes)} refs (seed {SEED}); {new.name} leads {takeover:.1f} s "
        f"after the kill, all in sync {synced_in:.1f} s after the takeover, a ref created and "
        f"a spec changed while nobody led both picked up; {sum(writes.values())} status "
        f"writes to {len(writes)} refs, 0 twice, 0 without change"
    )


# ---------------------------------------------------------------- 3. SIGTERM


async def test_sigterm_hands_the_lease_over_in_under_three_seconds(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, replicas: Replicas
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    _, remotes = await setup_world(kube, namespace, simulator, 40, SEED + 2)
    replicas.start(2)
    replicas.stop_restarting()
    old, _ = await replicas.wait_leader()
    await converge(
        kube, namespace, control, workspace, remotes, within=cycle(40) + MARGIN, what="sync"
    )
    await control.set_speed(3)
    stopped = time.monotonic()
    old.process.proc.send_signal(signal.SIGTERM)
    new, _ = await replicas.wait_leader(other_than=old, within=10)
    takeover = time.monotonic() - stopped
    code = await asyncio.to_thread(old.process.proc.wait, 15)
    last_old = max((s.answered for s in old.proxy.ref_writes(stopped)), default=stopped)

    def new_writes() -> float:
        writes = new.proxy.ref_writes(stopped)
        assert writes, f"{new.name} has not written yet"
        return min(s.received for s in writes)

    first_new = await eventually(new_writes, what="the new leader's first write", within=POLL + 30)
    await control.set_speed(0)
    assert code == 0
    assert takeover < 3.0, f"takeover took {takeover:.2f} s"
    assert last_old < first_new, "the old leader wrote after the new one started"
    report(
        f"SIGTERM: {new.name} leads {takeover:.2f} s after the signal (old leader exit 0, "
        f"its last write {last_old - stopped:.2f} s, the new leader's first "
        f"{first_new - stopped:.2f} s after the signal)"
    )


# ---------------------------------------------------------------- 4. API server down


@pytest.mark.slow
async def test_apiserver_outage_leader_steps_down_then_one_leader_and_nothing_lost(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, replicas: Replicas
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    _, remotes = await setup_world(kube, namespace, simulator, 60, SEED + 3)
    replicas.start(2)
    old, _ = await replicas.wait_leader()
    await converge(
        kube, namespace, control, workspace, remotes, within=cycle(60) + MARGIN, what="sync"
    )
    await control.set_speed(1)
    kube.stop_apiserver()
    down = time.monotonic()
    try:
        # A fixed outage on purpose: the leader must step down in it, nobody write.
        await asyncio.sleep(OUTAGE_SECONDS / 2)
        await control.advance_clock(120)  # many changes while the API server is away
        await asyncio.sleep(OUTAGE_SECONDS / 2)
        await control.set_speed(0)
        truth = await remote_truth(control, workspace, remotes)
    finally:
        kube.start_apiserver()
    back = time.monotonic()
    assert old.exits, "the leader did not step down while it could not renew"
    code, exited = old.exits[0]
    assert code == 1
    assert exited - down <= RENEW_DEADLINE + RETRY + 2, f"stepped down after {exited - down:.1f} s"
    leader, took = await replicas.wait_leader(within=LEASE_DURATION + RETRY + 30)
    _, synced_in = await converge(
        kube,
        namespace,
        control,
        workspace,
        remotes,
        within=cycle(60) + MARGIN,
        what="sync after the outage",
        truth=truth,
    )
    await asyncio.sleep(2 * RETRY)  # a fixed window on purpose: a second leader shows by then
    leaders = [r for r in replicas.replicas if r.process.metric("rayref_leader") == 1]
    assert leaders == [leader], "not exactly one leader after the outage"
    report(
        f"apiserver down {back - down:.0f} s: the leader stepped down (exit 1) "
        f"{exited - down:.1f} s after the outage began; one leader ({leader.name}) "
        f"{took:.1f} s after the API server came back, all {len(remotes)} refs in sync "
        f"{synced_in:.1f} s later"
    )


# ---------------------------------------------------------------- 5. partition


async def test_a_leader_cut_off_from_the_lease_stops_writing_before_the_new_leader_starts(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, replicas: Replicas
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    _, remotes = await setup_world(kube, namespace, simulator, 60, SEED + 4)
    replicas.start(2)
    replicas.stop_restarting()
    old, _ = await replicas.wait_leader()
    await converge(
        kube, namespace, control, workspace, remotes, within=cycle(60) + MARGIN, what="sync"
    )
    await control.set_speed(4)  # plenty to write for whoever leads
    # Its Lease requests hang; everything else (status writes included) still works.
    old.proxy.hang("/apis/coordination.k8s.io/")
    cut = time.monotonic()
    new, _ = await replicas.wait_leader(other_than=old, within=LEASE_DURATION + RETRY + 10)
    takeover = time.monotonic() - cut
    await asyncio.sleep(POLL + 2)  # a fixed window on purpose: the old leader must not write in it
    await control.set_speed(0)
    old_writes = old.proxy.ref_writes(cut)
    new_writes = new.proxy.ref_writes(cut)
    assert new_writes, "the new leader wrote nothing"
    last_old = max((s.answered for s in old_writes), default=cut)
    first_new = min(s.received for s in new_writes)
    await asyncio.to_thread(old.process.proc.wait, 5)
    assert old.process.proc.returncode == 1
    assert last_old < first_new, (
        f"split brain: the old leader's last write {last_old - cut:.2f} s, the new "
        f"leader's first {first_new - cut:.2f} s after the cut"
    )
    report(
        f"partition from the Lease: old leader's last write {last_old - cut:.2f} s after the "
        f"cut ({len(old_writes)} writes meanwhile), it exited; {new.name} led after "
        f"{takeover:.1f} s and first wrote {first_new - cut:.2f} s after the cut "
        f"(gap {first_new - last_old:.2f} s)"
    )
