"""Sets among tenants, end to end: real kube-apiserver, the simulator over HTTP, the
operator as a subprocess watching two namespaces that share one workspace.

A set the operator cannot compute, a ref at the edge of the calendar, a set outside the
operator-wide credentials' allow-list, and a template the API server refuses: each
shows on its own object, and the other namespace's witness ref keeps following its job.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from rayref.api import crd
from rayref.api.kinds import JOB_KIND, JOB_SET_KIND, SET_PLURALS
from rayref.api.models import TTL_MAX
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory, OperatorProcess
from tests.fixtures.simulator import SimulatorSession
from tests.integration.test_refsets import RUNNING, get_set, members, ref_set, wait_set
from tests.support.refs import (
    apply,
    credentials_secret,
    eventually,
    get_ref,
    job_ref,
    list_refs,
    ref_exists,
    wait_status,
)

SETTINGS = {"POLL_STRATEGY": "list", "REQUEST_RATE": "200", "REQUEST_BURST": "400"}
# 9999-12-31T00:00:00Z: a remote end time that passes every check a CRD can make.
EDGE_OF_TIME_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def neighbour(kube: KubeTestBed) -> Iterator[str]:
    """A second tenant's namespace."""
    with kube.namespaces(f"neighbour-{uuid.uuid4().hex[:8]}") as (name,):
        yield name


def start(
    factory: OperatorFactory,
    kube: KubeTestBed,
    simulator: SimulatorSession,
    namespaces: list[str],
    shared: list[str],
) -> OperatorProcess:
    kube.apply_crds()
    return factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=namespaces,
        settings={**SETTINGS, "SHARED_CREDENTIALS_NAMESPACES": ",".join(shared)},
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": simulator.credentials.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": simulator.credentials.access_key_secret,
        },
    )


def keyless(body: dict[str, Any]) -> dict[str, Any]:
    """The set with the operator-wide credentials (no Secret of its own)."""
    del body["spec"]["credentialsSecretRef"]
    return body


@contextmanager
def stored_before_the_rules(kube: KubeTestBed, plural: str, *fields: str) -> Iterator[None]:
    """The set CRD without the CEL rules of `fields` (dotted paths under spec), as an
    older release installed it: objects stored meanwhile keep what the rules now refuse."""
    name = f"rayref.io_{plural}.yaml"
    document = yaml.safe_load(crd.render_all()[name])
    for version in document["spec"]["versions"]:
        for path in fields:
            node = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            for part in path.split("."):
                node = node["properties"][part]
            node.pop("x-kubernetes-validations", None)
    kube.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(document)
    )
    try:
        yield
    finally:
        kube.apply_crds()


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found["type"] == type_:
            return dict(found)
    return {}


async def test_a_set_and_a_ref_the_operator_cannot_compute_stall_no_one_else(
    kube: KubeTestBed,
    namespace: str,
    neighbour: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    tenant, witness_ns = namespace, neighbour
    # Both namespaces use the operator-wide credentials: one group, one shared sweep.
    operator = start(operator_factory, kube, simulator, [tenant, witness_ns], [tenant, witness_ns])
    witness_job = await control.create_job(workspace, name="witness", script=RUNNING)
    apply(kube, job_ref(witness_ns, "witness", workspace, witness_job.id, secret=None, poll=5))
    await wait_status(
        kube,
        JOB_KIND,
        witness_ns,
        "witness",
        lambda o: (o.get("status") or {}).get("phase") == "Running",
        what="the witness Running",
    )

    # The tenant: a set stored before submittedWithin had a bound (16,000 years back is
    # before year 1), a set at the new bound, a ref whose job ended in year 9999 with the
    # longest TTL, and a ref whose TTL is due now.
    with stored_before_the_rules(kube, SET_PLURALS[JOB_SET_KIND], "selector.submittedWithin"):
        apply(
            kube,
            keyless(
                ref_set(
                    JOB_SET_KIND,
                    tenant,
                    "ancient",
                    workspace,
                    selector={"submittedWithin": "999999d999999d999999d"},
                )
            ),
        )
    apply(
        kube,
        keyless(
            ref_set(
                JOB_SET_KIND,
                tenant,
                "decade",
                workspace,
                selector={"names": ["witness"], "submittedWithin": "3650d"},
                ttlSecondsAfterFinished=TTL_MAX,
            )
        ),
    )
    edge = await control.create_job(workspace, name="edge", script=RUNNING)
    # Ended now, and answered with this endTime (an override of the API field).
    await control.update_job(
        workspace, edge.id, fields={"endTime": EDGE_OF_TIME_MS}, action="succeed"
    )
    # TTLs count on the operator's clock from the remote endTime, and the session's
    # simulator clock may run ahead of it (earlier tests speed it up): an endTime a minute
    # before the operator's now makes a TTL of 0 due whatever the simulator's time.
    due = await control.create_job(workspace, name="due", script=RUNNING)
    ended_ms = int((datetime.now(UTC).timestamp() - 60) * 1000)
    await control.update_job(workspace, due.id, fields={"endTime": ended_ms}, action="succeed")
    apply(
        kube,
        job_ref(
            tenant, "edge", workspace, edge.id, secret=None, poll=5, ttlSecondsAfterFinished=TTL_MAX
        ),
        job_ref(tenant, "due", workspace, due.id, secret=None, poll=5, ttlSecondsAfterFinished=0),
    )
    await wait_status(
        kube,
        JOB_KIND,
        tenant,
        "edge",
        lambda o: (
            (o.get("status") or {}).get("phase") == "Succeeded"
            and str(o["status"].get("endTime", "")).startswith("9999-")
        ),
        what="the edge ref finished in year 9999",
    )

    # The set that cannot be computed says so on itself, naming the field.
    ancient = await wait_set(kube, JOB_SET_KIND, tenant, "ancient", Ready=("False", "InvalidSpec"))
    assert "spec.selector.submittedWithin" in condition_of(ancient, "Ready")["message"]
    # The valid set in the same group works: the shared sweep goes on.
    await wait_set(kube, JOB_SET_KIND, tenant, "decade", created=1, Ready=("True", "Listed"))

    # The TTL loop goes on past the ref at the edge of time: the due ref is deleted.
    def due_deleted() -> None:
        assert not ref_exists(kube, JOB_KIND, tenant, "due")

    await eventually(due_deleted, what="the due ref deleted by its TTL")
    assert ref_exists(kube, JOB_KIND, tenant, "edge")

    # The other tenant's witness keeps following its job.
    await control.update_job(workspace, witness_job.id, action="fail")
    await wait_status(
        kube,
        JOB_KIND,
        witness_ns,
        "witness",
        lambda o: (o.get("status") or {}).get("phase") == "Failed",
        what="the witness showing its job failed",
    )
    # No fault escaped into the shared loops ("the TTL check crashed", "sync of ... crashed").
    assert "crashed" not in operator.logs()


async def test_a_set_outside_the_allow_list_gets_credentials_not_found_and_learns_nothing(
    kube: KubeTestBed,
    namespace: str,
    neighbour: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    allowed, outside = namespace, neighbour
    start(operator_factory, kube, simulator, [allowed, outside], [allowed])
    job = await control.create_job(workspace, name="secret-project", script=RUNNING)
    selector = {"names": ["secret-project"]}
    # The allowed tenant's set lists the workspace with the operator-wide credentials...
    apply(kube, keyless(ref_set(JOB_SET_KIND, allowed, "mine", workspace, selector=selector)))
    await wait_set(kube, JOB_SET_KIND, allowed, "mine", matched=1, created=1)
    # ...and a set of a namespace outside the allow-list, watching the same group, does not
    # get that sweep: no ref, no count that would tell the job exists.
    apply(kube, keyless(ref_set(JOB_SET_KIND, outside, "probe", workspace, selector=selector)))
    probe = await wait_set(
        kube,
        JOB_SET_KIND,
        outside,
        "probe",
        Synced=("False", "CredentialsNotFound"),
        Ready=("False", "CredentialsNotFound"),
        Stalled=("True", "CredentialsNotFound"),
    )
    message = condition_of(probe, "Ready")["message"]
    assert "RAYREF_SHARED_CREDENTIALS_NAMESPACES" in message and outside in message
    assert "matched" not in probe["status"] and "created" not in probe["status"]
    # The allowed set keeps being served (its sweeps go on) while the probe stays blind.
    await control.update_job(workspace, job.id, fields={"name": "renamed"})
    await wait_set(kube, JOB_SET_KIND, allowed, "mine", matched=0, created=1)
    assert list_refs(kube, JOB_KIND, outside) == {}
    assert "matched" not in (get_set(kube, JOB_SET_KIND, outside, "probe").get("status") or {})


async def test_a_template_the_api_server_refuses_makes_the_set_not_ready_until_fixed(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    start(operator_factory, kube, simulator, [namespace], [])
    apply(kube, credentials_secret(namespace, simulator.credentials))
    job = await control.create_job(workspace, name="tpl", script=RUNNING)
    bad = ref_set(
        JOB_SET_KIND,
        namespace,
        "labelled",
        workspace,
        template={"labels": {"team": "data science!"}},
    )
    with stored_before_the_rules(kube, SET_PLURALS[JOB_SET_KIND], "template.labels"):
        apply(kube, bad)
    refused = await wait_set(
        kube,
        JOB_SET_KIND,
        namespace,
        "labelled",
        Ready=("False", "RefCreateRefused"),
        Stalled=("True", "RefCreateRefused"),
    )
    message = condition_of(refused, "Ready")["message"]
    assert "metadata.labels" in message and "data science!" in message
    assert members(kube, JOB_KIND, namespace, "labelled") == {}

    # Fixed template: the ref is created and the set is Ready again.
    apply(
        kube,
        ref_set(
            JOB_SET_KIND,
            namespace,
            "labelled",
            workspace,
            template={"labels": {"team": "data-science"}},
        ),
    )
    await wait_set(kube, JOB_SET_KIND, namespace, "labelled", created=1, Ready=("True", "Listed"))
    ((name, _),) = [(n, r) for r, n in members(kube, JOB_KIND, namespace, "labelled").items()]
    assert get_ref(kube, JOB_KIND, namespace, name)["metadata"]["labels"]["team"] == "data-science"
    assert job.id in members(kube, JOB_KIND, namespace, "labelled")
