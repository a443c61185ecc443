"""RayJobRefSet and RayClusterRefSet end to end: real kube-apiserver and
kube-controller-manager (garbage collection), the simulator over HTTP, the operator as a
subprocess with the list sweeps (its default). Each test has its own namespace, workspace
and operator (watching that namespace only), so killing one for the restart test
touches nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from rayref.api.kinds import (
    API_VERSION,
    CLUSTER_KIND,
    CLUSTER_SET_KIND,
    GROUP,
    JOB_KIND,
    JOB_SET_KIND,
    SET_LABEL,
    SET_PLURALS,
    VERSION,
)
from rayref.discovery.naming import ref_name
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.apiproxy import ApiProxy
from tests.support.refs import (
    apply,
    credentials_secret,
    eventually,
    job_ref,
    list_refs,
    ref_exists,
)

INTERVAL = 5  # the template's pollIntervalSeconds: the fastest the API allows
RUNNING = {"submittedSeconds": 1, "pendingSeconds": 1, "runningSeconds": 100_000}
SETTINGS = {"POLL_STRATEGY": "list", "REQUEST_RATE": "200", "REQUEST_BURST": "400"}


def ref_set(kind: str, namespace: str, name: str, workspace_id: str, **spec: Any) -> dict[str, Any]:
    template = {"pollIntervalSeconds": INTERVAL, **spec.pop("template", {})}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workspaceId": workspace_id,
            "credentialsSecretRef": {"name": "creds"},
            "template": template,
            **spec,
        },
    }


def get_set(kube: KubeTestBed, kind: str, namespace: str, name: str) -> dict[str, Any]:
    with kube.api_client() as api:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, SET_PLURALS[kind], name
        )
    return cast(dict[str, Any], obj)


def members(kube: KubeTestBed, kind: str, namespace: str, set_name: str) -> dict[str, str]:
    """remote ID -> ref name, for the refs labelled with the set's name."""
    id_key = "submissionId" if kind == JOB_KIND else "clusterId"
    return {
        ref["spec"][id_key]: name
        for name, ref in list_refs(kube, kind, namespace).items()
        if (ref["metadata"].get("labels") or {}).get(SET_LABEL) == set_name
    }


def set_condition(obj: dict[str, Any], type_: str) -> tuple[str, str]:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition["type"] == type_:
            return condition["status"], condition["reason"]
    return "", ""


async def wait_members(
    kube: KubeTestBed,
    kind: str,
    namespace: str,
    set_name: str,
    expected: set[str],
    within: float = 60,
) -> dict[str, str]:
    def probe() -> dict[str, str]:
        found = members(kube, kind, namespace, set_name)
        assert set(found) == expected, f"{len(found)} refs: {sorted(found)[:5]}"
        return found

    return await eventually(probe, what=f"the refs of {set_name}", within=within)


async def wait_set(
    kube: KubeTestBed, kind: str, namespace: str, name: str, within: float = 60, **wanted: Any
) -> dict[str, Any]:
    """Wait until the set's status shows `wanted` (counts, or a condition as a tuple)."""

    def probe() -> dict[str, Any]:
        obj = get_set(kube, kind, namespace, name)
        status = obj.get("status") or {}
        for key, value in wanted.items():
            shown = set_condition(obj, key) if isinstance(value, tuple) else status.get(key)
            assert shown == value, f"{key} is {shown!r}: {status}"
        return obj

    return await eventually(probe, what=f"{name} showing {wanted}", within=within)


@pytest.fixture
def proxy(kube: KubeTestBed, tmp_path: Path) -> Iterator[ApiProxy]:
    recording = ApiProxy(kube, tmp_path, "sets")
    try:
        yield recording
    finally:
        recording.close()


@pytest.fixture
def start_operator(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    proxy: ApiProxy,
) -> Iterator[Any]:
    kube.apply_crds()
    apply(kube, credentials_secret(namespace, simulator.credentials))

    def start() -> OperatorProcess:
        return operator_factory.start(
            kubeconfig=proxy.kubeconfig,
            endpoint=simulator.base_url,
            namespaces=[namespace],
            settings=SETTINGS,
        )

    yield start


@pytest.fixture
def operator(start_operator: Any) -> OperatorProcess:
    started: OperatorProcess = start_operator()
    return started


async def test_a_set_mirrors_matching_jobs_leaves_hand_written_refs_alone_and_goes_with_its_refs(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    etl_a = await control.create_job(workspace, name="etl-a", script=RUNNING)
    etl_b = await control.create_job(workspace, name="etl-b", script=RUNNING)
    adhoc = await control.create_job(workspace, name="adhoc", script=RUNNING)
    by_hand = await control.create_job(workspace, name="etl-by-hand", script=RUNNING)
    apply(kube, job_ref(namespace, "mine", workspace, by_hand.id))
    apply(
        kube,
        ref_set(
            JOB_SET_KIND,
            namespace,
            "nightly",
            workspace,
            selector={"namePrefix": "etl-"},
            template={"labels": {"team": "data"}},
        ),
    )
    found = await wait_members(kube, JOB_KIND, namespace, "nightly", {etl_a.id, etl_b.id})
    assert found == {etl_a.id: ref_name(etl_a.id), etl_b.id: ref_name(etl_b.id)}
    owner = get_set(kube, JOB_SET_KIND, namespace, "nightly")
    refs = list_refs(kube, JOB_KIND, namespace)
    for name in found.values():
        metadata = refs[name]["metadata"]
        assert metadata["labels"]["team"] == "data"
        (reference,) = metadata["ownerReferences"]
        assert reference["uid"] == owner["metadata"]["uid"] and reference["controller"] is True
    assert "ownerReferences" not in refs["mine"]["metadata"]  # never adopted
    await wait_set(
        kube, JOB_SET_KIND, namespace, "nightly", matched=3, created=2, Synced=("True", "Listed")
    )

    # The set's refs mirror their jobs like any ref.
    def mirrored() -> None:
        current = list_refs(kube, JOB_KIND, namespace)
        for name in found.values():
            assert (current[name].get("status") or {}).get("phase") == "Running"

    await eventually(mirrored, what="the set's refs mirroring their jobs")

    # Renamed remote jobs: one now matches and gets a ref; one no longer matches and keeps its.
    await control.update_job(workspace, adhoc.id, fields={"name": "etl-late"})
    await control.update_job(workspace, etl_a.id, fields={"name": "renamed"})
    await wait_members(kube, JOB_KIND, namespace, "nightly", {etl_a.id, etl_b.id, adhoc.id})
    await wait_set(kube, JOB_SET_KIND, namespace, "nightly", matched=3, created=3)

    # Deleting the set deletes its refs (the garbage collector), never the hand-written one.
    kube.kubectl("delete", "rayjobrefset", "nightly", "-n", namespace, "--wait=false")
    await wait_members(kube, JOB_KIND, namespace, "nightly", set())
    assert ref_exists(kube, JOB_KIND, namespace, "mine")


async def test_finished_refs_expire_by_the_ttl_after_the_jobs_end(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    # Jobs that ended two seconds ago by the simulator's clock, wherever it stands.
    clock = await control.clock()
    age = (clock.sim_time - clock.wall_time) / 1000 + 4
    quick = {"submittedSeconds": 0, "pendingSeconds": 1, "runningSeconds": 1}
    done = await control.create_job(workspace, name="done", script=quick, age_seconds=age)
    alone = await control.create_job(workspace, name="alone", script=quick, age_seconds=age)
    running = await control.create_job(workspace, name="running", script=RUNNING)
    # A hand-written ref with a TTL of its own expires too; the set leaves it alone.
    apply(kube, job_ref(namespace, "own-ttl", workspace, alone.id, ttlSecondsAfterFinished=0))
    apply(
        kube,
        ref_set(
            JOB_SET_KIND,
            namespace,
            "short",
            workspace,
            selector={"names": ["done", "running"]},
            ttlSecondsAfterFinished=20,
        ),
    )
    await wait_members(kube, JOB_KIND, namespace, "short", {done.id, running.id})

    # The finished job's ref goes by the TTL; the running one's stays.
    await wait_members(kube, JOB_KIND, namespace, "short", {running.id})

    def own_ttl_gone() -> None:
        assert not ref_exists(kube, JOB_KIND, namespace, "own-ttl")

    await eventually(own_ttl_gone, what="the ref with its own TTL deleted")
    await wait_set(kube, JOB_SET_KIND, namespace, "short", created=1, active=1, finished=0)


async def test_the_cap_stalls_the_set_and_raising_it_creates_the_rest(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    jobs = [await control.create_job(workspace, name=f"j{i}", script=RUNNING) for i in range(4)]
    apply(kube, ref_set(JOB_SET_KIND, namespace, "capped", workspace, maxRefs=2))
    await wait_set(
        kube,
        JOB_SET_KIND,
        namespace,
        "capped",
        matched=4,
        created=2,
        Stalled=("True", "LimitReached"),
    )
    assert len(members(kube, JOB_KIND, namespace, "capped")) == 2
    apply(kube, ref_set(JOB_SET_KIND, namespace, "capped", workspace, maxRefs=10))
    await wait_members(kube, JOB_KIND, namespace, "capped", {job.id for job in jobs})
    await wait_set(kube, JOB_SET_KIND, namespace, "capped", Stalled=("False", "WithinLimit"))


async def test_a_failing_listing_deletes_nothing_and_says_so(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    first = await control.create_job(workspace, name="a", script=RUNNING)
    apply(kube, ref_set(JOB_SET_KIND, namespace, "flaky", workspace))
    await wait_members(kube, JOB_KIND, namespace, "flaky", {first.id})
    await control.set_faults(operation="ListRayJob", server_error_share=1.0)
    late = await control.create_job(workspace, name="b", script=RUNNING)
    await wait_set(kube, JOB_SET_KIND, namespace, "flaky", Synced=("False", "RemoteError"))
    assert set(members(kube, JOB_KIND, namespace, "flaky")) == {first.id}
    await control.clear_faults()
    await wait_members(kube, JOB_KIND, namespace, "flaky", {first.id, late.id})
    await wait_set(kube, JOB_SET_KIND, namespace, "flaky", Synced=("True", "Listed"))


async def test_missing_credentials_create_nothing(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    await control.create_job(workspace, name="a", script=RUNNING)
    body = ref_set(JOB_SET_KIND, namespace, "keyless", workspace)
    body["spec"]["credentialsSecretRef"] = {"name": "no-such-secret"}
    apply(kube, body)
    await wait_set(
        kube,
        JOB_SET_KIND,
        namespace,
        "keyless",
        Synced=("False", "CredentialsNotFound"),
        Stalled=("True", "CredentialsNotFound"),
    )
    assert members(kube, JOB_KIND, namespace, "keyless") == {}


async def test_a_cluster_set_mirrors_clusters_and_lets_a_vanished_ones_ref_go(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, operator: OperatorProcess
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    kept = await control.create_cluster(workspace, name="serving")
    vanishing = await control.create_cluster(workspace, name="scratch")
    apply(kube, ref_set(CLUSTER_SET_KIND, namespace, "all", workspace, ttlSecondsAfterFinished=0))
    await wait_members(kube, CLUSTER_KIND, namespace, "all", {kept.id, vanishing.id})
    await control.delete_cluster(workspace, vanishing.id)
    await wait_members(kube, CLUSTER_KIND, namespace, "all", {kept.id})


@pytest.mark.slow
async def test_a_thousand_jobs_appearing_at_once_get_one_ref_each_from_one_sweep(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator: OperatorProcess,
    proxy: ApiProxy,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, ref_set(JOB_SET_KIND, namespace, "burst", workspace, maxRefs=2000))
    await wait_set(kube, JOB_SET_KIND, namespace, "burst", matched=0, Synced=("True", "Listed"))
    appeared = time.monotonic()
    specs = [control.job_spec(name=f"burst-{i}", script=RUNNING) for i in range(1000)]
    jobs = await control.create_jobs(workspace, specs)
    # A thousand creations: 60 s on an idle machine, not with six test workers on two cores.
    await wait_set(kube, JOB_SET_KIND, namespace, "burst", within=240, matched=1000, created=1000)
    assert set(members(kube, JOB_KIND, namespace, "burst")) == {job.id for job in jobs}
    since = [sent for sent in proxy.requests() if sent.received >= appeared]
    creates = [s for s in since if s.method == "POST" and s.path.endswith("/rayjobrefs")]
    status_writes = [s for s in since if s.method == "PATCH" and "/rayjobrefsets/burst" in s.path]
    # One POST per job, no retry and no duplicate; and one sync made them all: the set's
    # status went from 0 to 1,000 in a single write (refs made over several intervals
    # would show in several).
    assert len(creates) == 1000 and all(sent.status == 201 for sent in creates)
    assert len(status_writes) == 1


@pytest.mark.slow
async def test_a_restarted_operator_finishes_the_job_without_duplicates(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    start_operator: Any,
    proxy: ApiProxy,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    specs = [control.job_spec(name=f"r-{i}", script=RUNNING) for i in range(400)]
    jobs = {job.id for job in await control.create_jobs(workspace, specs)}
    first: OperatorProcess = start_operator()
    apply(kube, ref_set(JOB_SET_KIND, namespace, "restart", workspace))

    def some_created() -> None:
        assert len(members(kube, JOB_KIND, namespace, "restart")) > 0

    await eventually(some_created, what="the first refs", every=0.05)
    # The creations still in flight never arrive: the operator dies in the middle.
    proxy.hang(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/rayjobrefs")
    first.kill()
    proxy.heal()
    assert len(members(kube, JOB_KIND, namespace, "restart")) < len(jobs)
    start_operator()
    # 400 creations after a restart: 120 s was not enough under six xdist workers on 2 cores.
    found = await wait_members(kube, JOB_KIND, namespace, "restart", jobs, within=300)
    refs = list_refs(kube, JOB_KIND, namespace)
    assert len(refs) == len(jobs) == len(set(found.values()))
    await wait_set(kube, JOB_SET_KIND, namespace, "restart", matched=400, created=400)
