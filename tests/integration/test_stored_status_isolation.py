"""A ref's own path among tenants, end to end: real kube-apiserver + etcd, the simulator
over HTTP, the operator as a subprocess watching every namespace.

- A stored status this version cannot read (wrong types, as an operator of an older CRD
  could have stored it) beside refs listed after it and another tenant's witness: the
  others get their status and keep following their jobs, the bad one is repaired, and
  the operator says so in a bounded number of log lines and a metric.
- A watch that cannot list (403 on one namespace): the other namespace is served, the
  readiness probe fails after a while (liveness does not), a bounded number of warnings,
  the metrics; healed, the refs are seen and the operator is ready again.
- Remote answers at the edges of their types: a time in the year 1 is mirrored as a
  valid time, one past the year 9999 is an InvalidResponse on its own ref only, and the
  witness sharing the workspace's sweep keeps updating.
"""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.api.kinds import GROUP, JOB_KIND, JOB_PLURAL, VERSION
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.apiproxy import ApiProxy
from tests.support.refs import (
    apply,
    condition,
    credentials_secret,
    eventually,
    get_ref,
    job_ref,
    synced,
    wait_status,
)

SETTINGS = {"POLL_STRATEGY": "list", "REQUEST_RATE": "200", "REQUEST_BURST": "400"}
RUNNING = {"submittedSeconds": 1, "pendingSeconds": 1, "runningSeconds": 100_000}
CRD_NAME = f"{JOB_PLURAL}.{GROUP}"
# What an older operator, under a looser schema, might have left in a status: every
# value the wrong type for this version's reader.
UNREADABLE = {
    "phase": "Running",
    "conditions": "Synced",
    "usage": 7,
    "observedGeneration": "1",
    "lastSyncTime": "yesterday",
}
YEAR_1_MS = -62135596800000
YEAR_10000_MS = 253402300800000


@pytest.fixture
def witness_namespace(kube: KubeTestBed) -> Iterator[str]:
    """Another tenant, whose name sorts after the test's namespace in a listing."""
    with kube.namespaces(f"zz-witness-{uuid.uuid4().hex[:8]}") as (name,):
        yield name


def start(
    factory: OperatorFactory, kube: KubeTestBed, simulator: SimulatorSession
) -> OperatorProcess:
    kube.apply_crds()
    return factory.start(kubeconfig=kube.kubeconfig, endpoint=simulator.base_url, settings=SETTINGS)


@contextmanager
def loose_status_schema(kube: KubeTestBed) -> Iterator[None]:
    """The RayJobRef CRD with a status of any shape, as an older version's might have
    been; put back exactly as it was afterwards (the stored statuses stay as written)."""
    saved = json.loads(kube.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        saved["metadata"].pop(key, None)
    saved.pop("status", None)
    loose = copy.deepcopy(saved)
    schema = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["status"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    kube.kubectl("replace", "-f", "-", input=json.dumps(loose))
    try:
        yield
    finally:
        kube.kubectl("replace", "-f", "-", input=json.dumps(saved))


async def store_status(kube: KubeTestBed, namespace: str, name: str, status: Any) -> None:
    """Write `status` through the status subresource (retried while the API server
    still validates against the schema it had)."""

    def write() -> None:
        with kube.api_client() as api_client:
            try:
                client.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, JOB_PLURAL, name, {"status": status}
                )
            except ApiException as error:
                raise AssertionError(f"{error.status}: {error.body}") from None
        stored = get_ref(kube, JOB_KIND, namespace, name)["status"]
        assert stored["conditions"] == status["conditions"], stored

    await eventually(write, what="the old-shaped status stored", within=30)


def readyz(operator: OperatorProcess, path: str = "/readyz") -> int:
    url = f"http://127.0.0.1:{operator.health_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def synced_true(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions")
    return isinstance(conditions, list) and synced(obj) == ("True", "Synced")


def phase_is(phase: str) -> Any:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase and synced_true(obj)


async def test_an_unreadable_stored_status_is_repaired_and_blocks_no_other_ref(
    kube: KubeTestBed,
    namespace: str,
    witness_namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    jobs = {
        name: await control.create_job(workspace, name=name, script=RUNNING)
        for name in ("a-broken", "b-after", "c-after", "witness")
    }
    kube.apply_crds()
    for ns in (namespace, witness_namespace):
        apply(kube, credentials_secret(ns, simulator.credentials))
    # "a-broken" is listed first in its namespace, its namespace before the witness's.
    for name in ("a-broken", "b-after", "c-after"):
        apply(kube, job_ref(namespace, name, workspace, jobs[name].id))
    apply(kube, job_ref(witness_namespace, "witness", workspace, jobs["witness"].id))
    with loose_status_schema(kube):
        await store_status(kube, namespace, "a-broken", UNREADABLE)

    operator = start(operator_factory, kube, simulator)

    for ns, name in [
        (namespace, "b-after"),
        (namespace, "c-after"),
        (witness_namespace, "witness"),
    ]:
        await wait_status(kube, JOB_KIND, ns, name, phase_is("Running"), what=f"{name} Running")
    # The unreadable one is rebuilt by its next writes: a status of this version's shape.
    repaired = await wait_status(
        kube,
        JOB_KIND,
        namespace,
        "a-broken",
        lambda o: synced_true(o) and isinstance(o["status"].get("usage", {}), dict),
        what="the unreadable status repaired",
    )
    status = repaired["status"]
    assert status["observedGeneration"] == repaired["metadata"]["generation"]
    assert status.get("lastSyncTime") != "yesterday"
    assert condition(repaired, "Ready")["status"] == "False"  # running, not yet done

    # The others keep following their jobs.
    for name in ("c-after", "witness"):
        await control.update_job(workspace, jobs[name].id, action="fail")
    await wait_status(kube, JOB_KIND, namespace, "c-after", phase_is("Failed"), what="c Failed")
    await wait_status(
        kube, JOB_KIND, witness_namespace, "witness", phase_is("Failed"), what="witness Failed"
    )

    # Said once, counted, and no watch was ever stuck on it.
    logs = operator.logs()
    about = [line for line in logs.splitlines() if "a-broken" in line and "contained" in line]
    assert 1 <= len(about) <= 2, about
    assert "status.conditions: not a list" in about[0]
    assert operator.metric("rayref_object_faults_total", kind=JOB_KIND, step="read-status") >= 1
    # The watch never failed on the ref (restoring the CRD may answer 429 for a moment:
    # "storage is (re)initializing").
    failures = [line for line in logs.splitlines() if "rayref.kube.watch" in line]
    assert all("works again" in line or "KubeUnavailable" in line for line in failures), failures
    assert operator.metric("rayref_watch_healthy", kind=JOB_KIND) == 1
    assert readyz(operator) == 200


async def test_remote_times_at_the_calendars_edges_stay_on_their_own_refs(
    kube: KubeTestBed,
    namespace: str,
    witness_namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    year_1 = await control.create_job(workspace, name="year-1", script=RUNNING)
    beyond = await control.create_job(workspace, name="beyond", script=RUNNING)
    witness = await control.create_job(workspace, name="witness", script=RUNNING)
    operator = start(operator_factory, kube, simulator)
    for ns in (namespace, witness_namespace):
        apply(kube, credentials_secret(ns, simulator.credentials))
    apply(
        kube,
        job_ref(namespace, "year-1", workspace, year_1.id),
        job_ref(namespace, "beyond", workspace, beyond.id),
        job_ref(witness_namespace, "witness", workspace, witness.id),
    )
    for ns, name in [(namespace, "year-1"), (namespace, "beyond"), (witness_namespace, "witness")]:
        await wait_status(kube, JOB_KIND, ns, name, phase_is("Running"), what=f"{name} Running")

    await control.update_job(workspace, year_1.id, fields={"startTime": YEAR_1_MS})
    await control.update_job(
        workspace, beyond.id, fields={"startTime": YEAR_10000_MS, "duration": 2**63}
    )

    # The year 1 is a time like any other (it was written "1-01-01", refused by the API
    # server on every poll).
    await wait_status(
        kube,
        JOB_KIND,
        namespace,
        "year-1",
        lambda o: (o.get("status") or {}).get("startTime") == "0001-01-01T00:00:00Z",
        what="the year 1 mirrored",
    )
    # Past the year 9999 there is no time to write: the ref says which field, and keeps
    # its last good status.
    broken = await wait_status(
        kube,
        JOB_KIND,
        namespace,
        "beyond",
        lambda o: synced(o) == ("False", "InvalidResponse"),
        what="beyond: InvalidResponse",
    )
    assert "startTime" in condition(broken, "Synced")["message"]
    assert broken["status"]["phase"] == "Running"

    # The witness shares the workspace's sweep with both, and keeps following its job.
    await control.update_job(workspace, witness.id, action="succeed")
    await wait_status(
        kube,
        JOB_KIND,
        witness_namespace,
        "witness",
        phase_is("Succeeded"),
        what="the witness Succeeded",
    )
    assert "refused by the API server" not in operator.logs()
    assert readyz(operator) == 200


@pytest.fixture
def proxy(kube: KubeTestBed, tmp_path: Path) -> Iterator[ApiProxy]:
    recording = ApiProxy(kube, tmp_path, "stuck-watch")
    try:
        yield recording
    finally:
        recording.close()


@pytest.mark.slow
async def test_a_watch_that_cannot_list_fails_readiness_and_blocks_no_other_namespace(
    kube: KubeTestBed,
    namespace: str,
    witness_namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    proxy: ApiProxy,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    blocked, open_ns = namespace, witness_namespace
    jobs = {
        ns: await control.create_job(workspace, name=ns, script=RUNNING)
        for ns in (blocked, open_ns)
    }
    kube.apply_crds()
    for ns in (blocked, open_ns):
        apply(kube, credentials_secret(ns, simulator.credentials))
        apply(kube, job_ref(ns, "ref", workspace, jobs[ns].id))
    # As when the RBAC does not cover one of RAYREF_WATCH_NAMESPACES.
    refused = f"/apis/{GROUP}/{VERSION}/namespaces/{blocked}/{JOB_PLURAL}"
    proxy.refuse(refused)
    operator = operator_factory.start(
        kubeconfig=proxy.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=[blocked, open_ns],
        settings=SETTINGS,
    )

    # The other namespace is served all along; the blocked one's ref is not seen at all.
    await wait_status(kube, JOB_KIND, open_ns, "ref", phase_is("Running"), what="open ns Running")
    assert "status" not in get_ref(kube, JOB_KIND, blocked, "ref")
    assert readyz(operator) == 200  # a passing fault is no stall

    def not_ready() -> None:
        assert readyz(operator) == 503
        assert operator.metric("rayref_watch_healthy", kind=JOB_KIND) == 0

    await eventually(not_ready, what="readiness failing on the stuck watch", within=120, every=2)
    assert operator.metric("rayref_watch_failures_total", kind=JOB_KIND) >= 2
    warnings = [line for line in operator.logs().splitlines() if f"watch {refused} failed" in line]
    assert 1 <= len(warnings) <= 2, warnings  # not one per retry
    assert "403" in warnings[0]
    # Liveness stays: a restart would stop the namespaces that work.
    assert readyz(operator, "/healthz") == 200

    proxy.heal()
    await wait_status(kube, JOB_KIND, blocked, "ref", phase_is("Running"), what="healed: Running")

    def ready() -> None:
        assert readyz(operator) == 200
        assert operator.metric("rayref_watch_healthy", kind=JOB_KIND) == 1

    await eventually(ready, what="ready again", within=60)
    assert f"watch {refused} works again" in operator.logs()
