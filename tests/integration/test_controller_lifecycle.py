"""The operator process itself: stopped, killed, restarted, scoped to namespaces.

Each test starts its own operator(s), so that stopping one never affects another test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping, Sequence

import pytest

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    POLL,
    apply,
    condition,
    credentials_secret,
    events_of,
    get_ref,
    job_ref,
    reasons,
    ref_exists,
    synced,
    wait_polls,
    wait_status,
)

RUNNING_FOREVER = {"submittedSeconds": 0, "pendingSeconds": 0, "outcome": None}


@pytest.fixture
def other_namespaces(kube: KubeTestBed) -> Iterator[list[str]]:
    """Two more namespaces for tests that need several; deleted afterwards."""
    with kube.namespaces(*(f"extra-{uuid.uuid4().hex[:8]}" for _ in range(2))) as names:
        yield names


def start(
    factory: OperatorFactory,
    kube: KubeTestBed,
    simulator: SimulatorSession,
    *,
    namespaces: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> OperatorProcess:
    kube.apply_crds()
    return factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=namespaces,
        settings=settings,
        env=env,
    )


async def test_a_ref_is_deleted_at_once_while_the_operator_is_down(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    operator = start(operator_factory, kube, simulator)
    job = await simulator.control.create_job(simulator.workspace_id, script=RUNNING_FOREVER)
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "orphan", simulator.workspace_id, job.id),
    )
    obj = await wait_status(
        kube, JOB, namespace, "orphan", lambda o: synced(o)[0] == "True", what="synced"
    )
    assert not obj["metadata"].get("finalizers")
    operator.kill()
    kube.kubectl("delete", "rayjobref", "orphan", "-n", namespace, "--wait=true", "--timeout=15s")
    assert not ref_exists(kube, JOB, namespace, "orphan")


async def test_after_a_kill_the_new_operator_catches_up_and_rewrites_nothing_else(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    first = start(operator_factory, kube, simulator)
    steady = [await control.create_job(workspace, script=RUNNING_FOREVER) for _ in range(3)]
    changing = await control.create_job(workspace, script=RUNNING_FOREVER)
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        *(job_ref(namespace, f"steady-{i}", workspace, job.id) for i, job in enumerate(steady)),
        job_ref(namespace, "changing", workspace, changing.id),
    )
    names = [f"steady-{i}" for i in range(3)]
    for name in [*names, "changing"]:
        await wait_status(
            kube,
            JOB,
            namespace,
            name,
            lambda o: (o.get("status") or {}).get("phase") == "Running",
            what=f"{name} Running",
        )
    versions = {
        name: get_ref(kube, JOB, namespace, name)["metadata"]["resourceVersion"] for name in names
    }

    first.kill()
    await control.update_job(workspace, changing.id, action="succeed")
    start(operator_factory, kube, simulator)
    await wait_status(
        kube,
        JOB,
        namespace,
        "changing",
        lambda o: o["status"].get("phase") == "Succeeded",
        what="the change made while the operator was down",
    )
    # every ref polled again at least once by the new operator
    await wait_polls(control, workspace, "GetRayJob", 2 * len(names), what="re-verification")
    for name in names:
        obj = get_ref(kube, JOB, namespace, name)
        assert obj["metadata"]["resourceVersion"] == versions[name], name
        assert reasons(events_of(kube, namespace, name)).count("JobRunning") == 1


async def test_operator_wide_credentials_serve_only_the_listed_namespaces(
    kube: KubeTestBed,
    namespace: str,
    other_namespaces: list[str],
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    allowed, (denied, unwatched) = namespace, other_namespaces
    start(
        operator_factory,
        kube,
        simulator,
        namespaces=[allowed, denied],
        settings={"SHARED_CREDENTIALS_NAMESPACES": allowed},
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": simulator.credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": simulator.credentials.access_key_secret,
        },
    )
    job = await control.create_job(workspace, script=RUNNING_FOREVER)
    apply(kube, *(job_ref(ns, "tenant", workspace, job.id, secret=None) for ns in other_namespaces))
    apply(kube, job_ref(allowed, "tenant", workspace, job.id, secret=None))

    await wait_status(
        kube, JOB, allowed, "tenant", lambda o: synced(o)[0] == "True", what="allowed namespace"
    )
    obj = await wait_status(
        kube, JOB, denied, "tenant", lambda o: synced(o)[0] == "False", what="other namespace"
    )
    sync = condition(obj, "Synced")
    assert sync["reason"] == "CredentialsNotFound"
    assert "RAYREF_SHARED_CREDENTIALS_NAMESPACES" in sync["message"]
    assert denied in sync["message"]
    await wait_polls(control, workspace, "GetRayJob", 2, what="more polls")
    # a namespace the operator does not watch is left alone
    assert "status" not in get_ref(kube, JOB, unwatched, "tenant")


async def test_the_operator_rides_out_an_api_server_outage(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    operator = start(operator_factory, kube, simulator)
    job = await control.create_job(workspace, script=RUNNING_FOREVER)
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "outage", workspace, job.id),
    )
    await wait_status(
        kube,
        JOB,
        namespace,
        "outage",
        lambda o: (o.get("status") or {}).get("phase") == "Running",
        what="Running",
    )
    kube.stop_apiserver()
    try:
        await control.update_job(workspace, job.id, action="succeed")
        # A fixed outage on purpose, three intervals long: polls fail meanwhile (no Secret,
        # no status write), and the change must show once the apiserver is back.
        await asyncio.sleep(3 * POLL)
    finally:
        kube.start_apiserver()
    obj = await wait_status(
        kube,
        JOB,
        namespace,
        "outage",
        lambda o: o["status"].get("phase") == "Succeeded",
        what="the change made during the outage",
        within=120,
    )
    assert synced(obj) == ("True", "Synced")
    assert operator.running
    assert reasons(events_of(kube, namespace, "outage")).count("JobSucceeded") == 1
