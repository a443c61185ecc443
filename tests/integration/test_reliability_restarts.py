"""Restarts: the operator SIGKILLed at random moments, and kube-apiserver stopped and
started again, while the remote jobs and clusters keep changing.

After each restart every ref shows the remote truth again within one poll cycle (plus
the time the request budget needs for all refs), no ref keeps a stale status, and the
Events posted are at most one per real transition. A following quiet cycle writes
nothing at all. CI runs the short form; RAYREF_RELIABILITY_FULL=1 the issue's sizes.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND as CLUSTER
from rayref.api.kinds import JOB_KIND as JOB
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
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
    requests_in,
    resource_versions,
    state_of,
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
    scan_everything,
    scanner_for,
    size,
)

POLL = 5
RATE, BURST = size(40.0, 50.0), size(40, 50)
REFS, KILLS = size(100, 1000), size(3, 10)
OUTAGE_REFS, OUTAGE_SECONDS = size(30, 200), size(10.0, 30.0)
MARGIN = 30.0
# Remote lifecycles stretched so that they keep changing through every kill of the run.
SPREAD = size(1.0, 6.0)
SEED = int(time.time())


def _cycle(refs: int) -> float:
    """One poll cycle for `refs` refs: the interval, or what the budget allows if longer."""
    return max(POLL, refs / RATE)


def _job_script(rng: random.Random) -> dict[str, Any]:
    return {
        "submittedSeconds": rng.uniform(0, 20),
        "pendingSeconds": rng.uniform(5, 40) * SPREAD,
        "runningSeconds": rng.uniform(10, 200) * SPREAD,
        "outcome": rng.choice(["Succeeded", "Succeeded", "Failed", "Timeout", "Cancelled", None]),
        "clusterReleaseSeconds": rng.uniform(2, 20),
        "cuHoursDelaySeconds": rng.uniform(30, 120),
    }


def _cluster_script(rng: random.Random) -> dict[str, Any]:
    script: dict[str, Any] = {
        "startingSeconds": rng.uniform(5, 60) * SPREAD,
        "headReadySeconds": rng.uniform(2, 10),
        "workersAppearSeconds": rng.uniform(2, 10),
        "workersReadySeconds": rng.uniform(5, 30),
    }
    if rng.random() < 0.3:
        script["oomKills"] = [{"instance": "worker-0", "atSeconds": rng.uniform(30, 200) * SPREAD}]
    if rng.random() < 0.2:
        script["errorAtSeconds"] = rng.uniform(60, 300) * SPREAD
    return script


async def _populate(
    kube: KubeTestBed,
    namespace: str,
    control: SimulatorControl,
    workspace: str,
    secrets: ScenarioSecrets,
    count: int,
    rng: random.Random,
) -> list[Remote]:
    """`count` refs, four in five of them jobs, each with a lifecycle of its own."""
    clusters = count // 5
    specs = [
        control.job_spec(script=_job_script(rng), **secrets.job_fields(f"job-{i}"))
        for i in range(count - clusters)
    ]
    remotes: list[Remote] = []
    for start in range(0, len(specs), 200):
        created = await control.create_jobs(workspace, specs[start : start + 200])
        remotes += [Remote(JOB, f"job-{start + i}", job.id) for i, job in enumerate(created)]
    for index in range(clusters):
        cluster = await control.create_cluster(
            workspace, script=_cluster_script(rng), **secrets.cluster_fields(f"cluster-{index}")
        )
        remotes.append(Remote(CLUSTER, f"cluster-{index}", cluster.id))
    create_refs(
        kube,
        (
            (job_ref if r.kind == JOB else cluster_ref)(
                namespace, r.ref_name, workspace, r.remote_id, poll=POLL
            )
            for r in remotes
        ),
    )
    return remotes


def _all_refs(kube: KubeTestBed, namespace: str) -> dict[str, dict[str, Any]]:
    return {**list_refs(kube, JOB, namespace), **list_refs(kube, CLUSTER, namespace)}


async def _writes_settled(kube: KubeTestBed, namespace: str) -> None:
    """Wait until two reads of every ref, half a second apart, show the same versions."""
    last: dict[str, str] = {}

    def unchanged() -> None:
        versions = resource_versions(_all_refs(kube, namespace))
        previous = dict(last)
        last.clear()
        last.update(versions)
        assert versions == previous, "writes still landing"

    await eventually(unchanged, what="the killed operator's last writes landed", every=0.5)


async def _quiet_cycle(
    kube: KubeTestBed, namespace: str, refs: dict[str, dict[str, Any]], events: int
) -> None:
    """Nothing changes remotely for a whole cycle: nothing is written, nothing posted."""
    await asyncio.sleep(_cycle(len(refs)) + 2)  # a fixed window on purpose: it proves an absence
    now = _all_refs(kube, namespace)
    changed = {
        key
        for key, version in resource_versions(now).items()
        if resource_versions(refs).get(key) != version
    }
    assert not changed, f"{len(changed)} refs written with nothing new, e.g. {sorted(changed)[:3]}"
    assert occurrences(events_of(kube, namespace)) == events, "events posted with nothing new"


@pytest.mark.parametrize("strategy", ["list", "get"])
@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_nothing_and_posts_no_event_storm(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    strategy: str,
) -> None:
    rng = random.Random(SEED)
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    kube.apply_crds()

    def start() -> OperatorProcess:
        return operator_factory.start(
            kubeconfig=kube.kubeconfig,
            endpoint=simulator.base_url,
            namespaces=[namespace],
            settings={
                "REQUEST_RATE": str(RATE),
                "REQUEST_BURST": str(BURST),
                "POLL_STRATEGY": strategy,
            },
        )

    within = _cycle(REFS) + MARGIN
    try:
        await control.set_speed(0)
        remotes = await _populate(kube, namespace, control, workspace, secrets, REFS, rng)
        operator = start()
        _, took = await converge(
            kube, namespace, control, workspace, remotes, within=within, what="first sync"
        )
        report(
            f"restarts ({strategy} polling): {len(remotes)} refs (seed {SEED}) in sync "
            f"{took:.1f} s after the start"
        )
        operators = [operator]
        for kill in range(KILLS):
            await control.set_speed(1)
            # A random moment: often in the middle of the burst of reads and writes that
            # follows a start, sometimes in the steady state.
            await asyncio.sleep(rng.uniform(0.5, 8.0))
            operator.kill()
            await control.advance_clock(rng.uniform(10, 90))  # changes while it is down
            await control.set_speed(0)
            # Requests the operator sent just before it died may still be landing.
            await _writes_settled(kube, namespace)

            before = _all_refs(kube, namespace)
            events_before = events_of(kube, namespace)
            truth = await remote_truth(control, workspace, remotes)
            stale = mismatches(before, truth)
            stale_terminal = sum(
                1
                for name, obj in before.items()
                if state_of(obj) != truth[name]
                and state_of(obj)
                in {"Succeeded", "Failed", "Cancelled", "Timeout", "Stopped", "Error"}
            )
            sent = await control.counters(workspace)
            restarted = time.monotonic()
            operator = start()
            ready = time.monotonic() - restarted
            operators.append(operator)
            after, took = await converge(
                kube,
                namespace,
                control,
                workspace,
                remotes,
                within=within,
                what=f"sync after kill {kill + 1}",
                truth=truth,
            )
            requests = (await control.counters(workspace)).total - sent.total
            # The rest of the first cycle may still write what the phase does not show
            # (usage, nodes). Then Events first, refs second: every Event follows its write.
            # A fixed window on purpose: no ref may leave the remote truth in it.
            await asyncio.sleep(_cycle(len(remotes)) + 2)
            events = events_of(kube, namespace)
            after = _all_refs(kube, namespace)
            regressed = mismatches(after, truth)
            assert not regressed, f"{len(regressed)} refs left the remote truth again"
            transitions = sum(
                expected_events(obj.get("kind", ""), before.get(name, {}), obj)
                for name, obj in after.items()
            )
            posted = occurrences(events) - occurrences(events_before)
            excess = excess_events(before, after, events_before, events)
            assert not excess, (
                f"{posted} events for {transitions} transitions; refs with more events than "
                "transitions (expected, posted): "
                + "; ".join(
                    f"{name} {expected} {reasons}: {(before.get(name) or {}).get('status')} -> "
                    f"{after[name].get('status')}"
                    for name, (expected, reasons) in list(excess.items())[:3]
                )[:6000]
            )
            assert posted <= transitions
            await _quiet_cycle(kube, namespace, after, occurrences(events))
            report(
                f"kill {kill + 1}/{KILLS}: {len(stale)} of {len(remotes)} refs stale at the "
                f"restart ({stale_terminal} in a terminal state the remote is not in); all in "
                f"sync {took:.1f} s after the operator was ready ({ready + took:.1f} s after "
                f"the exec), "
                f"{requests} requests, {posted} events for {transitions} "
                "transitions; quiet cycle: 0 writes, 0 events"
            )
        await scan_everything(scanner_for(secrets), kube, [namespace], operators)
    finally:
        await control.set_speed(1)


async def test_apiserver_outage_is_survived_without_a_restart_and_nothing_is_lost(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    rng = random.Random(SEED + 1)
    control, workspace = simulator.control, simulator.workspace_id
    secrets = ScenarioSecrets.new()
    await control.add_key(secrets.key.access_key_id, secrets.key.access_key_secret)
    put_secret(kube, namespace, secrets.key)
    kube.apply_crds()
    within = _cycle(OUTAGE_REFS) + MARGIN
    try:
        await control.set_speed(0)
        remotes = await _populate(kube, namespace, control, workspace, secrets, OUTAGE_REFS, rng)
        operator = operator_factory.start(
            kubeconfig=kube.kubeconfig,
            endpoint=simulator.base_url,
            namespaces=[namespace],
            settings={"REQUEST_RATE": str(RATE), "REQUEST_BURST": str(BURST)},
        )
        pid = operator.pid
        await converge(
            kube, namespace, control, workspace, remotes, within=within, what="first sync"
        )

        before = _all_refs(kube, namespace)
        await control.set_speed(1)
        sent = await requests_in(control, workspace)
        kube.stop_apiserver()
        down = time.monotonic()
        try:
            # A fixed outage on purpose: the operator must live through it.
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            await control.advance_clock(120)  # many changes while the apiserver is away
            await asyncio.sleep(OUTAGE_SECONDS / 2)
            assert operator.running, "the operator exited while the apiserver was down"
            await control.set_speed(0)
            truth = await remote_truth(control, workspace, remotes)
        finally:
            kube.start_apiserver()
        outage = time.monotonic() - down
        during = await requests_in(control, workspace) - sent
        assert during <= RATE * outage + BURST, f"{during} requests during the outage"
        # Refs whose last written status no longer matched the remote when it came back.
        stale = mismatches(before, truth)
        back = time.monotonic()
        _, took = await converge(
            kube,
            namespace,
            control,
            workspace,
            remotes,
            within=within,
            what="sync after the outage",
            truth=truth,
        )
        assert operator.running and operator.pid == pid

        # The watch works again: a spec change and a new ref made now are both seen.
        patch_spec(kube, JOB, namespace, "job-0", {"pollIntervalSeconds": POLL + 1})
        extra = await control.create_job(workspace, script={"outcome": None})
        create_refs(kube, [job_ref(namespace, "late", workspace, extra.id, poll=POLL)])

        def seen() -> None:
            refs = list_refs(kube, JOB, namespace)
            acknowledged = (refs["job-0"].get("status") or {}).get("observedGeneration") == 2
            late = (refs.get("late", {}).get("status") or {}).get("phase") is not None
            assert acknowledged and late, f"spec change seen: {acknowledged}, new ref: {late}"

        started = time.monotonic()
        await eventually(
            seen, what="spec change and new ref after the outage", within=POLL + MARGIN, every=0.5
        )
        took_watch = time.monotonic() - started
        assert operator.pid == pid
        report(
            f"apiserver outage: {len(remotes)} refs, down {outage:.1f} s, {during} requests "
            f"meanwhile, {len(stale)} stale when "
            f"it came back; all in sync {took:.1f} s "
            f"after it came back ({time.monotonic() - back:.1f} s incl. checks), same pid; "
            f"a spec change and a new ref seen {took_watch:.1f} s after being made"
        )
        await scan_everything(scanner_for(secrets), kube, [namespace], [operator])
    finally:
        await control.set_speed(1)
