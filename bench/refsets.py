"""The cost of a RayJobRefSet: cloud requests with and without it, and discovery delay.

    python -m bench.refsets [--jobs 5000] [--share 0.2] [--window 120] [--interval 30]

A fresh control plane and simulator; one workspace of `--jobs` running remote jobs
submitted over the last hours, one job in five named `etl-...` (`--share`), interleaved
in time. The operator (`rayref run`, list sweeps, 20 requests/s) runs with one set
selecting `namePrefix: etl-` (no `submittedWithin`), which fills up first. Then:

1. with the set: for `--window` seconds, cloud requests per minute (the simulator's
   counters) while a matching job is submitted now and then; for each, the time from
   its submission to its ref existing (polled on the API server every 0.2 s);
2. refs only: the set deleted with `propagationPolicy: Orphan` (its refs stay, as
   hand-written ones would), the same window: cloud requests per minute.

The figures are printed as JSON and as the lines docs/performance.md quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kubeapi import Kube, KubeApiError
from bench.run import REPO, log, start_rayref, start_simulator
from bench.world import KEY, RUNNING_SCRIPT
from rayref.api.kinds import API_VERSION, GROUP, JOB_PLURAL, JOB_SET_KIND, JOB_SET_PLURAL, VERSION
from rayref.discovery.naming import ref_name
from rayref.simulator.control import SimulatorControl

NAMESPACE = "bench-sets"
WORKSPACE = "w-benchsets0001"
SET_NAME = "etl"
SUBMISSIONS = 8


def scenario(path: Path) -> Path:
    keys = [{"accessKeyId": KEY.access_key_id, "accessKeySecret": KEY.access_key_secret}]
    path.write_text(json.dumps({"settings": {"seed": 7}, "keys": keys, "workspaces": []}))
    return path


async def fill(control: SimulatorControl, jobs: int, share: float) -> int:
    """`jobs` running jobs one second apart, every 1/share-th one matching; the count of
    matching ones."""
    every = max(1, round(1 / share))
    specs = [
        control.job_spec(
            name=f"etl-{i}" if i % every == 0 else f"adhoc-{i}",
            script=RUNNING_SCRIPT,
            age_seconds=float(jobs - i),
        )
        for i in range(jobs)
    ]
    for start in range(0, len(specs), 500):
        await control.create_jobs(WORKSPACE, specs[start : start + 500])
    return sum(1 for i in range(jobs) if i % every == 0)


def secret() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NAMESPACE},
        "stringData": {"accessKeyId": KEY.access_key_id, "accessKeySecret": KEY.access_key_secret},
    }


def ref_set(interval: int, max_refs: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": JOB_SET_KIND,
        "metadata": {"name": SET_NAME, "namespace": NAMESPACE},
        "spec": {
            "workspaceId": WORKSPACE,
            "credentialsSecretRef": {"name": "creds"},
            "selector": {"namePrefix": "etl-"},
            "template": {"pollIntervalSeconds": interval},
            "maxRefs": max_refs,
        },
    }


def _base(plural: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{plural}"


async def count_synced(kube: Kube) -> tuple[int, int]:
    """(refs, refs whose status is a successful read)."""
    listed = await kube.request("GET", _base(JOB_PLURAL))
    items = listed.get("items") or []
    synced = sum(
        1
        for item in items
        if any(
            c.get("type") == "Synced" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or ()
        )
    )
    return len(items), synced


async def wait_filled(kube: Kube, expected: int, cap: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < cap:
        try:
            refs, synced = await count_synced(kube)
        except KubeApiError:  # a CRD just established answers 429 for a moment
            await asyncio.sleep(1)
            continue
        if refs >= expected and synced >= expected:
            return time.monotonic() - started
        await asyncio.sleep(2)
    raise RuntimeError(f"the set did not fill up within {cap:.0f} s")


async def requests_per_minute(control: SimulatorControl, seconds: float) -> dict[str, float]:
    await control.reset_counters()
    await asyncio.sleep(seconds)
    counts = await control.counters(WORKSPACE)
    per_op = {op: sum(outcomes.values()) for op, outcomes in counts.operations.items()}
    return {op: round(n * 60 / seconds, 1) for op, n in sorted(per_op.items())} | {
        "total": round(counts.total * 60 / seconds, 1)
    }


async def discovery_delay(kube: Kube, control: SimulatorControl, index: int) -> float:
    job = await control.create_job(WORKSPACE, name=f"etl-new-{index}", script=RUNNING_SCRIPT)
    submitted = time.monotonic()
    path = f"{_base(JOB_PLURAL)}/{ref_name(job.id)}"
    while True:
        found = await kube.request("GET", path, ok_statuses=(404,))
        if found.get("kind") == "RayJobRef":
            return time.monotonic() - submitted
        await asyncio.sleep(0.2)


async def with_submissions(
    kube: Kube, control: SimulatorControl, window: float
) -> tuple[dict[str, float], list[float]]:
    delays: list[float] = []

    async def submit() -> None:
        for index in range(SUBMISSIONS):
            await asyncio.sleep(window / (SUBMISSIONS + 1))
            delays.append(await discovery_delay(kube, control, index))

    rates, _ = await asyncio.gather(requests_per_minute(control, window), submit())
    return rates, delays


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from rayref.devcluster.build import ensure_binaries
    from rayref.devcluster.cluster import DevCluster

    workdir = Path(tempfile.mkdtemp(prefix="rayref-bench-sets-"))
    with DevCluster(ensure_binaries(log=log), work_dir=workdir / "devcluster", log=log) as cluster:
        cluster.apply_crds(REPO / "crds")
        simulator, endpoint = start_simulator(scenario(workdir / "scenario.json"), workdir)
        kube = Kube(cluster.kubeconfig)
        control = SimulatorControl(endpoint)
        operator = None
        try:
            await control.create_workspace(WORKSPACE)
            matching = await fill(control, args.jobs, args.share)
            await kube.request("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            await kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", secret())
            operator, _ = start_rayref(cluster.kubeconfig, endpoint, workdir / "rayref.log")
            log(f"{args.jobs} jobs, {matching} matching; the set fills up")
            await kube.request("POST", _base(JOB_SET_PLURAL), ref_set(args.interval, 2 * matching))
            fill_seconds = await wait_filled(kube, matching, cap=900)
            log(f"filled in {fill_seconds:.0f} s; measuring with the set")
            with_set, delays = await with_submissions(kube, control, args.window)
            await kube.request(
                "DELETE",
                f"{_base(JOB_SET_PLURAL)}/{SET_NAME}",
                {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"},
            )
            await asyncio.sleep(args.interval)  # the orphaned refs settle on their own sweeps
            log("measuring refs only")
            refs_only = await requests_per_minute(control, args.window)
        finally:
            if operator is not None:
                operator.stop()
            await control.aclose()
            await kube.close()
            simulator.stop()
    return {
        "jobs": args.jobs,
        "matching": matching,
        "interval_seconds": args.interval,
        "window_seconds": args.window,
        "fill_seconds": round(fill_seconds, 1),
        "requests_per_minute_with_set": with_set,
        "requests_per_minute_refs_only": refs_only,
        "submission_to_ref_seconds": sorted(round(d, 1) for d in delays),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refsets")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--interval", type=int, default=30)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    print(json.dumps(figures, indent=2))
    with_set = figures["requests_per_minute_with_set"]
    refs_only = figures["requests_per_minute_refs_only"]
    delays = figures["submission_to_ref_seconds"]
    print(
        f"| {figures['jobs']:,} jobs, {figures['matching']:,} refs | with the set "
        f"{with_set['total']}/min (ListRayJob {with_set.get('ListRayJob', 0)}) | refs only "
        f"{refs_only['total']}/min (ListRayJob {refs_only.get('ListRayJob', 0)}) | "
        f"submission to ref: median {delays[len(delays) // 2]} s, max {delays[-1]} s |",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
