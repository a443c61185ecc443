"""The failure's log on the ref: a Failed job's driver log end in `status.failureLog`, the
JobFailed Event and `kubectl describe`, read once through ListRayLogs, GetRayLog and one
ranged download from the simulator's object store; real apiserver, operator process."""

from __future__ import annotations

import json

import pytest

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.failed_jobs import EXCEPTION, PLANTED, RUN_SECONDS, failed_job, has_failure_log
from tests.support.refs import (
    apply,
    condition,
    credentials_secret,
    events_of,
    frozen_clock,
    get_ref,
    job_ref,
    synced,
    wait_status,
)

pytestmark = pytest.mark.usefixtures("shared_operator")


async def test_a_failed_jobs_ref_shows_its_traceback_in_status_event_and_describe(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    shared_operator: OperatorProcess,
) -> None:
    control = simulator.control
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await failed_job(simulator, "rj-fails-loudly")
        apply(kube, job_ref(namespace, "etl", simulator.workspace_id, job))
        await wait_status(
            kube, JOB, namespace, "etl", lambda o: "phase" in o.get("status", {}), what="a phase"
        )
        await control.advance_clock(12 + RUN_SECONDS + 1)
        obj = await wait_status(kube, JOB, namespace, "etl", has_failure_log, what="failureLog")

    status = obj["status"]
    assert status["phase"] == "Failed"
    log = status["failureLog"]
    assert log["reason"] == "LogRead"
    assert log["file"] == f"attempt-1/{job}_driver.log"
    lines = log["excerpt"].splitlines()
    # the last exception first, then the log's end, which is that traceback
    assert lines[0] == EXCEPTION
    assert lines[-1] == EXCEPTION
    assert "Traceback (most recent call last):" in lines
    assert len(lines) <= 20 and len(log["excerpt"].encode()) <= 2048
    # the planted password: masked wherever the excerpt goes
    started = next(line for line in lines if "started: python main.py" in line)
    assert PLANTED not in log["excerpt"] and started.endswith("--db-password **********")
    # the log is the log's business: the ref's own read is fine
    assert synced(obj) == ("True", "Synced")
    assert condition(obj, "Failed")["status"] == "True"

    failed = [e for e in events_of(kube, namespace, "etl") if e["reason"] == "JobFailed"]
    assert [e["type"] for e in failed] == ["Warning", "Warning"]
    with_log = [e for e in failed if EXCEPTION in e["message"]]
    assert len(with_log) == 1 and "Traceback" in with_log[0]["message"]
    described = kube.kubectl("describe", "rayjobref", "etl", "-n", namespace).stdout
    assert "Failure Log:" in described and EXCEPTION in described
    everything = json.dumps(events_of(kube, namespace, "etl")) + described
    assert PLANTED not in everything
    assert PLANTED not in shared_operator.log_path.read_text()


async def test_a_ref_that_skips_its_log_is_never_read_and_a_job_costs_two_calls(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        private = await failed_job(simulator, "rj-private")
        public = await failed_job(simulator, "rj-public")
        apply(kube, job_ref(namespace, "private", workspace, private, failureLogPolicy="Skip"))
        apply(kube, job_ref(namespace, "public", workspace, public))
        for name in ("private", "public"):
            await wait_status(
                kube, JOB, namespace, name, lambda o: "phase" in o.get("status", {}), what=name
            )
        await control.advance_clock(12 + RUN_SECONDS + 1)
        await wait_status(kube, JOB, namespace, "public", has_failure_log, what="failureLog")
        await wait_status(
            kube,
            JOB,
            namespace,
            "private",
            lambda o: o["status"].get("phase") == "Failed",
            what="Failed",
        )

    assert not has_failure_log(get_ref(kube, JOB, namespace, "private"))
    counts = await control.counters(workspace)
    # one failed job read: one ListRayLogs page and one GetRayLog (the download goes to
    # object storage); the skipped job: none
    assert (counts.get("ListRayLogs"), counts.get("GetRayLog")) == (1, 1)
    messages = [e["message"] for e in events_of(kube, namespace, "private")]
    assert not any("Driver log" in m for m in messages)


async def test_a_refused_log_is_a_reason_on_the_field_and_the_ref_stays_synced(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    await control.set_faults(operation="ListRayLogs", log_error_share=1.0, log_error_code="1000042")
    try:
        async with frozen_clock(control):
            job = await failed_job(simulator, "rj-refused")
            apply(kube, job_ref(namespace, "refused", workspace, job))
            await wait_status(
                kube,
                JOB,
                namespace,
                "refused",
                lambda o: "phase" in o.get("status", {}),
                what="a phase",
            )
            await control.advance_clock(12 + RUN_SECONDS + 1)
            obj = await wait_status(
                kube, JOB, namespace, "refused", has_failure_log, what="failureLog"
            )
    finally:
        await control.clear_faults("ListRayLogs")

    log = obj["status"]["failureLog"]
    assert log["reason"] == "LogRefused"
    assert "1000042" in log["message"] and "excerpt" not in log
    assert synced(obj) == ("True", "Synced")
    assert obj["status"]["phase"] == "Failed"
    failed = [e for e in events_of(kube, namespace, "refused") if e["reason"] == "JobFailed"]
    assert len(failed) == 1  # the phase's; no log, no second Event


async def test_a_timed_out_job_gets_the_end_of_its_log_without_a_traceback(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await failed_job(simulator, "rj-too-slow", outcome="Timeout")
        apply(kube, job_ref(namespace, "slow", workspace, job))
        await wait_status(
            kube, JOB, namespace, "slow", lambda o: "phase" in o.get("status", {}), what="a phase"
        )
        await control.advance_clock(12 + RUN_SECONDS + 1)
        obj = await wait_status(kube, JOB, namespace, "slow", has_failure_log, what="failureLog")

    assert obj["status"]["phase"] == "Timeout"
    lines = obj["status"]["failureLog"]["excerpt"].splitlines()
    assert "exceeded activeDeadlineSeconds" in lines[-1]
    assert "Traceback (most recent call last):" not in lines
    timed_out = [e for e in events_of(kube, namespace, "slow") if e["reason"] == "JobTimeout"]
    assert len(timed_out) == 2 and any("activeDeadlineSeconds" in e["message"] for e in timed_out)
