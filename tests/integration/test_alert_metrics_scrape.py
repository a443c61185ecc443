"""The series the alerts read (docs/alerts.md), scraped from a running operator.

A real kube-apiserver, the simulator and one operator of this test's namespace: a job
ref whose remote job failed shows as `rayref_job_failed` with the ref's namespace and
name, a ref whose remote does not exist as `rayref_refs_not_synced` with its reason; both
series go when the refs are deleted.
"""

from __future__ import annotations

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import apply, credentials_secret, eventually, job_ref, synced, wait_status
from tests.support.scrape import samples, value


async def test_a_failed_job_and_a_missing_remote_show_in_the_scrape_until_deleted(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    kube.apply_crds()
    control, workspace = simulator.control, simulator.workspace_id
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig, endpoint=simulator.base_url, namespaces=[namespace]
    )
    job = await control.create_job(workspace, script={"outcome": None})
    await control.update_job(workspace, job.id, action="fail", message="exit code 1")
    apply(
        kube,
        credentials_secret(namespace, simulator.credentials),
        job_ref(namespace, "nightly", workspace, job.id),
        job_ref(namespace, "ghost", workspace, "rj-doesnotexist0001"),
    )
    await wait_status(
        kube,
        JOB,
        namespace,
        "nightly",
        lambda o: o.get("status", {}).get("phase") == "Failed",
        what="the job ref Failed",
    )
    await wait_status(
        kube, JOB, namespace, "ghost", lambda o: synced(o)[0] == "False", what="Synced False"
    )
    failed = {"ref_namespace": namespace, "ref_name": "nightly"}
    missing = {"kind": JOB, "reason": "RemoteNotFound"}

    def shown() -> None:
        text = operator.metrics()
        assert value(text, "rayref_job_failed", **failed) == 1
        assert len(samples(text, "rayref_job_failed")) == 1
        assert value(text, "rayref_refs_not_synced", **missing) == 1
        oldest = value(text, "rayref_refs_not_synced_oldest_seconds", **missing)
        assert oldest is not None and oldest >= 0

    await eventually(shown, what="the failed job and the missing remote in the scrape", within=60)

    kube.kubectl("delete", "rayjobref", "nightly", "ghost", "-n", namespace, "--wait=true")

    def gone() -> None:
        text = operator.metrics()
        assert samples(text, "rayref_job_failed") == {}
        assert samples(text, "rayref_refs_not_synced") == {}
        assert samples(text, "rayref_refs_not_synced_oldest_seconds") == {}

    await eventually(gone, what="both series gone with their refs", within=60)
