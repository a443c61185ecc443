"""How many signed requests per second the simulator answers on one core.

Starts `python -m rayref.simulator` (pinned to CPU 0 with taskset when available) on a
scenario of 10,000 jobs, pre-signs every request with the project's signer (unique
nonces, a date valid for the run) so that the client costs little, then drives it
over keep-alive loopback connections for GetRayJob and for 100-item ListRayJob pages.

    .venv/bin/python -m bench.simulator_throughput [--requests 20000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rayref.devcluster.processes import ChildProcess
from rayref.emr.credentials import Credentials
from rayref.emr.signing import (
    canonical_query,
    new_nonce,
    percent_encode,
    required_headers,
    sign_request,
    utc_timestamp,
)

WORKSPACE = "w-0123456789ab"
KEY = Credentials("LTAI5tBENCHMARKkey0001", "bench-secret-0123456789abcdef")
LISTENING = "rayref-simulator listening on "


def _scenario(jobs: int) -> dict[str, object]:
    return {
        "keys": [{"accessKeyId": KEY.access_key_id, "accessKeySecret": KEY.access_key_secret}],
        "workspaces": [
            {
                "workspaceId": WORKSPACE,
                "jobs": [
                    {
                        "submissionId": "rj-bench",
                        "count": jobs,
                        "ageStepSeconds": 1,
                        "script": {"runningSeconds": 3600},
                    }
                ],
            }
        ],
    }


def _start(scenario: Path, log: Path, cpu: str | None) -> tuple[ChildProcess, int, int]:
    """The simulator as a child of the one launcher; (process, pid, port)."""
    command = [sys.executable, "-m", "rayref.simulator", "--port", "0", "--scenario", str(scenario)]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    process = ChildProcess("rayref-simulator", command, log)
    process.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = process.log_text()
        if LISTENING in text and process.pid is not None:
            port = int(text.split(LISTENING, 1)[1].split(":")[-1].split()[0])
            return process, process.pid, port
        if not process.running():
            break
        time.sleep(0.05)
    process.stop()
    raise SystemExit(f"the simulator did not start:\n{process.log_text()}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to normalise for a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(pid: int, port: int, requests: list[bytes], connections: int) -> dict[str, float]:
    cpu_before = _cpu_seconds(pid)
    seconds, failures = asyncio.run(_drive(port, requests, connections))
    cpu = _cpu_seconds(pid) - cpu_before
    return {
        "requests": len(requests),
        "seconds": round(seconds, 3),
        "per_second": round(len(requests) / seconds),
        # what one fully available core would sustain: requests per server CPU second
        "per_cpu_second": round(len(requests) / cpu) if cpu > 0 else 0,
        "failures": failures,
    }


def _request(host: str, operation: str, path: str, query: dict[str, str]) -> bytes:
    canonical = canonical_query(query)
    headers = required_headers(
        host=host, action=operation, credentials=KEY, date=utc_timestamp(), nonce=new_nonce()
    )
    signed = sign_request(
        method="GET",
        path=path,
        query=canonical,
        headers=headers,
        access_key_id=KEY.access_key_id,
        access_key_secret=KEY.access_key_secret,
    )
    headers["authorization"] = signed.authorization
    target = path + (f"?{canonical}" if canonical else "")
    lines = [f"GET {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def _drive(port: int, requests: list[bytes], connections: int) -> tuple[float, int]:
    """Send every request over `connections` keep-alive sockets; (seconds, non-200 count)."""
    queue = iter(requests)
    failures = 0

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in queue:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                failures += 1
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the workspace")
    parser.add_argument("--requests", type=int, default=20_000, help="GetRayJob requests")
    parser.add_argument("--list-requests", type=int, default=3_000, help="ListRayJob requests")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--server-cpu", default="0", help="CPU for the simulator ('' = any)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rayref-bench-sim-"))
    scenario = workdir / "scenario.json"
    scenario.write_text(json.dumps(_scenario(args.jobs)))
    process, pid, port = _start(scenario, workdir / "simulator.log", args.server_cpu or None)
    if args.server_cpu and shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        # keep the client off the simulator's core
        os.sched_setaffinity(0, {cpu for cpu in os.sched_getaffinity(0) if cpu != 0} or {0})
    host = f"127.0.0.1:{port}"
    rng = random.Random(1)
    results: dict[str, dict[str, float]] = {}
    try:
        job_path = f"/api/v1/workspaces/{WORKSPACE}/rayJob"
        # touch every job once: the timed run measures the steady state (cached views)
        warmup = [
            _request(host, "GetRayJob", f"{job_path}/rj-bench-{index:05d}", {})
            for index in range(args.jobs)
        ]
        asyncio.run(_drive(port, warmup, args.connections))
        gets = [
            _request(
                host,
                "GetRayJob",
                f"{job_path}/{percent_encode(f'rj-bench-{rng.randrange(args.jobs):05d}')}",
                {},
            )
            for _ in range(args.requests)
        ]
        results["GetRayJob"] = _measure(pid, port, gets, args.connections)
        pages = max(1, args.jobs // 100)
        lists = [
            _request(
                host,
                "ListRayJob",
                job_path,
                {"pageNum": str(rng.randrange(pages) + 1), "pageSize": "100"},
            )
            for _ in range(args.list_requests)
        ]
        results["ListRayJob(100 items)"] = _measure(pid, port, lists, args.connections)
    finally:
        process.stop()
    print(json.dumps({"jobs": args.jobs, "connections": args.connections, "results": results}))
    for name, result in results.items():
        print(
            f"{name}: {result['per_second']} req/s wall, "
            f"{result['per_cpu_second']} req per server CPU second "
            f"({result['failures']} failures)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
