"""Helpers of the reliability suite: sizes, secrets worth scanning for, the remote truth
of many refs, convergence, event accounting, and the leak scan of everything a scenario
produced. Creating and reading refs is `tests.support.refs`.

Sizes: CI runs the short form; `RAYREF_RELIABILITY_FULL=1` runs the sizes the issue
names (docs/reliability.md records both).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.emr.credentials import Credentials
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorProcess
from tests.support.leakscan import LeakScanner, distinctive
from tests.support.refs import events_of, eventually, list_refs, state_of, synced

FULL = os.environ.get("RAYREF_RELIABILITY_FULL") == "1"

T = TypeVar("T")


def size(ci: T, full: T) -> T:
    """The CI figure, or the full one under RAYREF_RELIABILITY_FULL=1."""
    return full if FULL else ci


def report(line: str) -> None:
    """Measured figures go to stdout (pytest -s, or the captured output of a failure)."""
    print(f"[reliability] {line}", flush=True)


# ---------------------------------------------------------------- secrets of a scenario


@dataclass(frozen=True)
class ScenarioSecrets:
    """Distinctive secret values, so that the leak scan means something."""

    key: Credentials
    sts: Credentials
    submit_token: str = field(default_factory=lambda: distinctive("submit"))
    dashboard_token: str = field(default_factory=lambda: distinctive("dash"))
    redis_password: str = field(default_factory=lambda: distinctive("redis"))

    def __repr__(self) -> str:
        return "ScenarioSecrets(...)"

    @classmethod
    def new(cls) -> ScenarioSecrets:
        suffix = distinctive("id", 12)
        return cls(
            key=Credentials(f"LTAI5tREL{suffix}", distinctive("aksecret")),
            sts=Credentials(f"STS.REL{suffix}", distinctive("stssecret"), distinctive("ststoken")),
        )

    def values(self) -> dict[str, str | None]:
        return {
            "access key secret": self.key.access_key_secret,
            "STS access key secret": self.sts.access_key_secret,
            "STS token": self.sts.security_token,
            "submitToken": self.submit_token,
            "dashboard token": self.dashboard_token,
            "Redis password": self.redis_password,
        }

    def cluster_fields(self, name: str) -> dict[str, Any]:
        """GetRayCluster fields that carry every kind of secret the API returns."""
        return {
            "name": name,
            "submitToken": self.submit_token,
            "dashboardUrl": (
                "https://emr-ray-gateway-cn-hangzhou.aliyuncs.com/workspace/w/raycluster/"
                f"{name}/dashboard?token={self.dashboard_token}"
            ),
            "headSpec": {
                "cpu": "4",
                "memory": "16Gi",
                "gftEnabled": True,
                "gftConfig": {
                    "redisUrl": f"redis://default:{self.redis_password}@redis.internal:6379/0",
                    "redisUsername": "default",
                    "redisPassword": self.redis_password,
                },
                "env": f"REDIS_PASSWORD={self.redis_password}",
            },
            # the simulator completes the group from its default one (replica 2)
            "workerSpec": [{"env": f"REDIS_PASSWORD={self.redis_password}"}],
        }

    def job_fields(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "dashboardUrl": (
                "https://emr-ray-gateway-cn-hangzhou.aliyuncs.com/workspace/w/rayjob/"
                f"{name}/dashboard?token={self.dashboard_token}"
            ),
            "runtimeEnvJson": f'{{"env_vars": {{"REDIS_PASSWORD": "{self.redis_password}"}}}}',
        }


def scanner_for(*scenarios: ScenarioSecrets, extra: Mapping[str, str] | None = None) -> LeakScanner:
    scanner = LeakScanner()
    for index, scenario in enumerate(scenarios):
        scanner.add_all({f"{label} #{index}": v for label, v in scenario.values().items()})
    scanner.add_all(dict(extra or {}))
    return scanner


# ---------------------------------------------------------------- remote truth


@dataclass(frozen=True)
class Remote:
    kind: str
    ref_name: str
    remote_id: str


async def remote_truth(
    control: SimulatorControl, workspace_id: str, remotes: Sequence[Remote]
) -> dict[str, str]:
    """ref name -> the remote job status or cluster state, as GetRay* shows it now."""

    async def one(remote: Remote) -> tuple[str, str]:
        if remote.kind == JOB_KIND:
            view = await control.get_job_view(workspace_id, remote.remote_id)
            return remote.ref_name, str(view.fields.get("status"))
        view = await control.get_cluster_view(workspace_id, remote.remote_id)
        return remote.ref_name, str(view.fields.get("state"))

    results: list[tuple[str, str]] = []
    for start in range(0, len(remotes), 50):  # bounded fan-out on the control API
        results += await asyncio.gather(*(one(r) for r in remotes[start : start + 50]))
    return dict(results)


def mismatches(
    refs: Mapping[str, Mapping[str, Any]], truth: Mapping[str, str]
) -> dict[str, tuple[str | None, str, tuple[str, str]]]:
    """Refs whose status differs from the remote truth or is not Synced=True."""
    wrong: dict[str, tuple[str | None, str, tuple[str, str]]] = {}
    for name, expected in truth.items():
        obj = refs.get(name, {})
        if state_of(obj) != expected or synced(obj)[0] != "True":
            wrong[name] = (state_of(obj), expected, synced(obj))
    return wrong


async def converge(
    kube: KubeTestBed,
    namespace: str,
    control: SimulatorControl,
    workspace_id: str,
    remotes: Sequence[Remote],
    *,
    within: float,
    what: str,
    truth: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Wait until every ref shows the remote truth (clock frozen by the caller; pass the
    truth read beforehand so the wait starts at once)."""
    if truth is None:
        truth = await remote_truth(control, workspace_id, remotes)
    kinds = {remote.kind for remote in remotes}

    def probe() -> dict[str, dict[str, Any]]:
        refs: dict[str, dict[str, Any]] = {}
        for kind in kinds:
            refs.update(list_refs(kube, kind, namespace))
        wrong = mismatches(refs, truth)
        assert not wrong, f"{len(wrong)} refs differ, e.g. {dict(list(wrong.items())[:5])}"
        return refs

    started = time.monotonic()
    # Every 0.5 s, not eventually's 0.25 s: each probe lists every ref, thousands of them.
    refs = await eventually(probe, what=what, within=within, every=0.5)
    return refs, time.monotonic() - started


# ---------------------------------------------------------------- transitions and events


def _oom(instance: Mapping[str, Any]) -> bool:
    return any(
        "OOMKilled" in str(instance.get(key) or "")
        for key in ("reason", "containerStateReason", "containerStateMessage")
    )


def expected_events(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> int:
    """The most Events a correct operator posts going from one status to the other, by
    the rules of docs/status.md (Events)."""
    old, new = before.get("status") or {}, after.get("status") or {}
    count = 0
    if kind == JOB_KIND:
        count += (old.get("phase") or "Unknown") != (new.get("phase") or "Unknown")
        count += bool(new.get("clusterState")) and old.get("clusterState") != new.get(
            "clusterState"
        )
        count += (old.get("usage") or {}).get("cuHours") is None and (new.get("usage") or {}).get(
            "cuHours"
        ) is not None
        # the failure's log read: a second JobFailed / JobTimeout carrying the excerpt
        count += (old.get("failureLog") or {}).get("reason") != "LogRead" and (
            new.get("failureLog") or {}
        ).get("reason") == "LogRead"
    else:
        count += (old.get("state") or "Unknown") != (new.get("state") or "Unknown")
        old_instances = {i.get("instanceId"): i for i in old.get("instances") or []}
        for instance in new.get("instances") or []:
            previous = old_instances.get(instance.get("instanceId"), {})
            if _oom(instance):
                count += not _oom(previous)
            else:
                count += instance.get("phase") == "Failed" and previous.get("phase") != "Failed"
    synced_before = synced(before)
    count += synced_before[0] == "False"  # SyncRecovered
    count += synced(after)[0] == "False" and synced(after) != synced_before
    return count


def excess_events(
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    events_before: Sequence[Mapping[str, Any]],
    events_after: Sequence[Mapping[str, Any]],
) -> dict[str, tuple[int, list[str]]]:
    """Refs with more Events posted than transitions: name -> (expected, reasons posted)."""

    def per_ref(events: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for event in events:
            name = str((event.get("involvedObject") or {}).get("name"))
            reasons = table.setdefault(name, {})
            reasons[str(event.get("reason"))] = reasons.get(str(event.get("reason")), 0) + int(
                event.get("count") or 1
            )
        return table

    old, new = per_ref(events_before), per_ref(events_after)
    excess: dict[str, tuple[int, list[str]]] = {}
    for name, obj in after.items():
        posted = {
            reason: count - old.get(name, {}).get(reason, 0)
            for reason, count in new.get(name, {}).items()
        }
        posted_reasons = [r for r, n in posted.items() for _ in range(n) if n > 0]
        expected = expected_events(str(obj.get("kind", "")), before.get(name, {}), obj)
        if len(posted_reasons) > expected:
            excess[name] = (expected, posted_reasons)
    return excess


# ---------------------------------------------------------------- the leak scan


async def scan_everything(
    scanner: LeakScanner,
    kube: KubeTestBed,
    namespaces: Sequence[str],
    operators: Sequence[OperatorProcess],
    *,
    texts: Iterable[tuple[str, str]] = (),
) -> None:
    """Statuses, Events, operator logs (debug level), metrics and any extra texts."""
    for namespace in namespaces:
        for kind in (JOB_KIND, CLUSTER_KIND):
            for name, obj in list_refs(kube, kind, namespace).items():
                scanner.scan_json(f"{kind} {namespace}/{name}", obj)
        scanner.scan_json(f"events of {namespace}", events_of(kube, namespace))
    for operator in operators:
        scanner.scan_text(f"operator {operator.pid} log", operator.logs())
        if operator.running:
            scanner.scan_text(f"operator {operator.pid} metrics", operator.metrics())
    for source, text in texts:
        scanner.scan_text(source, text)
    report(
        f"leak scan: {len(scanner.secrets)} secrets x {len(scanner.sources)} sources, "
        f"{scanner.scanned_bytes / 1e6:.1f} MB, {len(scanner.findings)} findings"
    )
    scanner.assert_clean()
