"""`rayref logs job`, through the real entry point against the simulator over real HTTP:
its log routes and its loopback object store, reached only as an allowed log host."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.paths import REPO_ROOT
from tests.fixtures.simulator import SimulatorSession
from tests.support.cli import clean_env, one_line, rayref

LAST_TRACEBACK_LINE = "ValueError: bad record in batch 7"
PLANTED = "hunter2-planted"


def _env(simulator: SimulatorSession, *, allow_store: bool = True) -> dict[str, str]:
    key = simulator.credentials
    extra = {"RAYREF_LOG_HOSTS": f"127.0.0.1:{simulator.server.port}"} if allow_store else {}
    return clean_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=key.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=key.access_key_secret,
        RAYREF_ENDPOINT=simulator.base_url,
        **extra,
    )


@pytest.fixture
async def failed_job(simulator: SimulatorSession) -> str:
    """A job that ran 120 simulated seconds and failed, its entrypoint carrying a password."""
    await simulator.control.set_speed(0)  # the fixture restores the speed
    await simulator.control.create_job(
        simulator.workspace_id,
        submission_id="rj-cli-logs",
        script={"runningSeconds": 120, "outcome": "Failed"},
        entrypoint=f"python main.py --password={PLANTED}",
    )
    await simulator.control.advance_clock(12 + 120 + 1)
    return "rj-cli-logs"


@contextlib.asynccontextmanager
async def _following(
    simulator: SimulatorSession, submission_id: str, script: dict[str, Any], *, after: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`rayref logs job ... --follow` of a new job, `after` simulated seconds from its
    submission; the simulated clock moves only when the test says. Killed on the way out
    if it is still running, so a failed assertion leaves no process behind."""
    ws = simulator.workspace_id
    await simulator.control.set_speed(0)
    await simulator.control.create_job(ws, submission_id=submission_id, script=script)
    await simulator.control.advance_clock(after)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "rayref", "logs", "job", ws, submission_id, "--follow", "--interval", "0.2"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(simulator),
        cwd=REPO_ROOT,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _read_lines(process: asyncio.subprocess.Process, count: int) -> list[bytes]:
    assert process.stdout is not None
    return [await asyncio.wait_for(process.stdout.readline(), 60) for _ in range(count)]


async def test_the_driver_log_of_a_failed_job_ends_in_its_traceback_with_secrets_masked(
    simulator: SimulatorSession, failed_job: str
) -> None:
    code, out, err = await rayref(
        "logs", "job", simulator.workspace_id, failed_job, "--tail", "1000", env=_env(simulator)
    )

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[-1] == LAST_TRACEBACK_LINE
    assert "Traceback (most recent call last):" in lines
    started = next(line for line in lines if "started: python main.py" in line)
    assert PLANTED not in out
    assert started.endswith("--password=**********")


async def test_a_private_key_in_the_log_is_printed_without_its_body(
    simulator: SimulatorSession,
) -> None:
    # the entrypoint is the driver log's second line: a key passed inline spans lines
    key = [f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC{i}{PLANTED.replace('-', '')}" for i in range(3)]
    armour = "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"
    await simulator.control.set_speed(0)
    await simulator.control.create_job(
        simulator.workspace_id,
        submission_id="rj-cli-key",
        script={"runningSeconds": 60, "outcome": "Failed"},
        entrypoint="python main.py --key '" + "\n".join([armour[0], *key, armour[1]]) + "'",
    )
    await simulator.control.advance_clock(12 + 60 + 1)

    code, out, err = await rayref(
        "logs", "job", simulator.workspace_id, "rj-cli-key", env=_env(simulator)
    )

    assert (code, err) == (0, "")
    assert not [line for line in key if line in out]
    lines = out.splitlines()
    begin = next(i for i, line in enumerate(lines) if line.endswith(armour[0]))
    assert lines[begin + 1 : begin + 5] == ["**********"] * 3 + [armour[1] + "'"]
    assert lines[-1] == LAST_TRACEBACK_LINE


async def test_tail_gives_that_many_lines(simulator: SimulatorSession, failed_job: str) -> None:
    code, out, _ = await rayref(
        "logs", "job", simulator.workspace_id, failed_job, "--tail", "5", env=_env(simulator)
    )

    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[-1] == LAST_TRACEBACK_LINE


async def test_list_and_file(simulator: SimulatorSession, failed_job: str) -> None:
    ws = simulator.workspace_id
    code, out, _ = await rayref("logs", "job", ws, failed_job, "--list", env=_env(simulator))

    assert code == 0
    names = [line.split()[-1] for line in out.splitlines()]
    assert f"attempt-1/{failed_job}_driver.log" in names
    worker = next(name for name in names if "worker-" in name)
    sizes = [int(line.split()[0]) for line in out.splitlines()]
    assert all(size > 0 for size in sizes)

    code, out, err = await rayref(
        "logs", "job", ws, failed_job, "--file", worker.rsplit("/", 1)[-1], env=_env(simulator)
    )
    assert (code, err) == (0, "")
    assert out.strip() and LAST_TRACEBACK_LINE not in out

    code, _, err = await rayref(
        "logs", "job", ws, failed_job, "--file", "nope.log", env=_env(simulator)
    )
    assert code == 1
    assert one_line(err) == f"rayref logs: job {failed_job} has no log file 'nope.log'; see --list"


async def test_a_store_not_on_the_allow_list_is_refused_in_one_line_without_the_url(
    simulator: SimulatorSession, failed_job: str
) -> None:
    code, out, err = await rayref(
        "logs",
        "job",
        simulator.workspace_id,
        failed_job,
        env=_env(simulator, allow_store=False),
    )

    line = one_line(err)
    assert code == 1
    assert out == ""
    assert line.startswith("rayref logs: LogHostNotAllowedError: ")
    assert f"127.0.0.1:{simulator.server.port}" in line
    assert "--log-host" in line
    assert "_oss" not in line and "Signature" not in line and "Expires" not in line


@pytest.mark.parametrize(
    ("flags", "env_entry", "problem"),
    [
        (
            ("--log-host", "https://logs.example.com"),
            "",
            "--log-host entry 'https://logs.example.com' has a scheme: give host, host:port "
            "or *.domain, not a URL",
        ),
        (
            (),
            ",ops:hunter2@logs.example.com",
            "log host entry '***@logs.example.com' has user information (from $RAYREF_LOG_HOSTS)",
        ),
    ],
    ids=["flag", "environment"],
)
async def test_a_log_host_entry_no_download_could_match_is_a_usage_line(
    simulator: SimulatorSession,
    failed_job: str,
    flags: tuple[str, ...],
    env_entry: str,
    problem: str,
) -> None:
    env = _env(simulator)  # the store is allowed: without the bad entry, the log prints
    env["RAYREF_LOG_HOSTS"] += env_entry
    code, out, err = await rayref(
        "logs", "job", simulator.workspace_id, failed_job, *flags, env=env
    )

    assert (code, out) == (2, "")
    assert one_line(err) == f"rayref logs: error: {problem}"
    assert "hunter2" not in err


async def test_an_unknown_job_is_one_line(simulator: SimulatorSession) -> None:
    code, out, err = await rayref(
        "logs", "job", simulator.workspace_id, "rj-nope", env=_env(simulator)
    )

    assert code == 1
    assert out == ""
    line = one_line(err)
    assert line.startswith("rayref logs: ResourceNotFound (HTTP 404, request id ")
    assert line.endswith("check the workspace id and the submission id")


async def test_an_invalid_submission_id_is_refused_before_any_request() -> None:
    code, _, err = await rayref(
        "logs", "job", "w-d2d82aa09155", "rj-1/../x", "--endpoint", "http://127.0.0.1:1"
    )

    assert code == 2
    assert one_line(err) == (
        "rayref logs: error: submission id 'rj-1/../x' is not valid: expected letters, "
        "digits, - and _, e.g. rj-5f3c2a1b9d"
    )


@pytest.mark.parametrize(
    "setting",
    [
        {"RAYREF_DEFAULT_REGION": "evil.com/"},
        {"RAYREF_NETWORK": "internet"},
        {"RAYREF_ENDPOINT": "http://127.0.0.1:99999"},
        {"RAYREF_ENDPOINT": "http://user:hunter2@127.0.0.1:8787"},
    ],
)
async def test_a_bad_setting_reads_as_in_rayref_get(setting: dict[str, str]) -> None:
    ids = ("w-d2d82aa09155", "rj-5f3c2a1b9d")
    env = clean_env(**setting)

    logs_code, _, logs_err = await rayref("logs", "job", *ids, env=env)
    get_code, _, get_err = await rayref("get", "job", *ids, env=env)

    assert (logs_code, get_code) == (2, 2)
    logs_line = one_line(logs_err).removeprefix("rayref logs: error: ")
    assert logs_line == one_line(get_err).removeprefix("rayref get: error: ")
    assert f"(from ${next(iter(setting))})" in logs_line
    assert "hunter2" not in logs_line


async def test_follow_prints_new_lines_while_the_job_runs_and_stops_when_it_ends(
    simulator: SimulatorSession,
) -> None:
    script = {"runningSeconds": 600, "outcome": "Failed"}
    async with _following(simulator, "rj-cli-follow", script, after=12 + 30) as process:
        seen = await _read_lines(process, 8)
        assert seen[-1].decode().rstrip().endswith("step 6: processed 768 rows")
        await simulator.control.advance_clock(600)  # the job fails at 600 s of running
        rest, err = await asyncio.wait_for(process.communicate(), 60)

    assert (process.returncode, err) == (0, b"")
    lines = (b"".join(seen) + rest).decode().splitlines()
    assert lines[-1] == LAST_TRACEBACK_LINE
    steps = [line.split(" -- ", 1)[1] for line in lines if " -- step " in line]
    assert steps == [f"step {n}: processed {n * 128} rows" for n in range(1, 121)]


# --- rayref logs rayjobref/NAME: the ref read through the user's kubeconfig ----------


def _ref_env(
    simulator: SimulatorSession, kubeconfig: Path, *, with_keys: bool = False
) -> dict[str, str]:
    env = (
        _env(simulator)
        if with_keys
        else clean_env(
            RAYREF_ENDPOINT=simulator.base_url,
            RAYREF_LOG_HOSTS=f"127.0.0.1:{simulator.server.port}",
        )
    )
    return {**env, "KUBECONFIG": str(kubeconfig)}


def _apply_ref(kube: KubeTestBed, simulator: SimulatorSession, namespace: str, job: str) -> None:
    key = simulator.credentials
    kube.apply_crds()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "emr-key", "namespace": namespace},
        "stringData": {"accessKeyId": key.access_key_id, "accessKeySecret": key.access_key_secret},
    }
    ref = {
        "apiVersion": "rayref.io/v1alpha1",
        "kind": "RayJobRef",
        "metadata": {"name": "etl", "namespace": namespace},
        "spec": {
            "workspaceId": simulator.workspace_id,
            "submissionId": job,
            "regionId": "cn-hangzhou",
            "credentialsSecretRef": {"name": "emr-key"},
        },
    }
    for obj in (secret, ref):
        kube.kubectl("apply", "-f", "-", input=json.dumps(obj))


async def test_a_rayjobref_gives_the_job_and_its_secret_the_credentials(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, failed_job: str
) -> None:
    _apply_ref(kube, simulator, namespace, failed_job)

    # no key in the environment: only the ref's Secret can sign the requests
    code, out, err = await rayref(
        "logs", "rayjobref/etl", "-n", namespace, "--tail", "3",
        env=_ref_env(simulator, kube.kubeconfig),
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == LAST_TRACEBACK_LINE
    assert len(out.splitlines()) == 3


async def test_a_rayjobref_whose_secret_the_user_may_not_read_falls_back_with_a_note(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession, failed_job: str
) -> None:
    _apply_ref(kube, simulator, namespace, failed_job)
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "ref-reader", "namespace": namespace},
        "rules": [{"apiGroups": ["rayref.io"], "resources": ["rayjobrefs"], "verbs": ["get"]}],
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(reader))
    kube.kubectl(
        "create", "rolebinding", "ref-reader", "-n", namespace, "--role=ref-reader",
        f"--serviceaccount={namespace}:viewer",
    )  # fmt: skip
    kubeconfig = kube.service_account_kubeconfig(namespace, "viewer")

    code, out, err = await rayref(
        "logs", "rayjobref/etl", "-n", namespace, "--tail", "1",
        env=_ref_env(simulator, kubeconfig, with_keys=True),
    )  # fmt: skip

    assert code == 0
    assert out.splitlines() == [LAST_TRACEBACK_LINE]
    assert one_line(err) == (
        f"rayref logs: note: cannot read Secret {namespace}/emr-key (HTTP 403); "
        "using the default credentials chain"
    )


async def test_an_unknown_rayjobref_is_one_line(
    kube: KubeTestBed, namespace: str, simulator: SimulatorSession
) -> None:
    kube.apply_crds()

    code, out, err = await rayref(
        "logs", "rayjobref/nope", "-n", namespace, env=_ref_env(simulator, kube.kubeconfig)
    )

    assert (code, out) == (1, "")
    assert one_line(err) == f"rayref logs: rayjobref {namespace}/nope not found"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("job", "w-d2d82aa09155"), "job needs WORKSPACE_ID and SUBMISSION_ID"),
        (("rayjobref/etl", "w-d2d82aa09155"), "rayjobref/NAME takes a name and no ids"),
        (("cluster", "w-d2d82aa09155", "ray-1"), "'cluster' is neither job nor rayjobref/NAME"),
        (("job", "w-d2d82aa09155", "rj-1", "--list", "--follow"), "--list and --follow do not"),
    ],
)
async def test_a_target_that_does_not_fit_is_a_usage_line(
    args: tuple[str, ...], problem: str
) -> None:
    code, _, err = await rayref("logs", *args)

    assert code == 2
    assert one_line(err).startswith(f"rayref logs: error: {problem}")


async def test_ctrl_c_while_following_exits_130_in_one_line(simulator: SimulatorSession) -> None:
    script = {"runningSeconds": 600}
    async with _following(simulator, "rj-cli-interrupt", script, after=12 + 10) as process:
        await _read_lines(process, 4)  # two start lines and steps 1 and 2: it is following now
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 130
    assert one_line(err.decode()) == "rayref logs: interrupted"
