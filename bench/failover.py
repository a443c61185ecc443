"""Leader failover at scale: two `rayref run` replicas with leader election, the leader
stopped over and over (SIGKILL and SIGTERM), the takeover timed each time.

    python -m bench.failover [--size 1000] [--runs 10] [--modes sigkill,sigterm]
                             [--standby cold|warm]

A fresh control plane and simulator, `bench.world`'s refs (N RayJobRefs and N/10
RayClusterRefs, statuses already written, so a correct takeover writes nothing). Per
run: stop the leader; *takeover* is the time until the Lease names the standby (read
every 20 ms); *resumed* the time until the new leader has checked every ref again
(its `rayref_refs_checked` gauge: the cold start of a standby, listing included);
*writes* the status patches the new leader sent by then (target 0: nothing changed).
The stopped replica is started again as the next standby; a warm standby
(`--standby warm`) is stopped only once its registry holds every ref (`rayref_refs`),
and *standby RSS* is the standby's resident memory just before the stop. Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.kubeapi import Kube
from bench.measure import scrape
from bench.run import REPO, Process, log, start_rayref, start_simulator, stoppable
from bench.world import create, plan, presync, write_scenario

NAMESPACE = "default"
LEASE = "rayref-operator"
CHECKED = "rayref_refs_checked"
KNOWN = "rayref_refs"
WRITES = "rayref_status_writes_total"
CAP = 600.0


@dataclass
class Replica:
    name: str
    process: Process
    port: int
    starts: int = 1
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class Runs:
    takeover: list[float] = field(default_factory=list)
    resumed: list[float] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    standby_rss_mib: list[float] = field(default_factory=list)
    # From a warm standby's start until its gauge shows every ref (a 5 s gauge: coarse).
    warm_up: list[float] = field(default_factory=list)


def start(
    name: str, kubeconfig: Path, endpoint: str, workdir: Path, index: int, standby: str
) -> Replica:
    process, port = start_rayref(
        kubeconfig,
        endpoint,
        workdir / f"{name}-{index}.log",
        {
            "RAYREF_LEADER_ELECTION": "true",
            "RAYREF_LEADER_ELECTION_NAMESPACE": NAMESPACE,
            "RAYREF_LEADER_ELECTION_LEASE_NAME": LEASE,
            "RAYREF_LEADER_ELECTION_STANDBY": standby,
            "POD_NAME": name,
        },
    )
    return Replica(name, process, port, index + 1)


async def holder(kube: Kube) -> str:
    lease = await kube.request(
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}",
        ok_statuses=(404,),
    )
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def wait_holder(kube: Kube, replicas: list[Replica], cap: float = CAP) -> Replica:
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        name = await holder(kube)
        for replica in replicas:
            if name.startswith(f"{replica.name}-"):
                return replica
        await asyncio.sleep(0.02)
    raise RuntimeError("no leader")


def alive(replica: Replica) -> None:
    if replica.process.proc.poll() is not None:
        raise RuntimeError(f"{replica.name} exited; see {replica.process.log_path}")


async def wait_checked(replica: Replica, refs: int, cap: float = CAP) -> None:
    deadline = time.monotonic() + cap
    while scrape(replica.port, CHECKED) < refs:
        alive(replica)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{replica.name} did not check {refs} refs within {cap:.0f} s")
        await asyncio.sleep(0.1)


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
            return True
    except OSError:
        return False


async def wait_serving(replica: Replica, cap: float = 60.0) -> None:
    """Until the replica answers on /metrics: a standby serves rayref_leader 0 at once."""
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        alive(replica)
        if await asyncio.to_thread(_serving, replica.port):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{replica.name} never served its metrics")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_warm(replica: Replica, refs: int, cap: float = CAP) -> None:
    """Until a warm standby's registry holds every ref (its gauge refreshes every 5 s)."""
    deadline = time.monotonic() + cap
    while scrape(replica.port, KNOWN) < refs:
        alive(replica)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{replica.name} did not hold {refs} refs within {cap:.0f} s")
        await asyncio.sleep(0.2)


async def failover(
    size: int, runs: int, modes: list[str], workdir: Path, standby_mode: str
) -> dict[str, Runs]:
    from rayref.devcluster.build import ensure_binaries
    from rayref.devcluster.cluster import DevCluster
    from rayref.simulator.control import SimulatorControl

    world = plan(size)
    scenario = write_scenario(world, workdir / "scenario.json")
    results = {mode: Runs() for mode in modes}
    mode_is_warm = standby_mode == "warm"
    with DevCluster(ensure_binaries(log=log), work_dir=workdir / "devcluster", log=log) as cluster:
        cluster.apply_crds(REPO / "crds")
        simulator, endpoint = start_simulator(scenario, workdir)
        kube = Kube(cluster.kubeconfig)
        control = SimulatorControl(endpoint)
        replicas: list[Replica] = []
        try:
            await create(kube, world, log)
            await presync(kube, control, world, log)
            refs = len(world.refs)
            replicas = [
                start(name, cluster.kubeconfig, endpoint, workdir, 0, standby_mode)
                for name in ("a", "b")
            ]
            leader = await wait_holder(kube, replicas)
            await wait_checked(leader, refs)
            log(f"{leader.name} leads and has checked all {refs} refs")
            for mode in modes:
                for run in range(runs):
                    leader = await wait_holder(kube, replicas)
                    (standby,) = [r for r in replicas if r is not leader]
                    await wait_serving(standby)
                    if mode_is_warm:
                        await wait_warm(standby, refs)
                        results[mode].warm_up.append(time.monotonic() - standby.started_at)
                    standby_rss = rss_mib(standby.process.pid)
                    writes_before = scrape(standby.port, WRITES)
                    stopped = time.monotonic()
                    leader.process.proc.send_signal(
                        signal.SIGKILL if mode == "sigkill" else signal.SIGTERM
                    )
                    await wait_holder(kube, [standby])
                    takeover = time.monotonic() - stopped
                    await wait_checked(standby, refs)
                    resumed = time.monotonic() - stopped
                    writes = int(scrape(standby.port, WRITES) - writes_before)
                    runs_of = results[mode]
                    runs_of.takeover.append(takeover)
                    runs_of.resumed.append(resumed)
                    runs_of.writes.append(writes)
                    runs_of.standby_rss_mib.append(standby_rss)
                    log(
                        f"{mode} {run + 1}/{runs}: takeover {takeover:.2f} s, all refs "
                        f"checked {resumed:.1f} s after the stop, {writes} status writes, "
                        f"standby RSS {standby_rss:.0f} MiB"
                    )
                    leader.process.stop()
                    index = leader.starts
                    replicas[replicas.index(leader)] = start(
                        leader.name, cluster.kubeconfig, endpoint, workdir, index, standby_mode
                    )
        finally:
            for replica in replicas:
                replica.process.stop()
            await control.aclose()
            await kube.close()
            simulator.stop()
    return results


def spread(values: list[float], digits: int = 1) -> str:
    return (
        f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / "
        f"{max(values):.{digits}f}"
    )


def table(size: int, standby: str, results: dict[str, Runs]) -> str:
    lines = [
        "| scenario | refs | runs | takeover s (min / median / max) | all refs checked again s "
        "(min / median / max) | status writes by the new leader | standby RSS MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, runs in results.items():
        label = "SIGKILL of the leader" if mode == "sigkill" else "SIGTERM of the leader"
        lines.append(
            f"| {label}, {standby} standby | {size} | {len(runs.takeover)} | "
            f"{spread(runs.takeover, 2)} | {spread(runs.resumed)} | {sum(runs.writes)} | "
            f"{spread(runs.standby_rss_mib, 0)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="RayJobRefs (plus a tenth clusters)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--modes", default="sigkill,sigterm")
    parser.add_argument(
        "--standby",
        choices=("cold", "warm"),
        default="cold",
        help="RAYREF_LEADER_ELECTION_STANDBY of both replicas",
    )
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--workdir", type=Path, help="logs (default: a temp dir)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rayref-failover-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(
        f"failover: {args.size} refs, {args.standby} standby, {args.runs} runs of {modes}, "
        f"logs in {workdir}"
    )
    results = asyncio.run(stoppable(failover(args.size, args.runs, modes, workdir, args.standby)))
    print(table(args.size, args.standby, results))
    if args.json:
        args.json.write_text(
            json.dumps({mode: vars(runs) for mode, runs in results.items()}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
