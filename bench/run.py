"""rayref at scale against the simulator and a real apiserver, next to a per-ref baseline.

    python -m bench.run [--sizes 1000,5000,10000] [--smoke] [--output docs/performance.md]
                        [--json results.json] [--operators rayref,baseline]

For each size N: a fresh control plane (`rayref.devcluster`) and simulator, N RayJobRefs
(20% running, 80% finished) and N/10 RayClusterRefs with `pollIntervalSeconds: 30`,
statuses already written (see `bench.world`). Then, for rayref and for the baseline
(`bench.baseline_operator`, one kopf timer per ref), each with a budget of 20 requests/s:

1. restart: start the operator; time until it has checked every ref (its
   `*_refs_checked` gauge), and the writes meanwhile (none are due);
2. changes: end one running job a second (the simulator records `changedAt`), and
   every fifth second OOM-kill a running cluster's head (a node change its list entry
   does not show: only a node refresh finds it); cloud requests per operation from the
   simulator's counters, writes from a watch of both kinds, and the delay from each
   change to its status (node changes are their own figure, seen until the end);
3. drain: wait (bounded) for the last changes to show;
4. idle: nothing changes; CPU share and writes.

Peak RSS is sampled from /proc every second. The table is printed and, unless
`--smoke`, written to docs/performance.md with the machine's description.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from bench import report
from bench.kubeapi import Kube
from bench.measure import Expectation, ProcWatch, Watcher, percentile, scrape
from bench.world import POLL_INTERVAL, Ref, World, create, plan, presync, write_scenario
from rayref.devcluster.ports import free_port
from rayref.devcluster.processes import ChildProcess

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")
LISTENING = "rayref-simulator listening on "
BUDGET_RATE, BUDGET_BURST = 20, 40
# One running cluster's head is OOM-killed per this many job changes.
NODE_CHANGE_EVERY = 5
# One job change in this many is a failure (a driver log ending in a traceback) instead
# of a success: what reading failed jobs' logs costs (issue 25). 10, not fewer: a full
# run's 75 changes then give 8 failed jobs, a smoke run's 15 give 2.
FAIL_EVERY = 10
FAIL_MESSAGE = "Job failed: the driver exited with code 1 (bench)"


@dataclass(frozen=True)
class Phases:
    poll_interval: int
    verify_cap: float
    change_seconds: float
    changes_per_second: float
    drain_cap: float
    idle_seconds: float


FULL = Phases(
    poll_interval=POLL_INTERVAL,
    verify_cap=90,
    change_seconds=75,
    changes_per_second=1.0,
    drain_cap=40,
    idle_seconds=40,
)
SMOKE = Phases(
    poll_interval=10,
    verify_cap=40,
    change_seconds=15,
    changes_per_second=1.0,
    drain_cap=15,
    idle_seconds=8,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Process:
    """A child of `rayref.devcluster.processes` (stopped by its pid: SIGTERM, then SIGKILL),
    started at once, as the benchmark's scenarios want it."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.child = ChildProcess(log_path.stem, argv, log_path, env=env, cwd=REPO)
        self.child.start()

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        popen = self.child.popen
        assert popen is not None
        return popen

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> None:
        self.child.stop(grace=timeout)


def _child_env(kubeconfig: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAYREF_", "ALIBABA_CLOUD_", "KUBERNETES_", "BASELINE_"))
    }
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "PYTHONUNBUFFERED": "1",
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        }
    )
    return env


def start_simulator(scenario: Path, workdir: Path) -> tuple[Process, str]:
    stdout = workdir / "simulator.stdout"
    process = Process(
        [
            sys.executable,
            "-m",
            "rayref.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scenario",
            str(scenario),
        ],
        {**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = stdout.read_text(errors="replace")
        if LISTENING in text:
            return process, text.split(LISTENING, 1)[1].splitlines()[0].strip()
        if process.proc.poll() is not None:
            break
        time.sleep(0.1)
    process.stop()
    raise RuntimeError("the simulator did not start:\n" + stdout.read_text(errors="replace"))


def start_rayref(
    kubeconfig: Path, endpoint: str, log_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[Process, int]:
    """`rayref run` on the benchmark's budget, list strategy; (process, metrics port)."""
    port = free_port()
    env = _child_env(kubeconfig)
    env.update(
        {
            "RAYREF_ENDPOINT": endpoint,
            "RAYREF_REQUEST_RATE": str(BUDGET_RATE),
            "RAYREF_REQUEST_BURST": str(BUDGET_BURST),
            "RAYREF_METRICS_PORT": str(port),
            "RAYREF_HEALTH_PORT": str(free_port()),
            "RAYREF_LOG_LEVEL": "WARNING",
            "RAYREF_POLL_STRATEGY": "list",
            # the simulator serves failed jobs' logs on its own address, not on OSS
            "RAYREF_LOG_HOSTS": urllib.parse.urlsplit(endpoint).netloc,
        }
    )
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "rayref", "run", "--all-namespaces"]
    return Process(argv, env, log_path), port


def start_operator(
    name: str, kubeconfig: Path, endpoint: str, workdir: Path, interval: int
) -> tuple[Process, int, str]:
    """(process, metrics port, name of its refs-checked gauge)."""
    if name == "rayref":
        process, port = start_rayref(kubeconfig, endpoint, workdir / f"{name}.log")
        return process, port, "rayref_refs_checked"
    port = free_port()
    env = _child_env(kubeconfig)
    env.update(
        {
            "BASELINE_ENDPOINT": endpoint,
            "BASELINE_RATE": str(BUDGET_RATE),
            "BASELINE_BURST": str(BUDGET_BURST),
            "BASELINE_METRICS_PORT": str(port),
            "BASELINE_INTERVAL": str(interval),
        }
    )
    argv = [sys.executable, "-m", "bench.baseline_operator"]
    return Process(argv, env, workdir / f"{name}.log"), port, "baseline_refs_checked"


async def measure_operator(
    name: str,
    world: World,
    changes: list[Ref],
    node_changes: list[Ref],
    kube: Kube,
    control: object,
    kubeconfig: Path,
    endpoint: str,
    phases: Phases,
    workdir: Path,
    control_plane: dict[str, int] | None = None,
) -> report.Result:
    from rayref.simulator.control import SimulatorControl

    assert isinstance(control, SimulatorControl)
    refs = world.refs
    result = report.Result(operator=name, size=world.size, refs=len(refs))
    watcher = Watcher(kube)
    await watcher.start()
    await control.reset_counters()
    process, port, gauge = start_operator(name, kubeconfig, endpoint, workdir, phases.poll_interval)
    whole = ProcWatch(process.pid)
    whole.start()
    try:
        # 1. restart: every ref checked, nothing written
        started = time.monotonic()
        while time.monotonic() - started < phases.verify_cap:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {process.log_path}")
            result.reverified = int(scrape(port, gauge))
            if result.reverified >= len(refs):
                result.reverify_seconds = time.monotonic() - started
                break
            await asyncio.sleep(0.25)
        result.restart_writes = watcher.total_writes()
        result.phase_seconds["restart"] = time.monotonic() - started
        log(
            f"{name} N={world.size}: checked {result.reverified}/{len(refs)} in "
            f"{result.phase_seconds['restart']:.1f} s, {result.restart_writes} writes"
        )
        # 2. changes
        watcher.reset()
        await control.reset_counters()
        busy = ProcWatch(process.pid)
        busy.start()
        plane_busy = {name: ProcWatch(pid) for name, pid in (control_plane or {}).items()}
        for watch in plane_busy.values():
            watch.start()
        begin = time.monotonic()
        for index, ref in enumerate(changes):
            await asyncio.sleep(
                max(0.0, begin + index / phases.changes_per_second - time.monotonic())
            )
            await end_job(
                control, watcher, ref, failing=index % FAIL_EVERY == 0, reads_log=name == "rayref"
            )
            if index % NODE_CHANGE_EVERY == 0 and index // NODE_CHANGE_EVERY < len(node_changes):
                cluster = node_changes[index // NODE_CHANGE_EVERY]
                # restarts after a day: the OOM kill stays what the node shows
                view = await control.update_cluster(
                    cluster.workspace_id, cluster.remote_id, action="oom", restart_seconds=86400
                )
                watcher.expected[f"{cluster.namespace}/{cluster.name}"] = Expectation(
                    view.changed_at / 1000.0, node_reason="OOMKilled"
                )
        await asyncio.sleep(max(0.0, begin + phases.change_seconds - time.monotonic()))
        minutes = (time.monotonic() - begin) / 60.0
        counts = await control.counters()
        await busy.stop()
        result.cpu_busy_percent = busy.cpu_share
        for watch in plane_busy.values():
            await watch.stop()
        result.requests_per_minute = {
            op: sum(counts.operations.get(op, {}).values()) / minutes for op in report.OPERATIONS
        }
        result.throttled = counts.outcome_total("throttled")
        result.phase_seconds["changes"] = minutes * 60
        writes_while_changing = watcher.total_writes()
        # 3. drain
        drain = time.monotonic()
        while watcher.unseen() and time.monotonic() - drain < phases.drain_cap:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        result.phase_seconds["drain"] = time.monotonic() - drain
        # 4. idle (a late change may still show; it counts, the CPU share too)
        idle = ProcWatch(process.pid)
        idle.start()
        plane_idle = {name: ProcWatch(pid) for name, pid in (control_plane or {}).items()}
        for watch in plane_idle.values():
            watch.start()
        await asyncio.sleep(phases.idle_seconds)
        await idle.stop()
        for part, watch in plane_idle.items():
            await watch.stop()
            result.control_plane[part] = {
                "rss_mib": max(watch.peak_rss, plane_busy[part].peak_rss) / 1024 / 1024,
                "cpu_busy_percent": plane_busy[part].cpu_share,
                "cpu_idle_percent": watch.cpu_share,
            }
        await failure_log_figures(result, watcher, control)
        node_delays = watcher.delays(nodes=True)
        result.node_changes = len(node_delays)
        result.node_changes_seen = sum(1 for d in node_delays if not math.isinf(d))
        if node_delays:
            result.node_freshness_p50 = percentile(node_delays, 0.50)
            result.node_freshness_p99 = percentile(node_delays, 0.99)
            result.node_freshness_max = max(node_delays)
        result.cpu_idle_percent = idle.cpu_share
        assert idle.last is not None
        result.rss_idle_mib = idle.last.rss_bytes / 1024 / 1024
        result.phase_seconds["idle"] = phases.idle_seconds
        result.writes_per_minute = writes_while_changing / minutes
        changed = {ref for ref, item in watcher.expected.items() if not item.node_reason}
        node_changed = set(watcher.expected) - changed
        delays = watcher.delays()
        result.changes = len(delays)
        result.changes_seen = sum(1 for d in delays if not math.isinf(d))
        writes_to_changed = (
            sum(n for ref, n in watcher.writes.items() if ref in changed)
            - result.failure_log_writes
        )
        result.unchanged_ref_writes = sum(
            n for ref, n in watcher.writes.items() if ref not in changed and ref not in node_changed
        )
        result.node_change_writes = sum(
            n for ref, n in watcher.writes.items() if ref in node_changed
        )
        result.writes_per_change = (
            writes_to_changed / result.changes_seen if result.changes_seen else math.nan
        )
        result.freshness_p50 = percentile(delays, 0.50)  # job and state changes only
        result.freshness_p95 = percentile(delays, 0.95)
        result.freshness_p99 = percentile(delays, 0.99)
        await whole.stop()
        result.rss_mib = whole.peak_rss / 1024 / 1024
    finally:
        process.stop()
        await watcher.stop()
    log(f"{name} N={world.size}: {json.dumps(result.figures(), default=str)}")
    log(f"{name} N={world.size}: {report.node_lists(result)}")
    return result


async def end_job(
    control: object, watcher: Watcher, ref: Ref, *, failing: bool, reads_log: bool
) -> None:
    """End a running job (failed or succeeded) and expect its ref to show it."""
    from rayref.simulator.control import SimulatorControl

    assert isinstance(control, SimulatorControl)
    view = await control.update_job(
        ref.workspace_id,
        ref.remote_id,
        action="fail" if failing else "succeed",
        message=FAIL_MESSAGE if failing else None,
    )
    watcher.expected[f"{ref.namespace}/{ref.name}"] = Expectation(
        view.changed_at / 1000.0,
        phase="Failed" if failing else "Succeeded",
        wants_log=failing and reads_log,
    )


async def failure_log_figures(result: report.Result, watcher: Watcher, control: object) -> None:
    """The failed jobs' logs: requests since the changes began (counters are not reset
    after them: a log is read after the phase, so the last failures' reads come in the
    drain or idle phase) and the delay from Failed to failureLog."""
    from rayref.simulator.control import SimulatorControl

    assert isinstance(control, SimulatorControl)
    result.failed_jobs = sum(1 for item in watcher.expected.values() if item.phase == "Failed")
    logs = watcher.failure_logs()
    if not logs:
        return
    counts = await control.counters()
    result.failure_log_requests = {
        op: sum(counts.operations.get(op, {}).values())
        for op in (*report.LOG_CALLS, report.LOG_DOWNLOAD)
    }
    shown = [(delay, reason) for delay, reason in logs if not math.isinf(delay)]
    result.failure_logs_shown = len(shown)
    result.failure_log_writes = len(shown)
    for _, reason in shown:
        result.failure_log_reasons[reason] = result.failure_log_reasons.get(reason, 0) + 1
    delays = [delay for delay, _ in logs]
    result.failure_log_p50 = percentile(delays, 0.50)
    result.failure_log_p99 = percentile(delays, 0.99)
    result.failure_log_max = max(delays)
    log(f"{result.operator} N={result.size}: {report.failure_log_row(result)}")


async def run_size(
    size: int, phases: Phases, operators: list[str], bin_dir: Path, workdir: Path
) -> list[report.Result]:
    from rayref.devcluster.cluster import DevCluster
    from rayref.simulator.control import SimulatorControl

    world = plan(size)
    sizedir = workdir / f"n{size}"
    sizedir.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(world, sizedir / "scenario.json")
    results: list[report.Result] = []
    with DevCluster(bin_dir, work_dir=sizedir / "devcluster", log=log) as cluster:
        cluster.apply_crds(REPO / "crds")
        simulator, endpoint = start_simulator(scenario, sizedir)
        kube = Kube(cluster.kubeconfig)
        control = SimulatorControl(endpoint)
        try:
            await create(kube, world, log, interval=phases.poll_interval)
            await presync(kube, control, world, log)
            active = world.active_jobs()
            random.Random(size).shuffle(active)
            per_operator = min(
                int(phases.change_seconds * phases.changes_per_second),
                len(active) // max(1, len(operators)),
            )
            plane = {
                name: child.pid
                for name, child in (("kube-apiserver", cluster.apiserver), ("etcd", cluster.etcd))
                if child is not None and child.pid is not None
            }
            running = [ref for ref in world.clusters if ref.active]
            random.Random(size + 1).shuffle(running)
            per_operator_nodes = per_operator // NODE_CHANGE_EVERY + 1
            for index, name in enumerate(operators):
                changes = active[index * per_operator : (index + 1) * per_operator]
                node_changes = running[
                    index * per_operator_nodes : (index + 1) * per_operator_nodes
                ]
                results.append(
                    await measure_operator(
                        name,
                        world,
                        changes,
                        node_changes,
                        kube,
                        control,
                        cluster.kubeconfig,
                        endpoint,
                        phases,
                        sizedir,
                        control_plane=plane,
                    )
                )
        finally:
            await control.aclose()
            await kube.close()
            simulator.stop()
    return results


async def stoppable(work: Awaitable[T]) -> T:
    """Run `work` so that SIGTERM (and SIGINT, even when a shell started us in the
    background) cancels it: every child process, each in a session of its own, is then
    stopped by the `finally` blocks on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    return await work


async def run_all(
    sizes: list[int], phases: Phases, operators: list[str], bin_dir: Path, workdir: Path
) -> list[report.Result]:
    results: list[report.Result] = []
    for size in sizes:
        results += await run_size(size, phases, operators, bin_dir, workdir)
    return results


def write_markdown(
    path: Path,
    results: list[report.Result],
    machine: dict[str, str],
    phases: Phases,
    elapsed: float,
    command: str,
) -> None:
    template = (Path(__file__).parent / "performance_template.md").read_text()
    largest = max(r.size for r in results)
    closing = [r for r in results if r.size == largest]
    ours = next((r for r in closing if r.operator == "rayref"), None)
    text = template.format(
        command=command,
        machine="\n".join(f"| {k} | {v} |" for k, v in machine.items()),
        table=report.table(results, phases.verify_cap),
        closing=report.table(closing, phases.verify_cap),
        failure_logs=report.failure_log_table(results),
        targets=report.targets(ours) if ours else "",
        largest=f"{largest:,}",
        elapsed=f"{elapsed / 60:.0f}",
        verify_cap=f"{phases.verify_cap:.0f}",
        change_seconds=f"{phases.change_seconds:.0f}",
        drain_cap=f"{phases.drain_cap:.0f}",
        idle_seconds=f"{phases.idle_seconds:.0f}",
        rate=BUDGET_RATE,
        interval=phases.poll_interval,
    )
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="comma list of RayJobRef counts")
    parser.add_argument("--smoke", action="store_true", help="short phases; for CI")
    parser.add_argument("--operators", default="rayref,baseline")
    parser.add_argument(
        "--output",
        type=Path,
        help="markdown report (default: docs/performance.md, none with --smoke)",
    )
    parser.add_argument("--json", type=Path, help="write every figure as JSON here")
    parser.add_argument(
        "--workdir", type=Path, help="logs and control-plane files (default: a temp dir)"
    )
    parser.add_argument(
        "--render", type=Path, help="only write --output from a --json file of an earlier run"
    )
    parser.add_argument(
        "--verify-cap",
        type=float,
        help="seconds the re-verification may take before it counts as missed (default 90)",
    )
    args = parser.parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        rendered = [report.from_figures(item) for item in data["results"]]
        write_markdown(
            args.output or REPO / "docs" / "performance.md",
            rendered,
            data["machine"],
            SMOKE if data.get("smoke") else FULL,
            float(data.get("elapsed", 0.0)),
            str(data.get("command", "python -m bench.run")),
        )
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    operators = [s.strip() for s in args.operators.split(",") if s.strip()]
    phases = SMOKE if args.smoke else FULL
    if args.verify_cap:
        phases = replace(phases, verify_cap=args.verify_cap)
    output = args.output or (None if args.smoke else REPO / "docs" / "performance.md")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rayref-bench-"))
    from rayref.devcluster.build import ensure_binaries

    bin_dir = ensure_binaries(log=log)
    machine = report.machine(bin_dir)
    log(f"bench: sizes {sizes}, operators {operators}, logs in {workdir}")
    started = time.monotonic()
    results = asyncio.run(stoppable(run_all(sizes, phases, operators, bin_dir, workdir)))
    elapsed = time.monotonic() - started
    command = (
        "python -m bench.run"
        + ("" if args.sizes == "1000,5000,10000" else f" --sizes {args.sizes}")
        + (" --smoke" if args.smoke else "")
    )
    print(report.table(results, phases.verify_cap))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "smoke": args.smoke,
                    "elapsed": elapsed,
                    "command": command,
                    "results": [r.figures() for r in results],
                },
                indent=2,
                default=str,
            )
        )
    if output:
        write_markdown(output, results, machine, phases, elapsed, command)
        log(f"wrote {output}")
    log(f"bench: done in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
