"""The steps of `rayref demo`, in order, and the guarantee that it leaves nothing running.

Everything started here is recorded in `<workdir>/pids.json` as it starts and stopped
by pid (operator, simulator, then the control plane) whatever ends the demo: the
story completing, Ctrl-C, SIGTERM or an error.

One idea at about 520 lines: the demo's steps are read top to bottom as its story, and
their shared stop-everything guarantee wants them in one place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import yaml

from rayref.demo.failure import Commands, FailureLogStory
from rayref.demo.guide import (
    export_hint,
    kubectl_command,
    look_around,
    rayref_logs_command,
    shown_path,
)
from rayref.demo.samples import (
    Expectation,
    SampleError,
    Samples,
    expectation_for,
    is_met,
    load_samples,
)
from rayref.demo.sets import PREFIX, SET_NAME, SUBMIT_EVERY_SECONDS, SetStory, set_manifest
from rayref.demo.watch import LiveTable, read_refs
from rayref.devcluster.build import (
    COMMAND_NAMES,
    NODE_COMMAND_NAMES,
    DevClusterBuildError,
    ensure_binaries,
)
from rayref.devcluster.cluster import DevCluster, DevClusterError
from rayref.devcluster.ports import free_port
from rayref.devcluster.processes import ChildProcess, ProcessFailed
from rayref.simulator.scenario import load_scenario

REFRESH_SECONDS = 1.0
SIMULATOR_LISTENING = "rayref-simulator listening on "
CONTROL_PLANE = tuple(n for n in COMMAND_NAMES if n != "helm" and n not in NODE_COMMAND_NAMES)


class DemoStopped(Exception):
    """SIGTERM arrived (Ctrl-C arrives as KeyboardInterrupt)."""


class DemoError(RuntimeError):
    """A step failed; the message says which and where its log is."""


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    scenario: Path
    samples: Path
    crds: Path
    kubeconfig: Path | None = None
    speed: float | None = None
    until_complete: bool = False
    timeout: float = 300.0


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def echo(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _workdir_lock(workdir: Path) -> Iterator[None]:
    workdir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (workdir / ".lock").open("w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError(
                f"another demo is running with {workdir}; stop it, or pass another --workdir"
            ) from None
        yield
    finally:
        handle.close()


@dataclass
class DemoSession:
    options: DemoOptions
    samples: Samples
    expectations: dict[str, Expectation]
    cluster: DevCluster | None = None
    simulator: ChildProcess | None = None
    operator: ChildProcess | None = None
    kubectl_path: Path = Path("kubectl")
    kubeconfig: Path = Path()
    metrics_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    story: SetStory | None = None
    failures: FailureLogStory | None = None

    @property
    def workdir(self) -> Path:
        return self.options.workdir

    # ---- bookkeeping -------------------------------------------------------------

    def _record_pid(self, name: str, pid: int | None) -> None:
        if pid is not None:
            self.pids[name] = pid
        (self.workdir / "pids.json").write_text(json.dumps(self.pids, indent=2) + "\n")

    def _clean_workdir(self) -> None:
        # Only what a previous demo left; the directory may be the user's choice.
        for name in ("cluster", "logs"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
        for name in ("kubeconfig", "pids.json", "summary.json", "refset.yaml"):
            (self.workdir / name).unlink(missing_ok=True)
        (self.workdir / "logs").mkdir()
        self._record_pid("demo", os.getpid())

    def kubectl(self, *args: str, timeout: float = 120.0) -> str:
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise DemoError(f"kubectl {' '.join(args)} took longer than {timeout:.0f} s") from None
        if result.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # ---- steps -------------------------------------------------------------------

    def start_kubernetes(self) -> None:
        names = ("kubectl",) if self.options.kubeconfig else CONTROL_PLANE
        say(f"binaries: {', '.join(names)} (built once from the pinned Go module, then cached)")
        bin_dir = ensure_binaries(names, log=echo)
        self.kubectl_path = bin_dir / "kubectl"
        if self.options.kubeconfig is not None:
            self.kubeconfig = self.options.kubeconfig
            say(f"using the cluster of {shown_path(self.kubeconfig)}")
            self.kubectl("version", timeout=30)
            return
        say("starting etcd, kube-apiserver and kube-controller-manager")
        self.cluster = DevCluster(bin_dir, work_dir=self.workdir / "cluster", log=say)
        try:
            self.cluster.start()
        finally:
            for process in (
                self.cluster.etcd,
                self.cluster.apiserver,
                self.cluster.controller_manager,
            ):
                if process is not None:
                    self._record_pid(process.name, process.pid)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.touch(mode=0o600)
        self.kubeconfig.write_bytes(self.cluster.kubeconfig.read_bytes())
        say(f"kubeconfig: {shown_path(self.kubeconfig)} (server {self.cluster.server})")

    def start_simulator(self) -> str:
        # The clock is held until the samples are applied, so the story starts when
        # there is something to watch, however long the steps before take.
        argv = [sys.executable, "-m", "rayref.simulator", "--port", "0"]
        argv += ["--scenario", str(self.options.scenario), "--speed", "0"]
        self.simulator = ChildProcess(
            "simulator",
            argv,
            self.workdir / "logs" / "simulator.log",
            env=_child_env(),
            cwd=self.workdir,
        )
        self.simulator.start()
        self._record_pid("simulator", self.simulator.pid)
        url = wait_for_simulator(self.simulator)
        say(f"EMR API simulator: {url} playing {shown_path(self.options.scenario)}")
        return url

    def install_crds(self) -> None:
        files = sorted(p for p in self.options.crds.glob("*.yaml"))
        if not files:
            raise DemoError(f"no CRD manifests in {self.options.crds}")
        names = []
        for manifest in files:
            for document in yaml.safe_load_all(manifest.read_text()):
                if (
                    isinstance(document, dict)
                    and document.get("kind") == "CustomResourceDefinition"
                ):
                    names.append(f"crd/{document['metadata']['name']}")
        file_args = [arg for manifest in files for arg in ("-f", str(manifest))]
        self.kubectl("apply", "--server-side", "--force-conflicts", *file_args)
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names, timeout=90)
        say(f"CRDs installed: {', '.join(n.removeprefix('crd/') for n in names)}")

    def start_operator(self, endpoint: str) -> None:
        health_port, metrics_port = free_port(), free_port()
        env = _child_env()
        env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "RAYREF_ENDPOINT": endpoint,
                "RAYREF_HEALTH_PORT": str(health_port),
                "RAYREF_METRICS_PORT": str(metrics_port),
                # The simulator serves its object store on its own port, not on OSS of the
                # region: without this the failed job's log download would be refused.
                "RAYREF_LOG_HOSTS": urllib.parse.urlsplit(endpoint).netloc,
            }
        )
        argv = [sys.executable, "-m", "rayref", "run"]
        for namespace in self.samples.namespaces:
            argv += ["--namespace", namespace]
        self.operator = ChildProcess(
            "operator", argv, self.workdir / "logs" / "operator.log", env=env, cwd=self.workdir
        )
        self.operator.start()
        self._record_pid("operator", self.operator.pid)
        wait_for_http_ok(self.operator, f"http://127.0.0.1:{health_port}/healthz")
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        say(
            f"operator running (pid {self.operator.pid}), watching namespace(s) "
            f"{', '.join(self.samples.namespaces)}, RAYREF_ENDPOINT={endpoint}"
        )

    def apply_samples(self, endpoint: str) -> None:
        # A previous demo against the same cluster left its refs; start the story afresh.
        for namespace in self.samples.namespaces:
            in_namespace = [r.resource for r in self.samples.refs if r.namespace == namespace]
            self.kubectl("delete", "-n", namespace, "--ignore-not-found", *in_namespace)
        self.kubectl("apply", "-f", str(self.options.samples))
        speed = self.options.speed or load_scenario(self.options.scenario).settings.speed
        _set_speed(endpoint, speed)
        say(
            f"applied {shown_path(self.options.samples)}: "
            f"{len(self.samples.refs)} refs; the simulated clock runs at x{speed:g}"
        )
        self._apply_set(endpoint)

    def _apply_set(self, endpoint: str) -> None:
        manifest = set_manifest(self.samples)
        if manifest is None:
            return
        namespace = manifest["metadata"]["namespace"]
        # Deleting a previous demo's set deletes its refs too (garbage collection).
        self.kubectl("delete", "-n", namespace, "--ignore-not-found", f"rayjobrefset/{SET_NAME}")
        path = self.workdir / "refset.yaml"
        path.write_text(yaml.safe_dump(manifest))
        self.kubectl("apply", "-f", str(path))
        self.story = SetStory(manifest, endpoint, echo)
        say(
            f"applied RayJobRefSet/{SET_NAME} (jobs named {PREFIX}...); a remote job is "
            f"submitted every {SUBMIT_EVERY_SECONDS:g} s and the set creates its ref"
        )

    def watch(self) -> tuple[bool, dict[tuple[str, str, str], Mapping[str, Any] | None], LiveTable]:
        """Print changes until complete (with --until-complete) or a signal; True if complete."""
        from kubernetes import config

        table = LiveTable(self.samples.refs, echo)
        deadline = time.monotonic() + self.options.timeout
        announced = False
        with config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig), persist_config=False
        ) as api:
            while True:
                objects = read_refs(api, self.samples.refs)
                table.update(objects)
                if self.story is not None:
                    self.story.tick(api)
                if self.failures is not None:
                    self.failures.tick(objects)
                complete = self._all_met(objects) and self._stories_done()
                if complete and self.options.until_complete:
                    return True, objects, table
                if complete and not announced:
                    announced = True
                    say("every sample ref reached its expected state; Ctrl-C stops the demo")
                if self.options.until_complete and time.monotonic() > deadline:
                    return False, objects, table
                self._check_children()
                time.sleep(REFRESH_SECONDS)

    def _stories_done(self) -> bool:
        return all(story is None or story.done for story in (self.story, self.failures))

    def _all_met(self, objects: Mapping[tuple[str, str, str], Mapping[str, Any] | None]) -> bool:
        for ref in self.samples.refs:
            obj = objects.get((ref.kind, ref.namespace, ref.name))
            status = (obj or {}).get("status") or {}
            if obj is None or not is_met(self.expectations[_key(ref)], ref.kind, status):
                return False
        return True

    def _check_children(self) -> None:
        for process in (self.simulator, self.operator):
            if process is not None and not process.running():
                raise process.failure(f"the {process.name} exited with {process.returncode()}")
        if self.cluster is not None:
            for managed in (
                self.cluster.etcd,
                self.cluster.apiserver,
                self.cluster.controller_manager,
            ):
                if managed is not None and not managed.running():
                    raise DemoError(f"{managed.name} exited; log: {managed.log_path}")

    def summary(
        self,
        complete: bool,
        objects: Mapping[tuple[str, str, str], Mapping[str, Any] | None],
        table: LiveTable,
        elapsed: float,
    ) -> dict[str, Any]:
        refs = []
        for ref in self.samples.refs:
            obj = objects.get((ref.kind, ref.namespace, ref.name))
            status = dict((obj or {}).get("status") or {})
            expectation = self.expectations[_key(ref)]
            refs.append(
                {
                    "kind": ref.kind,
                    "namespace": ref.namespace,
                    "name": ref.name,
                    "expected": expectation.describe(),
                    "met": obj is not None and is_met(expectation, ref.kind, status),
                    "seen": table.history.get(_key(ref), []),
                    "status": status,
                }
            )
        return {"complete": complete, "elapsedSeconds": round(elapsed, 1), "refs": refs}

    def stop(self) -> None:
        for process in (self.operator, self.simulator):
            if process is not None and process.running():
                say(f"stopping the {process.name} (pid {process.pid})")
            if process is not None:
                process.stop()
        if self.cluster is not None:
            say("stopping the control plane")
            self.cluster.stop()


def _key(ref: Any) -> str:
    return f"{ref.kind}/{ref.namespace}/{ref.name}"


def _child_env() -> dict[str, str]:
    # The children see neither the caller's operator settings nor cloud credentials.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RAYREF_", "ALIBABA_CLOUD_", "KUBERNETES_", "KUBECONFIG"))
    }
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for_simulator(process: ChildProcess, timeout: float = 30.0) -> str:
    """The simulator's base URL, from the one line it prints once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.log_text().splitlines():
            if line.startswith(SIMULATOR_LISTENING):
                return line.removeprefix(SIMULATOR_LISTENING).strip()
        if not process.running():
            raise process.failure(f"the simulator exited with {process.returncode()}")
        time.sleep(0.1)
    raise process.failure(f"the simulator did not listen within {timeout:.0f} s")


def wait_for_http_ok(process: ChildProcess, url: str, timeout: float = 60.0) -> None:
    """Until `url` answers 200 (the operator's liveness endpoint)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running():
            raise process.failure(f"the {process.name} exited with {process.returncode()}")
        try:
            # Only loopback URLs built by the demo.
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise process.failure(f"the {process.name} was not ready within {timeout:.0f} s")


def _set_speed(endpoint: str, speed: float) -> None:
    import asyncio

    from rayref.simulator.control import SimulatorControl

    async def set_speed() -> None:
        async with SimulatorControl(endpoint) as control:
            await control.set_speed(speed)

    asyncio.run(set_speed())


def _print_summary(summary: Mapping[str, Any]) -> None:
    for ref in summary["refs"]:
        mark = "ok  " if ref["met"] else "NOT "
        seen = " -> ".join(ref["seen"]) or "(no status)"
        echo(f"  {mark}{ref['kind']}/{ref['name']}: {seen} (expected {ref['expected']})")


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise DemoStopped


def run_demo(options: DemoOptions) -> int:
    try:
        samples = load_samples(options.samples)
        scenario = load_scenario(options.scenario)
    except (SampleError, OSError, ValueError) as error:
        print(f"rayref demo: {error}", file=sys.stderr, flush=True)
        return 2
    expectations = {_key(ref): expectation_for(ref, scenario) for ref in samples.refs}
    session = DemoSession(options, samples, expectations)
    previous_term = signal.signal(signal.SIGTERM, _raise_stopped)
    # Set explicitly: a shell starting the demo in the background hands it SIGINT
    # ignored, and Ctrl-C (or `kill -INT`) must still stop it.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        with _workdir_lock(options.workdir):
            return _run_steps(session, started)
    except (KeyboardInterrupt, DemoStopped):
        return 130 if options.until_complete else 0
    except (DemoError, ProcessFailed, DevClusterError, DevClusterBuildError) as error:
        print(f"rayref demo: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def _run_steps(session: DemoSession, started: float) -> int:
    options = session.options
    try:
        session._clean_workdir()
        session.start_kubernetes()
        endpoint = session.start_simulator()
        session.install_crds()
        session.start_operator(endpoint)
        session.apply_samples(endpoint)
        assert session.operator is not None and session.simulator is not None
        session.failures = FailureLogStory(
            session.samples.refs,
            Commands(
                kubectl=kubectl_command(session.kubectl_path, session.kubeconfig),
                rayref_logs=rayref_logs_command(session.kubeconfig, endpoint),
                operator_log=shown_path(session.operator.log_path),
            ),
            echo,
        )
        logs = {"operator": session.operator.log_path, "simulator": session.simulator.log_path}
        if session.cluster is not None:
            logs["kube-apiserver"] = session.cluster.logs_dir / "kube-apiserver.log"
        guide = look_around(
            session.samples, session.kubectl_path, session.kubeconfig, logs, session.metrics_url
        )
        guide.insert(-1, export_hint(session.kubectl_path, session.kubeconfig.resolve()))
        for line in guide:
            echo(line)
        echo("")
        story_started = time.monotonic()
        complete, objects, table = session.watch()
        summary = session.summary(complete, objects, table, time.monotonic() - story_started)
        (options.workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if complete:
            say(
                f"every sample ref reached its expected state in {summary['elapsedSeconds']:.0f} s:"
            )
            _print_summary(summary)
            return 0
        say(
            f"timed out after {options.timeout:.0f} s before every sample ref reached its "
            f"expected state; logs in {shown_path(options.workdir / 'logs')}:"
        )
        _print_summary(summary)
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            session.stop()
            say(f"stopped everything it started ({time.monotonic() - started:.0f} s in all)")
            if options.kubeconfig is not None:
                namespaces = " ".join(session.samples.namespaces)
                say(
                    f"the sample refs stay in the cluster; remove them with: "
                    f"kubectl delete namespace {namespaces}"
                )
        finally:
            signal.signal(signal.SIGINT, previous_int)
