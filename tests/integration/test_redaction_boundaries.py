"""The one redaction rule at every boundary, end to end (real kube-apiserver + etcd, the
simulator over HTTP, the operator as a subprocess, `rayref get` through its entry point).

A job's user-controlled fields carry a distinctive secret in every form of
docs/reliability.md ("What is redacted"): URL userinfo in `workingDir` and inside
`runtimeEnvJson` (`working_dir`, a pip `--index-url`), `;token=`, `password=`,
`--api-key value`, `"secret": ...`. The ref's status, its Events, the operator's log (at
DEBUG) and `rayref get`'s output hold none of them; what a person needs stays readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rayref.api.kinds import JOB_KIND as JOB
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorFactory
from tests.fixtures.simulator import SimulatorSession
from tests.support.cli import clean_env, rayref
from tests.support.leakscan import LeakScanner, distinctive, planted_job_fields
from tests.support.refs import (
    apply,
    credentials_secret,
    events_of,
    frozen_clock,
    job_ref,
    reasons,
    synced,
    wait_status,
)

MASK = "**********"
SLOW = {"submittedSeconds": 100, "pendingSeconds": 100, "runningSeconds": 100}


def _phase(phase: str) -> Any:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


async def test_a_job_with_secrets_in_every_user_field_leaks_none_to_status_events_or_logs(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    secret = distinctive("planted")
    # An operator of this test's namespace alone: a module-wide one watching every
    # namespace would also answer the next test's ref (which names no Secret) with its
    # own CredentialsNotFound, racing that test's operator.
    kube.apply_crds()
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig, endpoint=simulator.base_url, namespaces=[namespace]
    )
    # the message comes with the failure below (a field override would outlive it)
    fields = {k: v for k, v in planted_job_fields(secret).items() if k != "message"}
    apply(kube, credentials_secret(namespace, simulator.credentials))
    async with frozen_clock(control):
        job = await control.create_job(workspace, name="planted", script=SLOW)
        await control.update_job(workspace, job.id, fields=fields)
        apply(kube, job_ref(namespace, "planted", workspace, job.id))
        await wait_status(kube, JOB, namespace, "planted", _phase("Submitted"), what="Submitted")
        # the terminal phase's Event quotes the remote message
        await control.update_job(
            workspace,
            job.id,
            action="fail",
            message=f"exit 1: git clone https://bot:{secret}@git.example/r.git;token={secret}",
        )
        obj = await wait_status(kube, JOB, namespace, "planted", _phase("Failed"), what="Failed")

    events = events_of(kube, namespace, "planted")
    scanner = LeakScanner()
    scanner.add("planted secret", secret)
    scanner.scan_json("status", obj)
    scanner.scan_json("events", events)
    scanner.scan_text("operator log", operator.logs())
    scanner.assert_clean()

    status = obj["status"]
    # the rule masks the secret and keeps what a person reads: hosts, users, keys
    assert status["workingDir"] == f"https://ci:{MASK}@artifacts.example/work.zip"
    assert status["entrypoint"] == f"python train.py --api-key {MASK} password={MASK}"
    assert f"https://bot:{MASK}@git.example/r.git;token={MASK}" in status["message"]
    assert "JobFailed" in reasons(events)
    failed = next(e for e in events if e["reason"] == "JobFailed")
    assert f"https://bot:{MASK}@git.example" in failed["message"]


async def test_a_malformed_credentials_file_line_is_named_by_number_in_status_events_and_log(
    kube: KubeTestBed,
    namespace: str,
    simulator: SimulatorSession,
    operator_factory: OperatorFactory,
    tmp_path: Path,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    secret = distinctive("fileline")
    ini = tmp_path / "credentials.ini"
    # line 3 is neither `key = value` nor a section: the parser's message quotes it whole
    ini.write_text(f"[default]\naccess_key_id = LTAI5tFILE\naccess_key_secret {secret}\n")
    kube.apply_crds()
    operator = operator_factory.start(
        kubeconfig=kube.kubeconfig,
        endpoint=simulator.base_url,
        namespaces=[namespace],
        settings={"SHARED_CREDENTIALS_NAMESPACES": namespace},
        env={"ALIBABA_CLOUD_CREDENTIALS_FILE": str(ini)},
    )
    job = await control.create_job(workspace, script={"outcome": None})
    apply(kube, job_ref(namespace, "shared", workspace, job.id, secret=None))

    obj = await wait_status(
        kube, JOB, namespace, "shared", lambda o: synced(o)[0] == "False", what="Synced=False"
    )

    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Synced")["message"]
    assert f"credentials file {ini} is not valid INI at line 3" in message
    scanner = LeakScanner()
    scanner.add("credentials file line", secret)
    scanner.scan_json("status", obj)
    scanner.scan_json("events", events_of(kube, namespace))
    scanner.scan_text("operator log", operator.logs())
    scanner.assert_clean()


async def _rayref_get(
    simulator: SimulatorSession, *args: str, endpoint: str | None = None
) -> tuple[int, str, str]:
    key = simulator.credentials
    env = clean_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=key.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=key.access_key_secret,
        RAYREF_ENDPOINT=endpoint or simulator.base_url,
    )
    return await rayref("get", *args, env=env)


async def test_rayref_get_masks_unknown_fields_and_every_planted_form(
    simulator: SimulatorSession,
) -> None:
    control, workspace = simulator.control, simulator.workspace_id
    secret = distinctive("getplanted")
    job = await control.create_job(
        workspace,
        script={"outcome": None},
        # an API field this version does not know: nothing says it is safe to print
        futureCredentialBlob=f"blob-{secret}",
    )
    await control.update_job(workspace, job.id, fields=planted_job_fields(secret))

    code, out, err = await _rayref_get(simulator, "job", workspace, job.id)

    assert code == 0, err
    scanner = LeakScanner()
    scanner.add("planted secret", secret)
    scanner.scan_text("rayref get stdout", out)
    scanner.scan_text("rayref get stderr", err)
    scanner.assert_clean()
    shown = json.loads(out)
    assert shown["futureCredentialBlob"] == MASK
    assert shown["workingDir"] == f"https://ci:{MASK}@artifacts.example/work.zip"
    runtime_env = json.loads(shown["runtimeEnvJson"])
    assert runtime_env["working_dir"] == f"https://ci:{MASK}@artifacts.example/job.zip"
    assert runtime_env["pip"]["packages"][1] == "numpy"

    code, out, err = await _rayref_get(simulator, "job", workspace, job.id, "--show-unknown")

    assert code == 0, err
    assert json.loads(out)["futureCredentialBlob"] == f"blob-{secret}"


@pytest.mark.parametrize("where", ["flag", "environment"])
async def test_rayref_get_never_prints_an_endpoints_userinfo(
    simulator: SimulatorSession, where: str
) -> None:
    password = distinctive("endpointpw")
    host = simulator.base_url.split("://", 1)[1]
    endpoint = f"http://admin:{password}@{host}"
    args = ["job", simulator.workspace_id, "rj-1"]
    if where == "flag":
        code, out, err = await _rayref_get(simulator, *args, "--endpoint", endpoint)
    else:
        code, out, err = await _rayref_get(simulator, *args, endpoint=endpoint)

    assert code != 0
    assert password not in out + err
    assert "Traceback" not in err
    assert err.strip().startswith("rayref get:")
