"""The hostile-tenant harness: generated tenants beside a witness in its own namespace.

One control plane, one simulator, one operator watching every namespace, with the
operator-wide key allowed in the witness's namespace only. Each generated case puts a
tenant's objects (CRD-valid specs at their limits, stored statuses, odd credentials,
remote answers with edge values and planted secrets) in a fresh namespace, moves the
witness's remote job, and then requires what another tenant would notice: the witness
showed the change in time, the operator is alive and healthy, nothing of the case read
with credentials that were not its own, every object of the case shows its own state
(a fault stays on the object that caused it), the operator log grew by a bounded number
of lines, and no planted secret is in any status, Event, log line or `rayref get` output.

`make test` runs RAYREF_HOSTILE_EXAMPLES (default 12) derandomized cases; the long run
and its report are in docs/testing.md. The report (tests/support/hostile/tally.py) is
written to RAYREF_HOSTILE_REPORT or the test's tmp dir, and printed.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import RunningSimulator
from tests.support.hostile.cases import HostileCase, hostile_cases
from tests.support.hostile.tally import Tally, report_path
from tests.support.hostile.tenant import World, run_case, start_witness, witness_shows

EXAMPLES = int(os.environ.get("RAYREF_HOSTILE_EXAMPLES", "12"))


async def _witness(simulator: RunningSimulator, kube: KubeTestBed) -> tuple[str, str, str]:
    async with SimulatorControl(simulator.base_url) as control:
        return await start_witness(kube, control, simulator.credentials)


@pytest.fixture(scope="module")
def world(
    kube: KubeTestBed,
    simulator_process: RunningSimulator,
    module_operator_factory: OperatorFactory,
) -> World:
    kube.apply_crds()
    key = simulator_process.credentials
    namespace, workspace, job = asyncio.run(_witness(simulator_process, kube))
    operator = module_operator_factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator_process.base_url,
        settings={
            # the operator's default strategy: tenants' sweeps share its budget and loop
            "POLL_STRATEGY": "list",
            # every line is scanned; the log bound counts the INFO and louder ones
            "LOG_LEVEL": "DEBUG",
            "SHARED_CREDENTIALS_NAMESPACES": namespace,
        },
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key.access_key_secret,
        },
    )
    shared = World(kube, simulator_process.base_url, operator, key, namespace, workspace, job)
    assert asyncio.run(witness_shows(shared, "witness-0", within=90)), "the witness never synced"
    return shared


@pytest.mark.slow
def test_no_hostile_tenant_stalls_blinds_or_reads_for_another(world: World, tmp_path: Path) -> None:
    tally = Tally()

    # No shrinking: a case takes seconds, and every case is recorded, failing or not, so
    # the report counts them all; the test fails after the last one.
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=hostile_cases())
    def one_case(case: HostileCase) -> None:
        result = asyncio.run(run_case(world, case, len(tally.cases)))
        if not result.clean:
            print(f"[hostile] case {result.index} failed: {case!r}", flush=True)
        tally.add(result)

    one_case()
    path = report_path(tmp_path / "hostile.json")
    tally.write(path)
    summary = tally.summary()
    print(f"[hostile] report in {path}:\n{json.dumps(summary, indent=2)[:20_000]}", flush=True)
    assert summary["cases_generated"] == EXAMPLES
    # the scans below looked at statuses made from the edge answers, not only at failures
    assert summary["refs_that_read_their_remote_object"] > 0
    # and a scan that finds nothing is a scan that could have found something
    assert summary["cases_whose_markers_the_scan_found_in_the_remote_answers"] == EXAMPLES
    failures = json.dumps(summary["failures"], indent=1)[:8_000]
    assert summary["cases_that_affected_another_object"] == 0, failures
    assert summary["secrets_found"] == 0, failures
    assert summary["cases_with_faults_not_shown_on_their_object"] == 0, failures
