"""RayJobRef end to end: real kube-apiserver, the simulator over HTTP, the operator as a
subprocess. Every scenario has its own namespace and workspace; one operator serves them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from rayref.api.kinds import JOB_KIND as JOB
from rayref.emr.credentials import Credentials
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    apply,
    condition,
    credentials_secret,
    events_of,
    frozen_clock,
    get_ref,
    job_ref,
    reasons,
    ref_exists,
    replace,
    synced,
    wait_polls,
    wait_status,
)

SLOW_SCRIPT = {
    "submittedSeconds": 100,
    "pendingSeconds": 100,
    "runningSeconds": 100,
    "clusterReleaseSeconds": 100,
    "cuHoursDelaySeconds": 100,
}

pytestmark = pytest.mark.usefixtures("shared_operator")


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


async def test_a_job_ref_walks_through_every_status_of_a_successful_job(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await control.create_job(workspace, name="walk", script=SLOW_SCRIPT)
        apply(kube, job_ref(namespace, "walk", workspace, job.id))

        obj = await wait_status(
            kube, JOB, namespace, "walk", phase_is("Submitted"), what="Submitted"
        )
        assert synced(obj) == ("True", "Synced")
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        assert condition(obj, "Reconciling")["status"] == "True"
        for phase in ("Pending", "Running"):
            await control.advance_clock(100)
            obj = await wait_status(kube, JOB, namespace, "walk", phase_is(phase), what=phase)
        assert obj["status"]["clusterState"] == "Running"
        assert "startTime" in obj["status"]

        await control.advance_clock(100)
        kube.kubectl(
            "wait", "--for=condition=Complete", "rayjobref/walk", "-n", namespace, "--timeout=60s"
        )
        obj = get_ref(kube, JOB, namespace, "walk")
        assert obj["status"]["phase"] == "Succeeded"
        assert condition(obj, "Ready")["status"] == "True"
        assert condition(obj, "Failed")["status"] == "False"
        assert "endTime" in obj["status"]

        # A finished job is polled slowly (docs/status.md); a spec change polls at once.
        await control.advance_clock(100)
        apply(kube, job_ref(namespace, "walk", workspace, job.id, pollIntervalSeconds=6))
        await wait_status(
            kube,
            JOB,
            namespace,
            "walk",
            lambda o: o["status"].get("clusterState") == "Deleted",
            what="the job's cluster Deleted",
        )
        await control.advance_clock(100)
        apply(kube, job_ref(namespace, "walk", workspace, job.id, pollIntervalSeconds=7))
        obj = await wait_status(
            kube,
            JOB,
            namespace,
            "walk",
            lambda o: "cuHours" in (o["status"].get("usage") or {}),
            what="usage reported",
        )
    assert obj["status"]["usage"]["cuHours"] > 0
    assert "token=" not in obj["status"]["dashboardUrl"]
    seen = reasons(events_of(kube, namespace, "walk"))
    for reason in ("JobSubmitted", "JobPending", "JobRunning", "JobSucceeded", "UsageReported"):
        assert seen.count(reason) == 1, seen
    table = kube.kubectl("get", "rayref", "-n", namespace).stdout
    assert "Succeeded" in table and "Deleted" in table
    print(table)
    print(kube.kubectl("get", "rayref", "-n", namespace, "-o", "wide").stdout)


async def test_failed_cancelled_and_timed_out_jobs_end_with_condition_failed(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        jobs = {
            name: await control.create_job(workspace, name=name, script={"outcome": None})
            for name in ("fails", "cancelled", "times-out")
        }
        apply(kube, *(job_ref(namespace, name, workspace, job.id) for name, job in jobs.items()))
        for name in jobs:
            await wait_status(kube, JOB, namespace, name, phase_is("Submitted"), what=name)

        await control.update_job(workspace, jobs["fails"].id, action="fail", message="exit 1")
        await control.update_job(workspace, jobs["cancelled"].id, action="cancel")
        await control.update_job(workspace, jobs["times-out"].id, action="timeout")
        kube.kubectl(
            "wait", "--for=condition=Failed", "rayjobref/fails", "-n", namespace, "--timeout=60s"
        )
        await wait_status(
            kube, JOB, namespace, "cancelled", phase_is("Cancelling"), what="Cancelling"
        )
        await control.advance_clock(60)
        for name, phase in (
            ("fails", "Failed"),
            ("cancelled", "Cancelled"),
            ("times-out", "Timeout"),
        ):
            obj = await wait_status(kube, JOB, namespace, name, phase_is(phase), what=phase)
            failed = condition(obj, "Failed")
            assert (failed["status"], failed["reason"]) == ("True", phase)
            assert condition(obj, "Complete")["status"] == "False"
            assert condition(obj, "Stalled")["status"] == "True"
    failed_events = events_of(kube, namespace, "fails")
    assert [e["type"] for e in failed_events if e["reason"] == "JobFailed"] == ["Warning"]


async def test_a_missing_secret_says_so_and_recovers_once_it_exists(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    job = await simulator.control.create_job(simulator.workspace_id, script={"outcome": None})
    apply(kube, job_ref(namespace, "nosecret", simulator.workspace_id, job.id, secret="absent"))
    obj = await wait_status(
        kube, JOB, namespace, "nosecret", lambda o: synced(o)[0] == "False", what="Synced False"
    )
    sync = condition(obj, "Synced")
    assert sync["reason"] == "CredentialsNotFound"
    assert "absent" in sync["message"] and "does not exist" in sync["message"]
    assert obj["status"]["phase"] == "Unknown"

    apply(kube, credentials_secret(namespace, simulator.credentials, name="absent"))
    obj = await wait_status(
        kube, JOB, namespace, "nosecret", lambda o: synced(o)[0] == "True", what="recovered"
    )
    assert obj["status"]["phase"] in ("Submitted", "Pending", "Running")
    assert "SyncRecovered" in reasons(events_of(kube, namespace, "nosecret"))


async def test_a_remote_job_that_does_not_exist_is_remote_not_found_and_stalled(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "ghost", simulator.workspace_id, "rj-doesnotexist0001"),
    )
    obj = await wait_status(
        kube, JOB, namespace, "ghost", lambda o: synced(o)[0] == "False", what="Synced False"
    )
    assert synced(obj) == ("False", "RemoteNotFound")
    assert condition(obj, "Stalled")["status"] == "True"
    assert condition(obj, "Ready")["status"] == "False"


async def test_an_auth_failure_is_access_denied_and_leaks_no_secret(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    job = await simulator.control.create_job(simulator.workspace_id, script={"outcome": None})
    wrong = Credentials(simulator.credentials.access_key_id, "not-the-right-secret")
    apply(
        kube,
        credentials_secret(namespace, wrong),
        job_ref(namespace, "denied", simulator.workspace_id, job.id),
    )
    obj = await wait_status(
        kube, JOB, namespace, "denied", lambda o: synced(o)[0] == "False", what="Synced False"
    )
    assert synced(obj) == ("False", "AccessDenied")
    assert condition(obj, "Stalled")["status"] == "True"
    assert "not-the-right-secret" not in str(obj)
    warnings = [e for e in events_of(kube, namespace, "denied") if e["type"] == "Warning"]
    assert [(e["reason"], e.get("count")) for e in warnings] == [("AccessDenied", 1)]
    assert "not-the-right-secret" not in str(warnings)


async def test_throttling_shows_once_however_many_polls_then_clears(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control = simulator.control
    job = await control.create_job(simulator.workspace_id, script={"outcome": None})
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "throttled", simulator.workspace_id, job.id),
    )
    await wait_status(
        kube, JOB, namespace, "throttled", lambda o: synced(o)[0] == "True", what="first sync"
    )
    await control.set_faults(operation="GetRayJob", rate=0.001, burst=1, retry_after_ms=1000)
    try:
        obj = await wait_status(
            kube,
            JOB,
            namespace,
            "throttled",
            lambda o: synced(o) == ("False", "Throttled"),
            what="Throttled",
        )
        # the last known state is kept while the remote cannot be read
        assert obj["status"]["phase"] in ("Submitted", "Pending", "Running")
        await wait_polls(control, simulator.workspace_id, "GetRayJob", 3, what="more polls")
        # repeated identical failures neither write nor post again
        after = get_ref(kube, JOB, namespace, "throttled")
        assert after["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    finally:
        await control.clear_faults()
    await wait_status(
        kube, JOB, namespace, "throttled", lambda o: synced(o)[0] == "True", what="recovered"
    )
    throttled = [e for e in events_of(kube, namespace, "throttled") if e["reason"] == "Throttled"]
    assert [(e["type"], e.get("count")) for e in throttled] == [("Warning", 1)]


async def test_polls_that_find_nothing_new_write_nothing(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    job = await simulator.control.create_job(
        simulator.workspace_id, script={"submittedSeconds": 0, "pendingSeconds": 0, "outcome": None}
    )
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "steady", simulator.workspace_id, job.id),
    )
    obj = await wait_status(kube, JOB, namespace, "steady", phase_is("Running"), what="Running")
    version = obj["metadata"]["resourceVersion"]
    await wait_polls(
        simulator.control, simulator.workspace_id, "GetRayJob", 4, what="four more polls"
    )
    after = get_ref(kube, JOB, namespace, "steady")
    assert after["metadata"]["resourceVersion"] == version
    assert after["status"]["lastSyncTime"] == obj["status"]["lastSyncTime"]


async def test_a_rotated_secret_takes_effect_without_a_restart(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    shared_operator: OperatorProcess,
) -> None:
    control = simulator.control
    old = Credentials("LTAI5tROTATIONoldKEY0001", "rotation-old-secret-0001")
    new = Credentials("LTAI5tROTATIONnewKEY0001", "rotation-new-secret-0001")
    for key in (old, new):
        await control.add_key(key.access_key_id, key.access_key_secret)
    job = await control.create_job(simulator.workspace_id, script={"outcome": None})
    apply(
        kube,
        credentials_secret(namespace, old),
        job_ref(namespace, "rotate", simulator.workspace_id, job.id),
    )
    await wait_status(
        kube, JOB, namespace, "rotate", lambda o: synced(o)[0] == "True", what="synced"
    )
    await control.revoke_key(old.access_key_id)
    await wait_status(
        kube,
        JOB,
        namespace,
        "rotate",
        lambda o: synced(o) == ("False", "AccessDenied"),
        what="the revoked key refused",
    )
    replace(kube, credentials_secret(namespace, new, env_style=True))
    await wait_status(
        kube, JOB, namespace, "rotate", lambda o: synced(o)[0] == "True", what="new key used"
    )
    assert shared_operator.running
    assert shared_operator.proc.returncode is None


async def test_suspend_stops_polling_and_resume_catches_up(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        paused = await control.create_job(workspace, script=SLOW_SCRIPT)
        witness = await control.create_job(workspace, script={"outcome": None})
        apply(
            kube,
            job_ref(namespace, "paused", workspace, paused.id),
            job_ref(namespace, "witness", workspace, witness.id),
        )
        await wait_status(kube, JOB, namespace, "paused", phase_is("Submitted"), what="Submitted")
        apply(kube, job_ref(namespace, "paused", workspace, paused.id, suspend=True))
        obj = await wait_status(
            kube,
            JOB,
            namespace,
            "paused",
            lambda o: o["status"].get("observedGeneration") == 2,
            what="suspension acknowledged",
        )
        assert condition(obj, "Suspended")["status"] == "True"
        await control.advance_clock(150)  # the remote job is Pending now
        # the witness ref is polled meanwhile, so the operator had every chance to poll
        await wait_polls(control, workspace, "GetRayJob", 4, what="witness polls")
        assert get_ref(kube, JOB, namespace, "paused")["status"]["phase"] == "Submitted"

        apply(kube, job_ref(namespace, "paused", workspace, paused.id, suspend=False))
        obj = await wait_status(kube, JOB, namespace, "paused", phase_is("Pending"), what="resumed")
        assert obj["status"]["observedGeneration"] == 3
        assert condition(obj, "Suspended")["status"] == "False"


async def test_no_finalizer_and_no_kopf_bookkeeping_and_deletion_is_immediate(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    job = await simulator.control.create_job(simulator.workspace_id, script={"outcome": None})
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "plain", simulator.workspace_id, job.id),
    )
    obj = await wait_status(
        kube, JOB, namespace, "plain", lambda o: synced(o)[0] == "True", what="synced"
    )
    metadata = obj["metadata"]
    assert not metadata.get("finalizers")
    assert not [a for a in metadata.get("annotations") or {} if "kopf" in a]
    allowed = {
        "phase", "clusterState", "message", "name", "displayReleaseVersion", "creatorName",
        "taskBizId", "submissionMode", "tags", "entrypoint", "entrypointResources", "workingDir",
        "networkServiceName", "volumeIds", "lifecycle", "headSpec", "workerSpecs", "submitTime",
        "startTime", "endTime", "durationSeconds", "logLocation", "usage", "dashboardUrl",
        "dashboardUrlExtra", "observedGeneration", "lastSyncTime", "conditions",
    }  # fmt: skip
    assert set(obj["status"]) <= allowed, set(obj["status"]) - allowed
    kube.kubectl("delete", "rayjobref", "plain", "-n", namespace, "--wait=true", "--timeout=20s")
    assert not ref_exists(kube, JOB, namespace, "plain")


async def test_a_ref_of_hundreds_of_kilobytes_is_followed_like_any_other(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    # The operator's watch reads one event per line of JSON; a ref can be large
    # (annotations up to 256 KiB, a status up to 384 KiB: mirror.limits).
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await control.create_job(workspace, name="large", script=SLOW_SCRIPT)
        ref = job_ref(namespace, "large", workspace, job.id)
        ref["metadata"]["annotations"] = {"example.com/notes": "x" * 200_000}
        # created, not applied: apply would copy the annotation into its own
        kube.kubectl("create", "-f", "-", input=yaml.safe_dump(ref))
        await wait_status(kube, JOB, namespace, "large", phase_is("Submitted"), what="Submitted")
        await control.advance_clock(100)
        await wait_status(kube, JOB, namespace, "large", phase_is("Pending"), what="Pending")
        # a later event of the same large object (a spec change) reaches the operator too
        kube.kubectl(
            "patch", "rayjobref", "large", "-n", namespace,
            "--type=merge", "-p", '{"spec": {"suspend": true}}',
        )  # fmt: skip
        obj = await wait_status(
            kube,
            JOB,
            namespace,
            "large",
            lambda o: o["status"].get("observedGeneration") == 2,
            what="suspension acknowledged",
        )
        assert condition(obj, "Suspended")["status"] == "True"
