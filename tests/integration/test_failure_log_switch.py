"""The operator-wide switch of the failure's log (RAYREF_FAILURE_LOGS) and the default
list strategy: each test runs an operator of its own, on its own namespace."""

from __future__ import annotations

import asyncio

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.support.failed_jobs import (
    EXCEPTION,
    RUN_SECONDS,
    failed_job,
    has_failure_log,
)
from tests.support.refs import (
    apply,
    credentials_secret,
    frozen_clock,
    get_ref,
    job_ref,
    wait_status,
)

# In the other tests the log is read within a second of the Failed status.
QUIET_SECONDS = 8.0


def start(
    kube: KubeTestBed,
    factory: OperatorFactory,
    simulator: SimulatorSession,
    namespace: str,
    **settings: str,
) -> OperatorProcess:
    kube.apply_crds()
    return factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=[namespace],
        settings={"POLL_STRATEGY": "list", **settings},
    )


async def fail_a_job(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, submission_id: str
) -> None:
    control = simulator.control
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await failed_job(simulator, submission_id)
        apply(kube, job_ref(namespace, "etl", simulator.workspace_id, job))
        await wait_status(
            kube, JOB, namespace, "etl", lambda o: "phase" in o.get("status", {}), what="a phase"
        )
        await control.advance_clock(12 + RUN_SECONDS + 1)
        await wait_status(
            kube, JOB, namespace, "etl", lambda o: o["status"]["phase"] == "Failed", what="Failed"
        )


async def test_with_failure_logs_off_no_log_is_read_until_it_is_switched_on_again(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    operator = start(kube, operator_factory, simulator, namespace, FAILURE_LOGS="false")

    await fail_a_job(kube, namespace, simulator, "rj-off")
    await asyncio.sleep(QUIET_SECONDS)

    assert not has_failure_log(get_ref(kube, JOB, namespace, "etl"))
    counts = await simulator.control.counters(simulator.workspace_id)
    assert counts.get("ListRayLogs") + counts.get("GetRayLog") == 0
    assert operator.metric("rayref_failure_logs_total") == 0

    # Switched on again (or an upgrade from a version without it): the stored status
    # says Failed and holds no failureLog; a restarted operator reads every ref once on
    # its own (the list strategy too), and that read hands the log to the readers.
    operator.stop()
    start(kube, operator_factory, simulator, namespace)
    obj = await wait_status(kube, JOB, namespace, "etl", has_failure_log, what="failureLog")
    assert obj["status"]["failureLog"]["excerpt"].splitlines()[0] == EXCEPTION


async def test_the_default_list_strategy_reads_the_log_too(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    operator = start(kube, operator_factory, simulator, namespace)

    await fail_a_job(kube, namespace, simulator, "rj-listed")
    obj = await wait_status(kube, JOB, namespace, "etl", has_failure_log, what="failureLog")

    assert obj["status"]["failureLog"]["excerpt"].splitlines()[0] == EXCEPTION
    assert operator.metric("rayref_failure_logs_total", outcome="LogRead") == 1
