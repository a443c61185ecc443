"""Cloud faults from the simulator, each for a window and then cleared, with one operator
running through all of them (real apiserver, simulator over HTTP, operator subprocess).

During each window: the operator does not crash (same pid), the refs' Synced condition
names the fault with the reason of docs/status.md, the last known state stays, and the
requests sent stay within the operator's budget (rate x window + burst, counted by the
simulator). After it: every ref shows the remote truth again within one poll cycle (the
slow cycle after a permanent failure), plus the time the budget needs for all refs.
Every test ends with a leak scan of what it produced.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND as CLUSTER
from rayref.api.kinds import JOB_KIND as JOB
from rayref.emr.credentials import Credentials
from rayref.polling.cloud import OPERATOR_RETRY
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import RunningSimulator, SimulatorSession
from tests.support.leakscan import distinctive
from tests.support.refs import (
    cluster_ref,
    create_refs,
    events_of,
    eventually,
    job_ref,
    kept_fields,
    list_refs,
    occurrences,
    put_secret,
    requests_in,
    synced,
)
from tests.support.reliability import (
    Remote,
    ScenarioSecrets,
    converge,
    report,
    scan_everything,
    scanner_for,
    size,
)

POLL = 5  # pollIntervalSeconds of every ref: the CRD's minimum
# The operator's request budget: the refs alone need about this much, so with retries
# during a fault they would need more than the budget gives.
RATE, BURST = size(2.0, 8.0), size(2, 8)
SLOW_CYCLE = 120  # docs/status.md: after a permanent failure
JOBS, CLUSTERS = size(8, 40), size(2, 10)
WINDOW = size(15.0, 30.0)  # seconds each fault lasts
MARGIN = 30.0  # for a loaded machine; measured figures are in docs/reliability.md
# The operator's default polling strategy (list), unless RAYREF_RELIABILITY_STRATEGY
# names another; the operator fixture's own default (get) is not what users run.
STRATEGY = os.environ.get("RAYREF_RELIABILITY_STRATEGY", "list")
FOREVER = {"submittedSeconds": 0, "pendingSeconds": 0, "runningSeconds": 0, "outcome": None}


@pytest.fixture(scope="module")
def fault_operator(
    kube: KubeTestBed,
    simulator_process: RunningSimulator,
    module_operator_factory: OperatorFactory,
) -> OperatorProcess:
    kube.apply_crds()
    settings = {
        "REQUEST_RATE": str(RATE),
        "REQUEST_BURST": str(BURST),
        "POLL_STRATEGY": STRATEGY,
    }
    return module_operator_factory.start(
        kubeconfig=kube.kubeconfig, endpoint=simulator_process.base_url, settings=settings
    )


@dataclass
class World:
    kube: KubeTestBed
    namespace: str
    control: SimulatorControl
    workspace_id: str
    secrets: ScenarioSecrets
    remotes: list[Remote]
    operator: OperatorProcess

    def refs(self) -> dict[str, dict[str, Any]]:
        return {
            **list_refs(self.kube, JOB, self.namespace),
            **list_refs(self.kube, CLUSTER, self.namespace),
        }

    async def converge(self, what: str, within: float) -> tuple[dict[str, dict[str, Any]], float]:
        return await converge(
            self.kube,
            self.namespace,
            self.control,
            self.workspace_id,
            self.remotes,
            within=within,
            what=what,
        )

    async def requests(self) -> int:
        return await requests_in(self.control, self.workspace_id)

    async def change_remote(self) -> None:
        """A visible change on half the jobs, so convergence means a fresh read."""
        for remote in self.remotes[: JOBS // 2]:
            await self.control.update_job(
                self.workspace_id, remote.remote_id, fields={"status": "Succeeded"}
            )

    async def scan(self) -> None:
        await scan_everything(
            scanner_for(self.secrets), self.kube, [self.namespace], [self.operator]
        )


@pytest.fixture
async def world(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    fault_operator: OperatorProcess,
) -> AsyncIterator[World]:
    """Refs of running jobs and clusters whose remote side stands still (clock frozen),
    signed with a key of their own; all Synced before the test starts."""
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    await control.set_speed(0)
    try:
        remotes: list[Remote] = []
        bodies = []
        for index in range(JOBS):
            job = await control.create_job(
                workspace, script=FOREVER, **secrets.job_fields(f"job-{index}")
            )
            remotes.append(Remote(JOB, f"job-{index}", job.id))
            bodies.append(job_ref(namespace, f"job-{index}", workspace, job.id, poll=POLL))
        for index in range(CLUSTERS):
            cluster = await control.create_cluster(
                workspace, age_seconds=600, **secrets.cluster_fields(f"cluster-{index}")
            )
            remotes.append(Remote(CLUSTER, f"cluster-{index}", cluster.id))
            bodies.append(
                cluster_ref(
                    namespace,
                    f"cluster-{index}",
                    workspace,
                    cluster.id,
                    poll=POLL,
                    connectionSecretRef={"name": f"conn-{index}"},
                )
            )
        create_refs(kube, bodies)
        world = World(kube, namespace, control, workspace, secrets, remotes, fault_operator)
        await world.converge("first sync", within=POLL + len(remotes) / RATE + MARGIN)
        yield world
    finally:
        await control.clear_faults()
        await control.set_speed(1)


@dataclass(frozen=True)
class Fault:
    reasons: frozenset[str]  # Synced=False reasons this fault may cause
    every_ref: bool  # whether every ref must show one of them by the end of the window
    start: Callable[[World], Awaitable[None]]
    stop: Callable[[World], Awaitable[None]]
    recovery_cycle: float = POLL
    window: float = WINDOW


async def _clear(world: World) -> None:
    await world.control.clear_faults()


def _rule(**rule: Any) -> Callable[[World], Awaitable[None]]:
    async def start(world: World) -> None:
        await world.control.set_faults(**rule)

    return start


async def _revoke(world: World) -> None:
    await world.control.revoke_key(world.secrets.key.access_key_id)


async def _restore(world: World) -> None:
    await world.control.restore_key(world.secrets.key.access_key_id)


FAULTS = {
    "30% server errors": Fault(
        frozenset({"RemoteError"}), False, _rule(server_error_share=0.3), _clear
    ),
    "throttling burst": Fault(frozenset({"Throttled"}), False, _rule(rate=1.0, burst=1.0), _clear),
    "10 s latency": Fault(
        frozenset({"RemoteError"}),
        False,
        _rule(latency_seconds=10.0),
        _clear,
        # Answers already on their way arrive up to 10 s after the fault is cleared.
        recovery_cycle=POLL + 10.0,
        window=max(WINDOW, 15.0),
    ),
    "malformed JSON": Fault(
        frozenset({"InvalidResponse"}), True, _rule(malformed_share=1.0), _clear
    ),
    "truncated JSON": Fault(
        frozenset({"InvalidResponse"}), True, _rule(truncated_share=1.0), _clear
    ),
    "reset connections": Fault(frozenset({"RemoteError"}), True, _rule(drop_share=1.0), _clear),
    "credentials revoked and restored": Fault(
        frozenset({"AccessDenied"}), True, _revoke, _restore, recovery_cycle=SLOW_CYCLE
    ),
}


@dataclass
class WindowRecord:
    requests: int = 0
    seconds: float = 0.0
    reasons: frozenset[str] = frozenset()
    failing_refs: int = 0


def report_bound(refs: int) -> float:
    """How long a fault that fails every read may take to show on all `refs`.

    Every failing poll costs up to OPERATOR_RETRY.max_attempts requests, and with a
    binding budget its retry waits behind a whole cycle of other polls in the budget's
    queue: the last ref reports after about twice its share of the budget, plus a
    cycle. The wait allows MARGIN on top, for a loaded machine."""
    return POLL + 2 * OPERATOR_RETRY.max_attempts * refs / RATE + MARGIN


async def _watch_window(
    world: World, fault: Fault, before: dict[str, dict[str, Any]]
) -> WindowRecord:
    """Run the fault's window, checking the operator and the refs about once a second.

    The window lasts `fault.window`; a fault that must show on every ref lasts until it
    does, up to `report_bound` (the budget decides how soon the last ref gets a read)."""
    record = WindowRecord()
    seen: set[str] = set()
    sent_before = await world.requests()
    started = time.monotonic()
    await fault.start(world)
    refs: dict[str, dict[str, Any]] = {}
    deadline = max(fault.window, report_bound(len(world.remotes)))

    def over() -> bool:
        elapsed = time.monotonic() - started
        if elapsed < fault.window:
            return False
        if not fault.every_ref or elapsed >= deadline:
            return True
        return all(synced(obj)[0] == "False" for obj in refs.values())

    while not over():
        await asyncio.sleep(1.0)  # samples the refs once a second for the fault's whole window
        assert world.operator.running, "the operator exited during the fault"
        refs = world.refs()
        for name, obj in refs.items():
            # The last known state stays: only conditions and observedGeneration may move.
            assert kept_fields(obj) == kept_fields(before[name]), f"{name} lost its last state"
            status, reason = synced(obj)
            if status == "False":
                seen.add(reason)
    record.requests = await world.requests() - sent_before
    record.seconds = time.monotonic() - started
    failing = {n for n, o in refs.items() if synced(o)[0] == "False"}
    record.failing_refs = len(failing)
    record.reasons = frozenset(seen)
    return record


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.slow
async def test_a_cloud_fault_is_survived_reported_budgeted_and_recovered(
    world: World, fault: Fault, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.id
    pid = world.operator.pid
    before = world.refs()
    events_before = events_of(world.kube, world.namespace)

    record = await _watch_window(world, fault, before)

    assert world.operator.running and world.operator.pid == pid
    assert record.reasons <= fault.reasons, f"unexpected reasons {record.reasons}"
    if fault.every_ref:
        assert record.failing_refs == len(world.remotes), (
            f"{record.failing_refs} of {len(world.remotes)} refs say what is wrong"
        )
    # The budget holds even while every request fails and is retried.
    allowed = RATE * record.seconds + BURST
    assert record.requests <= allowed, f"{record.requests} requests > {allowed:.0f}"

    await fault.stop(world)
    await world.change_remote()
    within = fault.recovery_cycle + len(world.remotes) / RATE + MARGIN
    _, took = await world.converge(f"recovery after {name}", within=within)
    assert world.operator.pid == pid and world.operator.running

    events = events_of(world.kube, world.namespace)
    for reason in fault.reasons:
        # One Warning per ref and reason at most: no storm while the fault lasts.
        assert occurrences(events, reason) - occurrences(events_before, reason) <= len(
            world.remotes
        )
    report(
        f"fault {name}: {len(world.remotes)} refs, window {record.seconds:.1f} s, "
        f"{record.requests} requests (budget allows {allowed:.0f}), reasons "
        f"{sorted(record.reasons) or '-'}, {record.failing_refs} refs failing at the end; "
        f"converged {took:.1f} s after clearing"
    )
    await world.scan()


async def test_an_expired_sts_token_is_reported_and_a_new_token_in_the_secret_is_used(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, fault_operator: OperatorProcess
) -> None:
    """The STS token of the Secret expires: AccessDenied; whoever refreshes tokens writes a
    new one into the Secret, and the next poll uses it (a Secret change reads at once)."""
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    renewed = Credentials(
        secrets.sts.access_key_id + "R", distinctive("stssecret2"), distinctive("ststoken2")
    )
    for sts in (secrets.sts, renewed):
        await control.add_key(sts.access_key_id, sts.access_key_secret, sts.security_token)
    put_secret(kube, namespace, secrets.sts)
    await control.set_speed(0)
    try:
        job = await control.create_job(workspace, script=FOREVER, **secrets.job_fields("sts"))
        remotes = [Remote(JOB, "sts", job.id)]
        create_refs(kube, [job_ref(namespace, "sts", workspace, job.id, poll=POLL)])
        await converge(
            kube, namespace, control, workspace, remotes, within=POLL + MARGIN, what="first sync"
        )
        pid = fault_operator.pid

        await control.expire_token(secrets.sts.access_key_id)

        def denied() -> None:
            obj = list_refs(kube, JOB, namespace)["sts"]
            assert synced(obj) == ("False", "AccessDenied"), f"Synced is {synced(obj)}"

        started = time.monotonic()
        await eventually(denied, what="AccessDenied", within=POLL + MARGIN, every=0.5)
        took_denied = time.monotonic() - started
        put_secret(kube, namespace, renewed)
        started = time.monotonic()
        await control.update_job(workspace, job.id, fields={"status": "Succeeded"})
        _, took = await converge(
            kube,
            namespace,
            control,
            workspace,
            remotes,
            within=POLL + MARGIN,
            what="new token used",
        )
        assert fault_operator.pid == pid and fault_operator.running
        report(
            f"STS token expired: AccessDenied after {took_denied:.1f} s; the renewed token was "
            f"used {time.monotonic() - started:.1f} s after the Secret changed ({took:.1f} s)"
        )
        scanner = scanner_for(
            secrets,
            extra={
                "renewed STS secret": renewed.access_key_secret,
                "renewed STS token": renewed.security_token or "",
            },
        )
        await scan_everything(scanner, kube, [namespace], [fault_operator])
    finally:
        await control.set_speed(1)


async def test_a_rotated_secret_is_used_from_the_next_poll_without_a_restart(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, fault_operator: OperatorProcess
) -> None:
    """Rotation with both keys valid for a while, as it is done in practice: once the
    Secret holds the new key, the next poll uses it, so revoking the old key right
    after that cycle breaks nothing."""
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    new = Credentials(secrets.key.access_key_id + "N", distinctive("aksecret2"))
    for key in (secrets.key, new):
        await control.add_key(key.access_key_id, key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    await control.set_speed(0)
    try:
        remotes = []
        bodies = []
        for index in range(3):
            job = await control.create_job(
                workspace, script=FOREVER, **secrets.job_fields(f"rot-{index}")
            )
            remotes.append(Remote(JOB, f"rot-{index}", job.id))
            bodies.append(job_ref(namespace, f"rot-{index}", workspace, job.id, poll=POLL))
        create_refs(kube, bodies)
        await converge(
            kube, namespace, control, workspace, remotes, within=POLL + MARGIN, what="first sync"
        )
        pid = fault_operator.pid

        put_secret(kube, namespace, new)
        rotated = time.monotonic()
        # One poll cycle, plus the operator's Secret cache (RAYREF_SECRET_CACHE_SECONDS, 3 s):
        # a fixed wait on purpose, the promise is "the new key from the next poll", so the
        # old key is revoked once that time is over (no request tells which key signed it).
        await asyncio.sleep(POLL + 3 + 1)
        await control.revoke_key(secrets.key.access_key_id)
        sent = await requests_in(control, workspace)
        for remote in remotes:
            await control.update_job(workspace, remote.remote_id, fields={"status": "Succeeded"})
        _, took = await converge(
            kube,
            namespace,
            control,
            workspace,
            remotes,
            within=POLL + MARGIN,
            what="new key in use",
        )
        counts = await control.counters(workspace)
        assert counts.outcome_total("auth_error") == 0, "a poll still used the revoked key"
        assert fault_operator.pid == pid and fault_operator.running
        report(
            f"rotation: old key revoked {POLL + 4} s after the Secret changed; "
            f"{counts.total - sent} requests after that, none refused; converged in {took:.1f} s "
            f"({time.monotonic() - rotated:.1f} s after the rotation)"
        )
        scanner = scanner_for(secrets, extra={"rotated key secret": new.access_key_secret})
        await scan_everything(scanner, kube, [namespace], [fault_operator])
    finally:
        await control.set_speed(1)


async def test_an_answer_no_status_can_hold_is_reported_and_not_retried_in_a_loop(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, fault_operator: OperatorProcess
) -> None:
    """GetRayJob answers 200 with a duration beyond int64: the apiserver refuses a status
    holding it (422, like a status above etcd's size limit). The ref must say so
    (InvalidResponse, last state kept) or mirror the rest without it, and the operator must
    keep to the ref's poll interval instead of rereading the remote every few seconds."""
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    interval = 15
    await control.set_speed(0)
    try:
        job = await control.create_job(workspace, script=FOREVER, **secrets.job_fields("huge"))
        create_refs(kube, [job_ref(namespace, "huge", workspace, job.id, poll=interval)])
        remotes = [Remote(JOB, "huge", job.id)]
        await converge(
            kube, namespace, control, workspace, remotes, within=MARGIN, what="first sync"
        )
        before = list_refs(kube, JOB, namespace)["huge"]
        sent = await requests_in(control, workspace)
        await control.update_job(workspace, job.id, fields={"status": "Failed", "duration": 10**30})
        # Two cycles of the ref's interval: one read is due, a second may be (a fixed window
        # on purpose: it proves there is no retry loop in it).
        await asyncio.sleep(2 * interval + 2)
        reads = await requests_in(control, workspace) - sent
        obj = list_refs(kube, JOB, namespace)["huge"]
        status = obj.get("status") or {}
        report(
            f"answer beyond int64: {reads} reads in {2 * interval + 2} s (interval {interval} s); "
            f"Synced {synced(obj)}, phase {status.get('phase')}"
        )
        assert reads <= 3, f"{reads} reads of one ref in two {interval} s cycles"
        if synced(obj)[0] == "False":
            assert synced(obj)[1] == "InvalidResponse"
            assert kept_fields(obj) == kept_fields(before)
        else:
            assert status.get("phase") == "Failed", "the ref shows neither the answer nor why not"
        assert fault_operator.running
    finally:
        await control.set_speed(1)
