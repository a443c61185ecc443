"""The operator's /metrics, scraped over HTTP while it mirrors a job and a cluster.

One operator (the default list strategy) watching only this test's namespace, a real
kube-apiserver and the simulator. The scrape must show what a person looks at: the
refs' real phases, cloud calls and their latency, status writes, throttling, and a
freshness gauge that stays low while reads succeed and grows while the cloud throttles
the cluster reads (the status then says Throttled).
"""

from __future__ import annotations

import pytest

from rayref.api.kinds import CLUSTER_KIND as CLUSTER
from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    POLL,
    apply,
    cluster_ref,
    credentials_secret,
    eventually,
    frozen_clock,
    get_ref,
    job_ref,
    synced,
    wait_polls,
    wait_status,
)
from tests.support.scrape import samples, value

# Far beyond the few seconds a check may run late on a loaded machine, far below the
# age the throttled phase reaches.
FRESH_SECONDS = 6 * POLL


def is_synced(obj: dict[str, object]) -> bool:
    try:
        return synced(obj)[0] == "True"
    except AssertionError:
        return False


@pytest.mark.slow
async def test_the_scrape_shows_phases_cloud_calls_writes_and_freshness(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    kube.apply_crds()
    control, workspace = simulator.control, simulator.workspace_id
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=[namespace],
        settings={"POLL_STRATEGY": "list"},
    )
    async with frozen_clock(control):
        job = await control.create_job(workspace)
        cluster = await control.create_cluster(workspace)
        apply(
            kube,
            credentials_secret(namespace, simulator.credentials),
            job_ref(namespace, "train", workspace, job.id),
            cluster_ref(namespace, "dev", workspace, cluster.id),
        )
        job_obj = await wait_status(kube, JOB, namespace, "train", is_synced, what="job synced")
        cluster_obj = await wait_status(
            kube, CLUSTER, namespace, "dev", is_synced, what="cluster synced"
        )
        phase, state = job_obj["status"]["phase"], cluster_obj["status"]["state"]
        # Later checks come from list sweeps: freshness must count those as syncs.
        await wait_polls(control, workspace, "ListRayJob", 2, what="job sweeps")
        await wait_polls(control, workspace, "ListRayCluster", 2, what="cluster sweeps")

        def healthy() -> str:
            text = operator.metrics()
            assert value(text, "rayref_refs_by_phase", kind=JOB, phase=phase) == 1, phase
            assert value(text, "rayref_refs_by_phase", kind=CLUSTER, phase=state) == 1, state
            assert value(text, "rayref_refs_by_phase", kind=JOB, phase="Unknown") is None
            oldest = value(text, "rayref_sync_oldest_unsynced_seconds")
            assert oldest is not None and oldest < FRESH_SECONDS, oldest
            return text

        text = await eventually(healthy, what="the phases in the scrape", within=60)
        print("\n".join(line for line in text.splitlines() if line.startswith("rayref_")))

        for operation in ("GetRayJob", "GetRayCluster", "ListRayJob", "ListRayCluster"):
            ok = value(text, "rayref_cloud_requests_total", operation=operation, outcome="success")
            assert ok is not None and ok >= 1, operation
            attempts = sum(
                count
                for labels, count in samples(text, "rayref_cloud_requests_total").items()
                if ("operation", operation) in labels
            )
            infinite = value(
                text, "rayref_cloud_request_duration_seconds_bucket", operation=operation, le="+Inf"
            )
            assert infinite == attempts, operation
            assert (
                value(
                    text,
                    "rayref_cloud_request_duration_seconds_bucket",
                    operation=operation,
                    le="1.0",
                )
                is not None
            )
        for kind in (JOB, CLUSTER):
            writes = value(text, "rayref_status_writes_total", kind=kind)
            assert writes is not None and writes >= 1, kind
            assert value(text, "rayref_refs", kind=kind) == 1
        assert value(text, "rayref_request_budget_tokens") is not None
        # The process collector: the dashboard's CPU and memory panels read these.
        memory = value(text, "process_resident_memory_bytes")
        assert memory is not None and memory > 10 * 2**20, memory
        assert value(text, "process_cpu_seconds_total") is not None
        assert samples(text, "rayref_cloud_throttled_total") == {}
        assert_nothing_private(text, simulator, ["train", "dev", namespace], [job.id, cluster.id])

        # Every sweep and Get of clusters throttled: the cluster ref goes unsynced, and
        # its status says Throttled (at once when a node-refresh Get is the first call
        # refused, after its interval when a sweep is: which one depends on the timing,
        # and the ref then stays with Gets until one works).
        # A short retry-after hint: recovery then takes one interval (the simulator's own
        # hint, the time to the next token, would be 1,000 s, capped at the slow cycle).
        for operation in ("ListRayCluster", "GetRayCluster"):
            await control.set_faults(operation=operation, rate=0.001, burst=1, retry_after_ms=2000)

        def stale() -> str:
            text = operator.metrics()
            throttled = sum(
                value(text, "rayref_cloud_throttled_total", operation=operation) or 0
                for operation in ("ListRayCluster", "GetRayCluster")
            )
            assert throttled >= 1, "no cluster call throttled yet"
            assert value(text, "rayref_refs_unsynced") == 1
            oldest = value(text, "rayref_sync_oldest_unsynced_seconds")
            assert oldest is not None and oldest > FRESH_SECONDS, oldest
            return text

        text = await eventually(stale, what="a stale cluster in the scrape", within=120)

        def reported() -> None:
            assert synced(get_ref(kube, CLUSTER, namespace, "dev")) == ("False", "Throttled")
            assert synced(get_ref(kube, JOB, namespace, "train"))[0] == "True"

        await eventually(reported, what="the cluster ref says Throttled", within=60)
        slowdowns = value(text, "rayref_request_budget_slowdowns_total")
        assert slowdowns is not None and slowdowns >= 1

        await control.clear_faults()

        def recovered() -> None:
            assert synced(get_ref(kube, CLUSTER, namespace, "dev"))[0] == "True"
            text = operator.metrics()
            assert value(text, "rayref_refs_unsynced") == 0
            assert value(text, "rayref_sync_oldest_unsynced_seconds") == 0

        await eventually(recovered, what="fresh again", within=120)
    assert_nothing_private(operator.metrics(), simulator, ["train", "dev"], [job.id, cluster.id])


def assert_nothing_private(
    text: str, simulator: SimulatorSession, names: list[str], remote_ids: list[str]
) -> None:
    """No secret, no remote ID, no ref or namespace name as a label value."""
    credentials = simulator.credentials
    for private in [credentials.access_key_secret, credentials.access_key_id, *remote_ids]:
        assert private not in text
    assert simulator.workspace_id not in text
    for name in names:
        assert f'"{name}"' not in text, name
