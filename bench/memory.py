"""rayref's memory at one size, without the rest of the benchmark.

    python -m bench.memory [--size 10000] [--idle 60] [--source DIR ...] [--env K=V ...]
                           [--profile DIR]

Builds the benchmark's world once (`bench.world`: N RayJobRefs, N/10 RayClusterRefs,
statuses already written), then starts rayref once per `--source` (a directory holding
an `operator/` tree to run instead of this checkout's, e.g. a `git worktree` of an
older commit; default: this checkout) and reports its RSS: the peak until every ref is
checked, at that moment, and after `--idle` seconds with nothing changing. Nothing
changes remotely meanwhile, so runs over the same world compare like with like.

`--profile DIR` samples each run's operator with py-spy (`pip install py-spy`; not a
dependency of the project) from its start until every ref is checked, and writes the
collapsed stacks to DIR/rayref-<run>.txt (one line per stack and its sample count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.kubeapi import Kube
from bench.measure import ProcWatch, scrape
from bench.run import REPO, log, start_rayref, start_simulator
from bench.world import create, plan, presync, write_scenario

MIB = 1024 * 1024
CHECK_CAP = 180.0
GAUGE = "rayref_refs_checked"


async def measure_once(
    source: Path,
    extra_env: dict[str, str],
    kubeconfig: Path,
    endpoint: str,
    refs: int,
    idle_seconds: float,
    log_path: Path,
    profile: Path | None = None,
) -> dict[str, float]:
    # PYTHONPATH: the tree to measure, not necessarily this checkout
    process, port = start_rayref(
        kubeconfig, endpoint, log_path, {"PYTHONPATH": str(source / "operator"), **extra_env}
    )
    whole = ProcWatch(process.pid)
    whole.start()
    sampler = None if profile is None else start_profile(process.pid, profile)
    figures: dict[str, float] = {}
    try:
        started = time.monotonic()
        checked = 0
        while time.monotonic() - started < CHECK_CAP:
            if process.proc.poll() is not None:
                raise RuntimeError(f"rayref exited; see {log_path}")
            checked = int(scrape(port, GAUGE))
            if checked >= refs:
                break
            await asyncio.sleep(0.25)
        figures["checked"] = checked
        figures["check_seconds"] = time.monotonic() - started
        figures["rss_checked_mib"] = (whole.last.rss_bytes if whole.last else 0) / MIB
        if sampler is not None:
            stop_profile(sampler)
            sampler = None
        await asyncio.sleep(idle_seconds)
        await whole.stop()
        assert whole.last is not None
        figures["rss_idle_mib"] = whole.last.rss_bytes / MIB
        figures["rss_peak_mib"] = whole.peak_rss / MIB
    finally:
        if sampler is not None:
            stop_profile(sampler)
        process.stop()
    return figures


def start_profile(pid: int, output: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    argv = [py_spy, "record", "--pid", str(pid), "--rate", "50", "--format", "raw"]
    return subprocess.Popen(
        [*argv, "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(sampler: subprocess.Popen[bytes]) -> None:
    """py-spy writes its output when interrupted."""
    sampler.send_signal(signal.SIGINT)
    try:
        sampler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sampler.kill()
        sampler.wait()


async def run(args: argparse.Namespace, workdir: Path) -> list[dict[str, object]]:
    from rayref.devcluster.build import ensure_binaries
    from rayref.devcluster.cluster import DevCluster
    from rayref.simulator.control import SimulatorControl

    extra_env = dict(item.split("=", 1) for item in args.env)
    sources: list[Path] = args.source or [REPO]
    world = plan(args.size)
    scenario = write_scenario(world, workdir / "scenario.json")
    results: list[dict[str, object]] = []
    with DevCluster(ensure_binaries(log=log), work_dir=workdir / "devcluster", log=log) as cluster:
        cluster.apply_crds(REPO / "crds")
        simulator, endpoint = start_simulator(scenario, workdir)
        kube = Kube(cluster.kubeconfig)
        control = SimulatorControl(endpoint)
        try:
            await create(kube, world, log)
            await presync(kube, control, world, log)
            for index, source in enumerate(sources * args.repeat):
                figures = await measure_once(
                    source,
                    extra_env,
                    cluster.kubeconfig,
                    endpoint,
                    len(world.refs),
                    args.idle,
                    workdir / f"rayref-{index}.log",
                    None if args.profile is None else args.profile / f"rayref-{index}.txt",
                )
                result: dict[str, object] = {"source": str(source), **figures}
                log(json.dumps(result))
                results.append(result)
        finally:
            await control.aclose()
            await kube.close()
            simulator.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--size", type=int, default=10000, help="RayJobRef count")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle after the check")
    parser.add_argument("--source", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=1, help="runs per source")
    parser.add_argument("--env", action="append", default=[], help="K=V for the operator")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--profile", type=Path, help="py-spy each run into this directory")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rayref-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for result in asyncio.run(run(args, workdir)):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
