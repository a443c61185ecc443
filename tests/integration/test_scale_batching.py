"""The list strategy against a real apiserver, the simulator and the operator subprocess.

Many refs in two workspaces: once every ref has been read, the operator finds changes
with ListRayJob/ListRayCluster sweeps and calls GetRayJob only for the refs that
changed; statuses stay right and are written once per change; a restarted operator
re-verifies every ref from the lists, without a Get or a write for unchanged refs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND as CLUSTER
from rayref.api.kinds import JOB_KIND as JOB
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    apply,
    cluster_ref,
    condition,
    credentials_secret,
    eventually,
    job_ref,
    list_refs,
    resource_versions,
)

RUNNING_PER_WORKSPACE = 12
FINISHED_PER_WORKSPACE = 18
# A running job ended by the control API stays Succeeded with its cluster Running for
# the whole test: exactly one visible change.
RUNNING_SCRIPT = {
    "submittedSeconds": 0,
    "pendingSeconds": 0,
    "outcome": None,
    "clusterReleaseSeconds": 100000,
}


async def _jobs(control: SimulatorControl, workspace: str, prefix: str) -> dict[str, str]:
    """name -> submission id: running jobs and long-finished ones (usage reported)."""
    specs = [
        control.job_spec(submission_id=f"rj-{prefix}run{i:04d}", script=RUNNING_SCRIPT)
        for i in range(RUNNING_PER_WORKSPACE)
    ] + [
        control.job_spec(submission_id=f"rj-{prefix}old{i:04d}", age_seconds=7200 + i)
        for i in range(FINISHED_PER_WORKSPACE)
    ]
    views = await control.create_jobs(workspace, specs)
    return {view.id.removeprefix("rj-"): view.id for view in views}


def _versions(kube: KubeTestBed, namespace: str) -> dict[str, str]:
    return resource_versions(list_refs(kube, JOB, namespace), list_refs(kube, CLUSTER, namespace))


async def _count(control: SimulatorControl, operation: str, *workspaces: str) -> int:
    total = 0
    for workspace in workspaces:
        counts = await control.counters(workspace)
        total += sum(counts.operations.get(operation, {}).values())
    return total


async def _sweeps(control: SimulatorControl, workspaces: tuple[str, ...], count: int) -> None:
    """Wait until every workspace has seen `count` more ListRayJob calls."""
    start = {ws: await _count(control, "ListRayJob", ws) for ws in workspaces}
    for workspace in workspaces:

        async def probe_ready(ws: str = workspace) -> None:
            assert await _count(control, "ListRayJob", ws) >= start[ws] + count

        await eventually(probe_ready, what=f"{count} more sweeps of {workspace}", every=0.5)


def _phase(obj: Mapping[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return None if phase is None else str(phase)


def _start(
    operator_factory: OperatorFactory, kube: KubeTestBed, namespace: str, base_url: str
) -> OperatorProcess:
    return operator_factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=base_url,
        namespaces=[namespace],
        settings={"POLL_STRATEGY": "list", "LOG_LEVEL": "INFO"},
    )


@pytest.mark.slow
async def test_lists_find_the_changed_refs_and_only_those_are_read(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    kube.apply_crds()
    control = simulator.control
    first = simulator.workspace_id
    second = await control.create_workspace()
    workspaces = (first, second)
    jobs = {**await _jobs(control, first, "a"), **await _jobs(control, second, "b")}
    running = await control.create_cluster(first, age_seconds=3600)
    stopped = await control.create_cluster(first, age_seconds=3600, script={"stopAtSeconds": 60})
    manifests: list[Mapping[str, Any]] = [credentials_secret(namespace, simulator.credentials)]
    for name, submission in jobs.items():
        workspace = first if name.startswith("a") else second
        manifests.append(job_ref(namespace, name, workspace, submission))
    manifests += [
        cluster_ref(namespace, "running", first, running.id),
        cluster_ref(namespace, "stopped", first, stopped.id),
    ]
    apply(kube, *manifests)
    operator = _start(operator_factory, kube, namespace, simulator.base_url)

    def all_read() -> None:
        refs = list_refs(kube, JOB, namespace)
        assert len(refs) == len(jobs)
        unread = [name for name, obj in refs.items() if _phase(obj) is None]
        assert not unread, f"{len(unread)} refs without a phase"
        clusters = list_refs(kube, CLUSTER, namespace)
        assert clusters["running"]["status"].get("state") == "Running"
        assert clusters["stopped"]["status"].get("state") == "Stopped"

    await eventually(all_read, what="every ref read once", within=120)
    # Steady: the refs are checked by lists; nothing changed, so no Get and no write.
    await _sweeps(control, workspaces, 1)
    versions = _versions(kube, namespace)
    gets_before = await _count(control, "GetRayJob", *workspaces)
    writes_before = operator.metric("rayref_status_writes_total")
    await _sweeps(control, workspaces, 3)
    assert await _count(control, "GetRayJob", *workspaces) == gets_before
    assert _versions(kube, namespace) == versions
    assert operator.metric("rayref_status_writes_total") == writes_before

    changed = ["arun0001", "arun0007", "arun0011", "brun0002", "brun0005"]
    for name in changed:
        workspace = first if name.startswith("a") else second
        await control.update_job(workspace, jobs[name], action="succeed")

    def changes_shown() -> None:
        refs = list_refs(kube, JOB, namespace)
        for name in changed:
            assert _phase(refs[name]) == "Succeeded", name
            assert condition(refs[name], "Complete")["status"] == "True"

    await eventually(changes_shown, what="the changed jobs Succeeded", within=60)
    await _sweeps(control, workspaces, 2)
    gets = await _count(control, "GetRayJob", *workspaces) - gets_before
    # one Get per changed ref (a change seen by two sweeps before its Get ended may
    # cost one more), far below the number of refs
    assert len(changed) <= gets <= len(changed) + 2, gets
    after = _versions(kube, namespace)
    moved = sorted(key for key, version in after.items() if version != versions[key])
    assert moved == sorted(f"{JOB}/{name}" for name in changed)
    assert operator.metric("rayref_status_writes_total") - writes_before == len(changed)
    for name, obj in list_refs(kube, JOB, namespace).items():
        if name not in changed:
            assert _phase(obj) == ("Running" if "run" in name else "Succeeded"), name

    # A restart re-verifies every ref from the lists: no job Get, no write.
    operator.stop()
    gets_before = await _count(control, "GetRayJob", *workspaces)
    operator = _start(operator_factory, kube, namespace, simulator.base_url)
    total = len(jobs) + 2

    def all_checked() -> None:
        assert operator.metric("rayref_refs_checked") == total

    await eventually(all_checked, what="every ref re-verified", within=60)
    await _sweeps(control, workspaces, 1)
    assert await _count(control, "GetRayJob", *workspaces) == gets_before
    assert _versions(kube, namespace) == after
    assert operator.metric("rayref_status_writes_total") == 0
    assert operator.metric("rayref_polls_total", result="listed-unchanged") >= len(jobs)


async def test_a_list_that_keeps_failing_shows_on_every_ref_without_a_get_each(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    """ListRayJob answers garbage for longer than the refs' interval: every ref says
    so (Synced=False, InvalidResponse, last state kept), the operator keeps trying the
    list rather than a Get per ref, and once the list works, one Get per ref puts
    Synced back."""
    kube.apply_crds()
    control = simulator.control
    workspace = await control.create_workspace()
    views = await control.create_jobs(
        workspace,
        [
            control.job_spec(submission_id=f"rj-fail{i:04d}", script=RUNNING_SCRIPT)
            for i in range(6)
        ],
    )
    names = {view.id.removeprefix("rj-"): view.id for view in views}
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        *(
            job_ref(namespace, name, workspace, submission, pollIntervalSeconds=5)
            for name, submission in names.items()
        ),
    )
    _start(operator_factory, kube, namespace, simulator.base_url)

    def synced_as(status: str, reason: str | None = None) -> Callable[[], None]:
        def probe() -> None:
            refs = list_refs(kube, JOB, namespace)
            assert len(refs) == len(names)
            for name, obj in refs.items():
                assert _phase(obj) == "Running", name
                synced = condition(obj, "Synced")
                assert synced["status"] == status, (name, synced)
                if reason is not None:
                    assert synced["reason"] == reason, (name, synced)

        return probe

    await eventually(synced_as("True"), what="every ref read", within=60)
    await _sweeps(control, (workspace,), 1)
    gets_before = await _count(control, "GetRayJob", workspace)
    try:
        await control.set_faults(operation="ListRayJob", malformed_share=1.0)
        await eventually(
            synced_as("False", "InvalidResponse"), what="the failing list shown", within=60
        )
        message = condition(list_refs(kube, JOB, namespace)[next(iter(names))], "Synced")["message"]
        assert "ListRayJob" in message or "response" in message.lower(), message
        versions = _versions(kube, namespace)
        await _sweeps(control, (workspace,), 2)
        # Reported once; meanwhile only the list is tried, not a Get per ref.
        assert await _count(control, "GetRayJob", workspace) == gets_before
        assert _versions(kube, namespace) == versions
    finally:
        await control.clear_faults()
    await eventually(synced_as("True"), what="Synced again after the list recovered", within=60)
    gets = await _count(control, "GetRayJob", workspace) - gets_before
    assert len(names) <= gets <= len(names) + 2, gets
