"""What the benchmark measures: writes and freshness from watches, CPU and memory from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.kubeapi import Kube
from rayref.api.kinds import GROUP, PLURALS, VERSION
from rayref.sharding.watches import SLOT_LABEL, SLOTS_LABEL

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Expectation:
    """A remote change the benchmark made: the ref should show `phase` soon (a job's
    end), or, with `node_reason`, a node of a cluster with that reason (an OOM kill,
    which only a GetRayCluster shows: the list entry stays the same)."""

    changed_at: float  # wall seconds (the simulator's changedAt)
    phase: str = ""
    node_reason: str = ""
    seen_at: float | None = None
    # A failed job's ref gets a second write, status.failureLog (issue 25): when it first
    # shows and with which reason, timed from the write that showed the phase.
    wants_log: bool = False
    log_seen_at: float | None = None
    log_reason: str = ""

    def shown_by(self, status: dict[str, Any]) -> bool:
        if self.node_reason:
            instances = status.get("instances") or []
            return any(
                isinstance(node, dict) and node.get("reason") == self.node_reason
                for node in instances
            )
        return status.get("phase") == self.phase


class Watcher:
    """Watches both ref kinds: counts every write (MODIFIED event) per ref and records
    when an expected change shows in a status."""

    def __init__(self, kube: Kube, *, slots: int | None = None) -> None:
        self._kube = kube
        self.writes: dict[str, int] = {}
        self.expected: dict[str, Expectation] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Sharded (`slots`): a MODIFIED event that gives a ref this slot count's labels
        # is a label write, counted apart from the status writes.
        self._slots = slots
        self._labels: dict[str, str] = {}
        self.label_writes = 0
        self.labelled = 0

    async def start(self) -> None:
        for plural in PLURALS.values():
            path = f"/apis/{GROUP}/{VERSION}/{plural}"
            listing = await self._kube.request("GET", path + "?limit=1")
            version = str(listing["metadata"]["resourceVersion"])
            self._tasks.append(asyncio.create_task(self._kube.watch(path, version, self._on_event)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_event(self, kind: str, obj: dict[str, Any]) -> None:
        if kind != "MODIFIED":
            return
        metadata = obj.get("metadata") or {}
        name = f"{metadata.get('namespace')}/{metadata.get('name')}"
        if self._slots is not None and self._labelled_now(name, metadata):
            self.label_writes += 1
            return
        self.writes[name] = self.writes.get(name, 0) + 1
        expectation = self.expected.get(name)
        if (
            expectation is not None
            and expectation.seen_at is None
            and expectation.shown_by(obj.get("status") or {})
        ):
            expectation.seen_at = time.time()
        if expectation is not None and expectation.wants_log:
            self._note_failure_log(expectation, obj.get("status") or {})

    @staticmethod
    def _note_failure_log(expectation: Expectation, status: dict[str, Any]) -> None:
        log = status.get("failureLog")
        if expectation.log_seen_at is None and isinstance(log, dict):
            expectation.log_seen_at = time.time()
            expectation.log_reason = str(log.get("reason") or "")

    def _labelled_now(self, name: str, metadata: dict[str, Any]) -> bool:
        labels = metadata.get("labels") or {}
        value = f"{labels.get(SLOT_LABEL, '')}/{labels.get(SLOTS_LABEL, '')}"
        previous = self._labels.get(name)
        self._labels[name] = value
        if previous == value or not value.endswith(f"/{self._slots}"):
            return False
        self.labelled += 1
        return True

    def total_writes(self) -> int:
        return sum(self.writes.values())

    def reset(self) -> None:
        self.writes.clear()
        self.expected.clear()

    def unseen(self, *, nodes: bool = False) -> int:
        return sum(
            1
            for item in self.expected.values()
            if item.seen_at is None and bool(item.node_reason) == nodes
        )

    def delays(self, *, nodes: bool = False) -> list[float]:
        """Seconds from each remote change to its status; inf when never seen. Job and
        cluster-state changes by default, node changes with `nodes`."""
        return [
            (item.seen_at - item.changed_at) if item.seen_at is not None else math.inf
            for item in self.expected.values()
            if bool(item.node_reason) == nodes
        ]

    def failure_logs(self) -> list[tuple[float, str]]:
        """(seconds from the write showing Failed to the write showing status.failureLog,
        its reason) per failed job; (inf, "") when either never showed."""
        return [
            (
                (item.log_seen_at - item.seen_at, item.log_reason)
                if item.log_seen_at is not None and item.seen_at is not None
                else (math.inf, "")
            )
            for item in self.expected.values()
            if item.wants_log
        ]


def percentile(values: Iterable[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))
    return ordered[index]


@dataclass
class ProcSample:
    at: float
    cpu_seconds: float
    rss_bytes: int


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # fields after the command: state is [0]; utime and stime are fields 14 and 15 (1-based)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return ProcSample(time.monotonic(), cpu, rss)


@dataclass
class ProcWatch:
    """CPU share and peak RSS of one process over a phase (sampled every second)."""

    pid: int
    first: ProcSample | None = None
    last: ProcSample | None = None
    peak_rss: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.first = self.last = sample(self.pid)
        self.peak_rss = self.first.rss_bytes
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(OSError):
                self.last = sample(self.pid)
                self.peak_rss = max(self.peak_rss, self.last.rss_bytes)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            self.last = sample(self.pid)
            self.peak_rss = max(self.peak_rss, self.last.rss_bytes)

    @property
    def cpu_share(self) -> float:
        """Average CPU use over the phase, in percent of one core."""
        assert self.first is not None and self.last is not None
        wall = self.last.at - self.first.at
        return 100.0 * (self.last.cpu_seconds - self.first.cpu_seconds) / wall if wall else 0.0


def scrape(port: int, name: str) -> float:
    """Sum of a Prometheus metric's samples (0 when absent or unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head.split("{", 1)[0] == name:
                total += float(value)
    return total
