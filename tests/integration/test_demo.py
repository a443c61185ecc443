"""`rayref demo` as a person runs it: a subprocess, its statuses read back, nothing left running.

The demo reports every process it starts in `<workdir>/pids.json`; independently, the
tests read the demo's children from /proc while it runs. After the demo exits, none
of them may be alive (a pid is matched with its start time, so a reused pid is not
mistaken for a survivor).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.paths import REPO_ROOT

DEMO_NAMESPACE = "rayref-demo"  # the namespace of examples/demo/manifests
RUN_TIMEOUT = 420.0
START_TIMEOUT = 180.0
# The last line of the simulator's driver log of a Failed job (rayref.simulator.logs).
FAILED_DRIVER_EXCEPTION = "ValueError: bad record in batch 7"

Pid = tuple[int, str]  # pid and its start time (field 22 of /proc/<pid>/stat)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; the fields after it are fixed.
    return text[text.rindex(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None


def children_of(parent: int) -> set[Pid]:
    found: set[Pid] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[1] == str(parent):
            found.add((int(entry.name), fields[19]))
    return found


def alive(processes: set[Pid]) -> set[Pid]:
    survivors = set()
    for pid, started in processes:
        fields = _stat(pid)
        # A zombie has exited; only its parent's wait is missing.
        if fields and fields[19] == started and fields[0] != "Z":
            survivors.add((pid, started))
    return survivors


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DemoRun:
    def __init__(self, workdir: Path, *args: str, sigint_ignored: bool = False) -> None:
        self.workdir = workdir
        self.output_path = workdir.parent / f"{workdir.name}-output.log"
        self._output = self.output_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rayref", "demo", "--workdir", str(workdir), *args],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("RAYREF_")},
            # As a shell hands it to a background job (`make demo &`).
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        self.children: set[Pid] = set()

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def reported(self) -> dict[str, int]:
        try:
            data: dict[str, int] = json.loads((self.workdir / "pids.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def reported_processes(self) -> set[Pid]:
        found = set()
        for name, pid in self.reported().items():
            started = _start_time(pid)
            if name != "demo" and started:
                found.add((pid, started))
        return found

    def wait_until_output(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"the demo exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in time:\n{self.output()}"
            time.sleep(0.5)
        self.note_children()

    def note_children(self) -> None:
        self.children |= children_of(self.proc.pid) | self.reported_processes()

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the demo did not end in time:\n{self.output()}")
            self.note_children()
            time.sleep(1.0)
        self._output.close()
        return int(self.proc.returncode)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._output.close()


@pytest.fixture
def demo_runs() -> Iterator[list[DemoRun]]:
    runs: list[DemoRun] = []
    yield runs
    for run in runs:
        run.stop()


def _by_name(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{ref['kind']}/{ref['name']}": ref for ref in summary["refs"]}


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _printed_command(output: str, ending: str) -> str:
    line = next(line for line in output.splitlines() if line.rstrip().endswith(ending))
    result = subprocess.run(
        ["bash", "-c", line.strip()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{line.strip()}: {result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_demo_plays_the_story_to_the_end_and_leaves_nothing_running(
    tmp_path: Path, demo_runs: list[DemoRun]
) -> None:
    run = DemoRun(tmp_path / "demo", "--until-complete", "--timeout", "300")
    demo_runs.append(run)
    run.wait_until_output("Stop: Ctrl-C")
    code = run.wait()

    output = run.output()
    assert code == 0, output
    assert "every sample ref reached its expected state" in output
    kubeconfig = tmp_path / "demo" / "kubeconfig"
    for command in ("describe rayjobref/etl-daily", "wait --for=condition=Complete"):
        assert f"--kubeconfig {kubeconfig} {command}" in output, command

    refs = _by_name(json.loads((tmp_path / "demo" / "summary.json").read_text()))
    assert set(refs) == {
        "RayJobRef/etl-daily",
        "RayJobRef/train-model",
        "RayJobRef/gpu-inference",
        "RayClusterRef/dev-cluster",
    }
    for name in ("RayJobRef/etl-daily", "RayJobRef/train-model"):
        status = refs[name]["status"]
        assert status["phase"] == "Succeeded", name
        assert _condition(status, "Complete")["status"] == "True", name
        assert _condition(status, "Synced")["status"] == "True", name
        # The table showed the job running before it finished.
        assert refs[name]["seen"][-2:] == ["Running", "Succeeded"], refs[name]["seen"]
    failed = refs["RayJobRef/gpu-inference"]["status"]
    assert failed["phase"] == "Failed"
    assert "CUDA out of memory" in failed["message"]
    assert _condition(failed, "Failed")["status"] == "True"
    assert _condition(failed, "Stalled")["status"] == "True"
    # The failed job ran before it failed: the operator read its driver log, and the demo
    # printed it under the command that shows it.
    assert failed["failureLog"]["reason"] == "LogRead"
    assert failed["failureLog"]["excerpt"].splitlines()[0] == FAILED_DRIVER_EXCEPTION
    printed = output.splitlines()
    kubectl = next(
        line.strip().removesuffix(" describe rayjobref/etl-daily -n rayref-demo")
        for line in printed
        if line.endswith(" describe rayjobref/etl-daily -n rayref-demo")
    )
    simulator = re.search(r"EMR API simulator: (\S+) playing", output)
    assert simulator is not None, output
    endpoint = simulator.group(1)
    store = urllib.parse.urlsplit(endpoint).netloc
    heading = next(i for i, line in enumerate(printed) if "rayjobref/gpu-inference Failed:" in line)
    assert "from status.failureLog" in printed[heading]
    assert printed[heading + 1] == (
        f"  {kubectl} get rayjobref gpu-inference -n {DEMO_NAMESPACE} "
        "-o jsonpath='{.status.failureLog.excerpt}'; echo"
    )
    assert printed[heading + 2] == f"    {FAILED_DRIVER_EXCEPTION}"
    assert any(
        line.strip().endswith(
            f"rayref logs --endpoint {endpoint} --log-host {store} "
            f"rayjobref/gpu-inference -n {DEMO_NAMESPACE}"
        )
        for line in printed[heading:]
    )
    cluster = refs["RayClusterRef/dev-cluster"]["status"]
    assert cluster["state"] == "Running"
    assert refs["RayClusterRef/dev-cluster"]["seen"][-2:] == ["Starting", "Running"]
    assert (cluster["readyInstances"], cluster["totalInstances"], cluster["ready"]) == (3, 3, "3/3")
    assert _condition(cluster, "Ready")["status"] == "True"
    oom = [i for i in cluster["instances"] if i.get("reason") == "OOMKilled"]
    assert [(i["type"], i["phase"], i.get("containerExitCode")) for i in oom] == [
        ("Worker", "Running", 137)
    ]

    reported = run.reported()
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "simulator", "operator"} <= set(
        reported
    )
    assert {pid for pid, _ in run.children} >= {
        pid for name, pid in reported.items() if name != "demo"
    }
    assert alive(run.children) == set()


def test_ctrl_c_stops_the_control_plane_simulator_and_operator(
    tmp_path: Path, demo_runs: list[DemoRun]
) -> None:
    run = DemoRun(tmp_path / "demo", sigint_ignored=True)
    demo_runs.append(run)
    run.wait_until_output("rayjobref/etl-daily ")
    assert len(run.children) >= 5, run.children
    # The commands it prints work as printed.
    listing = _printed_command(run.output(), "get rayref -n rayref-demo")
    assert "etl-daily" in listing and "dev-cluster" in listing, listing
    explained = _printed_command(run.output(), "explain rayjobref.status")
    assert "phase" in explained, explained

    os.kill(run.proc.pid, signal.SIGINT)
    code = run.wait(timeout=120)

    assert code == 0, run.output()
    assert "stopped everything it started" in run.output()
    assert alive(run.children) == set()
    assert not (tmp_path / "demo" / "summary.json").exists()


def _demo_namespace_phase(kube: KubeTestBed) -> str | None:
    with kube.api_client() as api:
        try:
            ref = cast(
                "dict[str, Any]",
                client.CustomObjectsApi(api).get_namespaced_custom_object(
                    "rayref.io", "v1alpha1", DEMO_NAMESPACE, "rayjobrefs", "etl-daily"
                ),
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
    phase = ref.get("status", {}).get("phase")
    return str(phase) if phase else None


@pytest.fixture
def demo_namespace_removed(kube: KubeTestBed) -> Iterator[None]:
    yield
    kube.kubectl("delete", "namespace", DEMO_NAMESPACE, "--ignore-not-found", "--wait=false")


def test_against_an_existing_cluster_sigterm_stops_what_the_demo_started(
    tmp_path: Path, kube: KubeTestBed, demo_runs: list[DemoRun], demo_namespace_removed: None
) -> None:
    run = DemoRun(tmp_path / "demo", "--kubeconfig", str(kube.kubeconfig))
    demo_runs.append(run)
    run.wait_until_output("rayjobref/etl-daily ")
    # The operator the demo started writes statuses into the existing cluster.
    deadline = time.monotonic() + 60
    while _demo_namespace_phase(kube) is None:
        assert time.monotonic() < deadline, run.output()
        time.sleep(0.5)
    assert not (tmp_path / "demo" / "kubeconfig").exists()
    assert set(run.reported()) == {"demo", "simulator", "operator"}

    os.kill(run.proc.pid, signal.SIGTERM)
    code = run.wait(timeout=120)

    assert code == 0, run.output()
    assert alive(run.children) == set()
    # The existing cluster is not the demo's to stop.
    assert kube.cluster.apiserver is not None and kube.cluster.apiserver.running()
    assert f"delete namespace {DEMO_NAMESPACE}" in run.output()
