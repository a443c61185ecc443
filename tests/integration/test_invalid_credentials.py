"""A credentials Secret whose values no request can carry, against the real apiserver, the
simulator over HTTP and the operator as a subprocess (list sweeps, the default strategy).

Before: the signer's encoding error escaped the ref's poll, which crashed in a loop and
left the ref with no status. Now the ref gets Synced=False, reason InvalidCredentials,
with a message naming the Secret key and never the value; a witness ref of another
namespace keeps following its job; and fixing the Secret brings the ref back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import SimulatorSession
from tests.support.refs import (
    apply,
    condition,
    credentials_secret,
    events_of,
    frozen_clock,
    get_ref,
    job_ref,
    synced,
    wait_polls,
    wait_status,
)

# the tail is what must never show: the non-ASCII part is what the signer cannot encode
BAD_SECRET = "hunter2-sécret"
STEP = {
    "submittedSeconds": 100,
    "pendingSeconds": 100,
    "runningSeconds": 100,
    "clusterReleaseSeconds": 100,
    "cuHoursDelaySeconds": 100,
}


@pytest.fixture
def witness_namespace(kube: KubeTestBed, namespace: str) -> Iterator[str]:
    with kube.namespaces(f"{namespace[:50]}-w") as (name,):
        yield name


def _secret(namespace: str, name: str, **data: str) -> dict[str, Any]:
    # written by hand: rayref's own Credentials would refuse these values
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def _phase(obj: dict[str, Any]) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase is not None else None


def _phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: _phase(obj) == phase


@pytest.mark.slow
async def test_a_secret_the_signer_cannot_encode_stays_on_its_ref(
    kube: KubeTestBed,
    namespace: str,
    witness_namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    kube.apply_crds()
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=[namespace, witness_namespace],
        settings={"POLL_STRATEGY": "list"},
    )
    control, workspace = simulator.control, simulator.workspace_id
    key = simulator.credentials
    async with frozen_clock(control):
        job = await control.create_job(workspace, name="victim", script=STEP)
        witness_job = await control.create_job(workspace, name="witness", script=STEP)
        apply(
            kube,
            _secret(namespace, "creds", accessKeyId=key.access_key_id, accessKeySecret=BAD_SECRET),
            job_ref(namespace, "victim", workspace, job.id),
            # a token with a line break: a header no HTTP library will send
            _secret(
                namespace,
                "sts",
                accessKeyId=key.access_key_id,
                accessKeySecret=key.access_key_secret,
                securityToken="CAIS\r\nX-Injected: hunter2",
            ),
            job_ref(namespace, "victim-sts", workspace, job.id, secret="sts"),
            credentials_secret(witness_namespace, key),
            job_ref(witness_namespace, "witness", workspace, witness_job.id),
        )

        bad = await wait_status(
            kube, JOB, namespace, "victim", lambda o: synced(o)[0] == "False", what="refused"
        )
        assert synced(bad) == ("False", "InvalidCredentials")
        message = condition(bad, "Synced")["message"]
        assert message.startswith(
            f"Secret {namespace}/creds key accessKeySecret holds a non-ASCII character"
        )
        assert condition(bad, "Stalled")["status"] == "True"
        bad_sts = await wait_status(
            kube, JOB, namespace, "victim-sts", lambda o: synced(o)[0] == "False", what="refused"
        )
        assert synced(bad_sts) == ("False", "InvalidCredentials")
        assert condition(bad_sts, "Synced")["message"].startswith(
            f"Secret {namespace}/sts key securityToken holds a control character U+000D"
        )
        await wait_status(
            kube,
            JOB,
            witness_namespace,
            "witness",
            lambda o: _phase(o) == "Submitted",
            what="witness Submitted",
        )

        # the witness follows its job while the victim's poll keeps failing
        for phase in ("Pending", "Running"):
            await control.advance_clock(100)
            await wait_status(
                kube,
                JOB,
                witness_namespace,
                "witness",
                _phase_is(phase),
                what=f"witness {phase}",
            )
        await wait_polls(control, workspace, "ListRayJob", 2, what="more witness sweeps")
        still = get_ref(kube, JOB, namespace, "victim")
        # refused again and again, written once: no crash loop, no flapping status
        assert still["metadata"]["resourceVersion"] == bad["metadata"]["resourceVersion"]
        warnings = [e for e in events_of(kube, namespace, "victim") if e["type"] == "Warning"]
        assert [(e["reason"], e.get("count")) for e in warnings] == [("InvalidCredentials", 1)]
        assert "hunter2" not in str(still) and "hunter2" not in str(warnings)
        still_sts = get_ref(kube, JOB, namespace, "victim-sts")
        assert still_sts["metadata"]["resourceVersion"] == bad_sts["metadata"]["resourceVersion"]
        assert "hunter2" not in str(still_sts)
        assert operator.running

        # a person fixes the Secret: the next poll reads it and the ref syncs
        apply(kube, credentials_secret(namespace, key))
        fixed = await wait_status(
            kube, JOB, namespace, "victim", lambda o: synced(o)[0] == "True", what="fixed"
        )
        assert _phase(fixed) == "Running"
    log = operator.log_path.read_text(encoding="utf-8", errors="replace")
    assert "hunter2" not in log
    assert "UnicodeEncodeError" not in log
