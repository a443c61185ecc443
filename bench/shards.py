"""Sharded rayref at scale (issue 16): S `rayref run` replicas with RAYREF_SHARDS split
one world; per-shard memory and cloud requests, duplicated writes, and the rebalance
after one replica is SIGKILLed.

    python -m bench.shards [--size 100000] [--shards 2,3] [--workspaces 32]
                           [--slots-per-shard 1] [--json F] [--workdir D]

One control plane and simulator for every shard count: `bench.world`'s refs (N
RayJobRefs, 20% running, N/10 RayClusterRefs, 20% running, interval 30 s, statuses
written beforehand) spread over `--workspaces` namespaces of equal size, since a slot
takes whole workspaces. The world is reused because creating it is the slow part at
100,000 refs; each shard count ends its own share of the running jobs, and a later
count starts from statuses the earlier one left in sync (so a restart writes nothing).
Every replica has bench.run's budget (20 req/s, burst 40) and the test's Lease
timings (15 / 10 / 2 s); the Leases of each shard count have their own name prefix, so
a killed replica's leftovers never meet the next count's replicas.

Per shard count S (RAYREF_SHARDS = S x slots-per-shard):
1. start: S replicas together. The refs carry the slot labels of the previous count
   (or none), so the replicas first label every ref for theirs: *all refs labelled* is
   the time until a watch has seen every ref get this count's labels, with the label
   writes (kept apart from status writes); *all refs checked* the time until the sum of
   their `rayref_refs_checked` gauges (refs of held slots checked since start) reaches
   every ref, with the status writes meanwhile (none are due);
2. changes: one running job ended a second for 60 s (no node changes: bench.run
   measures those); a watch counts the writes per ref. *writes per change* are the
   writes to changed refs per change seen, *to unchanged* the writes to any other ref;
   per shard: its own `rayref_cloud_requests_total` over the phase per minute, its
   slots and workspaces (from the slot Leases' holders);
3. idle 20 s: *RSS idle* at its end; *RSS peak* over the whole run (sampled each 1 s);
4. kill one: the last replica is SIGKILLed while jobs keep ending one a second; *slots
   reassigned* is the time until the survivors are the holders of every slot Lease,
   *refs re-checked* until the survivors' gauges add up to every ref again (the
   survivors' share only grows, so no ref is counted twice); then the changes drain.
   *duplicated writes* = writes beyond one per changed ref plus writes to unchanged
   refs over the whole kill phase (target 0), *unseen* the changes never shown.

SIGTERM or SIGINT stops every child (by pid) on the way out. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.kubeapi import Kube
from bench.measure import Expectation, ProcWatch, Watcher, sample, scrape
from bench.run import REPO, Process, log, start_rayref, start_simulator, stoppable
from bench.world import SECRET_NAME, Ref, World, create, plan, presync, write_scenario
from rayref.sharding.slots import ShardKey, slot_of

NAMESPACE = "default"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 15.0, 10.0, 2.0
REGION = "cn-hangzhou"  # the operator's default region: the world's refs name none
CHECKED = "rayref_refs_checked"
CLOUD = "rayref_cloud_requests_total"
CHANGE_SECONDS = 60.0
IDLE_SECONDS = 20.0
DRAIN_CAP = 60.0
CAP = 900.0


@dataclass
class Shard:
    name: str
    process: Process
    port: int
    watch: ProcWatch

    def alive(self) -> None:
        if self.process.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.process.log_path}")

    def checked(self) -> float:
        return scrape(self.port, CHECKED)


@dataclass
class ShardFigures:
    name: str
    slots: list[int] = field(default_factory=list)
    workspaces: int = 0
    rss_peak_mib: float = 0.0
    rss_idle_mib: float = 0.0
    cloud_requests_per_minute: float = 0.0


@dataclass
class Judged:
    changes: int = 0
    seen: int = 0
    writes_to_changed: int = 0
    beyond_one: int = 0
    to_unchanged: int = 0


@dataclass
class RunFigures:
    shards: int
    slots: int
    refs: int
    all_labelled_seconds: float = math.nan
    label_writes: int = 0
    all_checked_seconds: float = math.nan
    restart_writes: int = 0
    changes: Judged = field(default_factory=Judged)
    per_shard: list[ShardFigures] = field(default_factory=list)
    killed: str = ""
    killed_slots: list[int] = field(default_factory=list)
    slots_reassigned_seconds: float = math.nan
    refs_rechecked_seconds: float = math.nan
    kill_phase: Judged = field(default_factory=Judged)

    @property
    def writes_per_change(self) -> float:
        seen = self.changes.seen
        return self.changes.writes_to_changed / seen if seen else math.nan


def lease_base(shards: int) -> str:
    return f"rayref-bench-s{shards}"


def start_shard(
    name: str, shards: int, slots: int, kubeconfig: Path, endpoint: str, workdir: Path
) -> Shard:
    process, port = start_rayref(
        kubeconfig,
        endpoint,
        workdir / f"s{shards}-{name}.log",
        {
            "RAYREF_SHARDS": str(slots),
            "RAYREF_LEADER_ELECTION": "false",
            "RAYREF_LEADER_ELECTION_NAMESPACE": NAMESPACE,
            "RAYREF_LEADER_ELECTION_LEASE_NAME": lease_base(shards),
            "RAYREF_LEADER_ELECTION_LEASE_DURATION": str(LEASE_DURATION),
            "RAYREF_LEADER_ELECTION_RENEW_DEADLINE": str(RENEW_DEADLINE),
            "RAYREF_LEADER_ELECTION_RETRY_PERIOD": str(RETRY),
            "POD_NAME": name,
        },
    )
    watch = ProcWatch(process.pid)
    watch.start()
    return Shard(name, process, port, watch)


async def slot_holders(kube: Kube, base: str, shards: list[Shard]) -> dict[int, str]:
    """Slot -> name of the shard its Lease names (absent when free or held by no one
    of `shards`)."""
    answer = await kube.request(
        "GET",
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"
        f"?labelSelector=rayref.io/sharding%3D{base},rayref.io/lease-role%3Dslot",
    )
    holders: dict[int, str] = {}
    for item in answer.get("items") or []:
        slot = int(str(item["metadata"]["name"]).rsplit("-", 1)[1])
        holder = str((item.get("spec") or {}).get("holderIdentity") or "")
        for shard in shards:
            if holder.startswith(f"{shard.name}-"):
                holders[slot] = shard.name
    return holders


async def wait_until(
    what: str, shards: list[Shard], check: Callable[[], Awaitable[bool]], cap: float = CAP
) -> float:
    """Seconds until `check()` is true; fails at once if a shard exits."""
    started = time.monotonic()
    while not await check():
        for shard in shards:
            shard.alive()
        if time.monotonic() - started > cap:
            raise RuntimeError(f"{what}: not within {cap:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


class Changes:
    """Ends running jobs one a second, each an expectation of the watcher."""

    def __init__(self, refs: list[Ref], watcher: Watcher, control: object) -> None:
        self._refs = iter(refs)
        self._watcher = watcher
        self._control = control

    async def run(self, seconds: float | None = None, stop: asyncio.Event | None = None) -> int:
        from rayref.simulator.control import SimulatorControl

        assert isinstance(self._control, SimulatorControl)
        begin, made = time.monotonic(), 0
        while (seconds is None or made < seconds) and not (stop and stop.is_set()):
            ref = next(self._refs, None)
            if ref is None:
                log("no running job left to end")
                break
            view = await self._control.update_job(ref.workspace_id, ref.remote_id, action="succeed")
            self._watcher.expected[f"{ref.namespace}/{ref.name}"] = Expectation(
                view.changed_at / 1000.0, phase="Succeeded"
            )
            made += 1
            await asyncio.sleep(max(0.0, begin + made - time.monotonic()))
        return made


async def drain(watcher: Watcher) -> None:
    started = time.monotonic()
    while watcher.unseen() and time.monotonic() - started < DRAIN_CAP:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


def judge(watcher: Watcher) -> Judged:
    changed = set(watcher.expected)
    writes = watcher.writes
    return Judged(
        changes=len(changed),
        seen=sum(1 for item in watcher.expected.values() if item.seen_at is not None),
        writes_to_changed=sum(n for ref, n in writes.items() if ref in changed),
        beyond_one=sum(max(0, n - 1) for ref, n in writes.items() if ref in changed),
        to_unchanged=sum(n for ref, n in writes.items() if ref not in changed),
    )


def group_slot(namespace: str, workspace: str, slots: int) -> int:
    """The slot of a world's group (every ref of the world names the same Secret)."""
    return slot_of(ShardKey(REGION, (namespace, SECRET_NAME), workspace), slots)


def workspaces_of(world: World, slots: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for namespace, workspace in world.namespaces:
        slot = group_slot(namespace, workspace, slots)
        counts[slot] = counts.get(slot, 0) + 1
    return counts


async def start_and_check(
    figures: RunFigures, shards: list[Shard], kube: Kube, watcher: Watcher, *, prelabelled: bool
) -> None:
    async def all_checked() -> bool:
        checked = await asyncio.gather(*(asyncio.to_thread(s.checked) for s in shards))
        return sum(checked) >= figures.refs

    async def every_slot_held() -> bool:
        holders = await slot_holders(kube, lease_base(figures.shards), shards)
        return len(holders) == figures.slots

    async def all_labelled() -> bool:
        return prelabelled or watcher.labelled >= figures.refs

    started = time.monotonic()
    figures.all_labelled_seconds = await wait_until("all refs labelled", shards, all_labelled)
    await wait_until("all refs checked", shards, all_checked)
    figures.all_checked_seconds = time.monotonic() - started
    figures.restart_writes = watcher.total_writes()
    figures.label_writes = watcher.label_writes
    log(
        f"S={figures.shards}: all {figures.refs} refs labelled for {figures.slots} slots in "
        f"{figures.all_labelled_seconds:.1f} s ({figures.label_writes} label writes), "
        f"checked in {figures.all_checked_seconds:.1f} s, {figures.restart_writes} status writes"
    )
    await wait_until("every slot held", shards, every_slot_held)


async def changes_phase(
    figures: RunFigures,
    world: World,
    shards: list[Shard],
    changes: Changes,
    kube: Kube,
    watcher: Watcher,
) -> None:
    watcher.reset()
    before = {s.name: scrape(s.port, CLOUD) for s in shards}
    begin = time.monotonic()
    await changes.run(seconds=CHANGE_SECONDS)
    minutes = (time.monotonic() - begin) / 60.0
    after = {s.name: scrape(s.port, CLOUD) for s in shards}
    holders = await slot_holders(kube, lease_base(figures.shards), shards)
    await drain(watcher)
    figures.changes = judge(watcher)
    per_slot = workspaces_of(world, figures.slots)
    for shard in shards:
        held = sorted(slot for slot, name in holders.items() if name == shard.name)
        figures.per_shard.append(
            ShardFigures(
                shard.name,
                slots=held,
                workspaces=sum(per_slot.get(slot, 0) for slot in held),
                cloud_requests_per_minute=(after[shard.name] - before[shard.name]) / minutes,
            )
        )
    log(f"S={figures.shards}: changes {asdict(figures.changes)}")


async def kill_phase(
    figures: RunFigures, shards: list[Shard], changes: Changes, kube: Kube, watcher: Watcher
) -> None:
    victim, survivors = shards[-1], shards[:-1]
    figures.killed = victim.name
    figures.killed_slots = next(s.slots for s in figures.per_shard if s.name == victim.name)
    watcher.reset()
    stop = asyncio.Event()
    making = asyncio.create_task(changes.run(stop=stop))

    async def survivors_hold_all() -> bool:
        holders = await slot_holders(kube, lease_base(figures.shards), survivors)
        return len(holders) == figures.slots

    async def survivors_checked_all() -> bool:
        checked = await asyncio.gather(*(asyncio.to_thread(s.checked) for s in survivors))
        return sum(checked) >= figures.refs

    try:
        await asyncio.sleep(3.0)  # some changes before the kill, polled by the victim
        killed = time.monotonic()
        victim.process.proc.send_signal(signal.SIGKILL)
        await wait_until("survivors hold every slot", survivors, survivors_hold_all)
        figures.slots_reassigned_seconds = time.monotonic() - killed
        await wait_until("survivors checked every ref", survivors, survivors_checked_all)
        figures.refs_rechecked_seconds = time.monotonic() - killed
        await asyncio.sleep(10.0)  # changes after the takeover, polled by the survivors
    finally:
        stop.set()
        await making
    await drain(watcher)
    figures.kill_phase = judge(watcher)
    log(
        f"S={figures.shards}: killed {victim.name} (slots {figures.killed_slots}): slots "
        f"reassigned {figures.slots_reassigned_seconds:.1f} s, refs re-checked "
        f"{figures.refs_rechecked_seconds:.1f} s, {asdict(figures.kill_phase)}"
    )


async def run_shards(
    count: int,
    slots: int,
    world: World,
    jobs: list[Ref],
    kube: Kube,
    control: object,
    kubeconfig: Path,
    endpoint: str,
    workdir: Path,
    *,
    prelabelled: bool = False,
) -> RunFigures:
    figures = RunFigures(shards=count, slots=slots, refs=len(world.refs))
    # A world created with these labels has no label writes to tell apart (and would
    # have every ref's first status write taken for one).
    watcher = Watcher(kube, slots=None if prelabelled else slots)
    await watcher.start()
    changes = Changes(jobs, watcher, control)
    shards: list[Shard] = []
    try:
        for index in range(count):
            shards.append(
                start_shard(chr(ord("a") + index), count, slots, kubeconfig, endpoint, workdir)
            )
        await start_and_check(figures, shards, kube, watcher, prelabelled=prelabelled)
        await changes_phase(figures, world, shards, changes, kube, watcher)
        await asyncio.sleep(IDLE_SECONDS)
        for shard, shard_figures in zip(shards, figures.per_shard, strict=True):
            shard_figures.rss_idle_mib = sample(shard.process.pid).rss_bytes / 1024 / 1024
            await shard.watch.stop()
            shard_figures.rss_peak_mib = shard.watch.peak_rss / 1024 / 1024
        await kill_phase(figures, shards, changes, kube, watcher)
    finally:
        for shard in shards:
            shard.process.stop()
            await shard.watch.stop()
        await watcher.stop()
    return figures


def slot_labels_for(slots: int) -> Callable[[Ref], dict[str, str]]:
    """The labels the replicas would write for `slots` (sharding.watches)."""
    from rayref.sharding.watches import slot_labels

    def labels(ref: Ref) -> dict[str, str]:
        return slot_labels(group_slot(ref.namespace, ref.workspace_id, slots), slots)

    return labels


async def bench(
    size: int,
    counts: list[int],
    workspaces: int,
    per_shard: int,
    workdir: Path,
    *,
    prelabel: bool = False,
) -> list[RunFigures]:
    from rayref.devcluster.build import ensure_binaries
    from rayref.devcluster.cluster import DevCluster
    from rayref.simulator.control import SimulatorControl

    world = plan(size, workspaces)
    scenario = write_scenario(world, workdir / "scenario.json")
    results: list[RunFigures] = []
    with DevCluster(ensure_binaries(log=log), work_dir=workdir / "devcluster", log=log) as cluster:
        cluster.apply_crds(REPO / "crds")
        simulator, endpoint = start_simulator(scenario, workdir)
        kube = Kube(cluster.kubeconfig)
        control = SimulatorControl(endpoint)
        try:
            # --prelabel: the refs are created with the first count's slot labels, as an
            # install that has run sharded before has them (labelling is measured apart)
            labels = slot_labels_for(counts[0] * per_shard) if prelabel else None
            await create(kube, world, log, labels=labels)
            await presync(kube, control, world, log)
            active = world.active_jobs()
            random.Random(size).shuffle(active)
            share = len(active) // len(counts)
            for index, count in enumerate(counts):
                jobs = active[index * share : (index + 1) * share]
                results.append(
                    await run_shards(
                        count,
                        count * per_shard,
                        world,
                        jobs,
                        kube,
                        control,
                        cluster.kubeconfig,
                        endpoint,
                        workdir,
                        prelabelled=prelabel and index == 0,
                    )
                )
        finally:
            await control.aclose()
            await kube.close()
            simulator.stop()
    return results


def _per_shard(run: RunFigures) -> tuple[str, str, str]:
    slots = ", ".join(f"{s.name}: {len(s.slots)} ({s.workspaces} ws)" for s in run.per_shard)
    rss = ", ".join(f"{s.name}: {s.rss_peak_mib:.0f} / {s.rss_idle_mib:.0f}" for s in run.per_shard)
    cloud = ", ".join(f"{s.name}: {s.cloud_requests_per_minute:.0f}" for s in run.per_shard)
    return slots, rss, cloud


def table(results: list[RunFigures]) -> str:
    lines = [
        "| shards (slots) | refs | slots (workspaces) per shard | RSS peak / idle MiB per "
        "shard | cloud req/min per shard | all refs labelled s (label writes) | all refs "
        "checked s (status writes) | writes per change / to "
        "unchanged | kill one: slots reassigned s | refs re-checked s | duplicated writes "
        "(changes unseen) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in results:
        slots, rss, cloud = _per_shard(run)
        kill = run.kill_phase
        lines.append(
            f"| {run.shards} ({run.slots}) | {run.refs} | {slots} | {rss} | {cloud} | "
            f"{run.all_labelled_seconds:.1f} ({run.label_writes}) | "
            f"{run.all_checked_seconds:.1f} ({run.restart_writes}) | {run.writes_per_change:.2f} / "
            f"{run.changes.to_unchanged} | {run.slots_reassigned_seconds:.1f} | "
            f"{run.refs_rechecked_seconds:.1f} | {kill.beyond_one + kill.to_unchanged} "
            f"({kill.changes - kill.seen} of {kill.changes}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__)
    parser.add_argument("--size", type=int, default=100000, help="RayJobRefs (plus a tenth)")
    parser.add_argument("--shards", default="2,3", help="comma list of replica counts")
    parser.add_argument("--workspaces", type=int, default=32)
    parser.add_argument(
        "--slots-per-shard", type=int, default=1, help="RAYREF_SHARDS = replicas x this"
    )
    parser.add_argument(
        "--prelabel",
        action="store_true",
        help="create the refs with the first replica count's slot labels",
    )
    parser.add_argument("--json", type=Path, help="write every figure as JSON here")
    parser.add_argument("--workdir", type=Path, help="logs (default: a temp dir)")
    args = parser.parse_args(argv)
    counts = [int(s) for s in args.shards.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rayref-shards-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(
        f"shards: {args.size} refs in {args.workspaces} workspaces, replicas {counts}, "
        f"{args.slots_per_shard} slot(s) each, logs in {workdir}"
    )
    results = asyncio.run(
        stoppable(
            bench(
                args.size,
                counts,
                args.workspaces,
                args.slots_per_shard,
                workdir,
                prelabel=args.prelabel,
            )
        )
    )
    print(table(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                [asdict(r) | {"writes_per_change": r.writes_per_change} for r in results],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
