"""Helpers of the reliability suite: sizes, refs in bulk, the remote truth, convergence,
event and write accounting, and the leak scan of everything a scenario produced.

Sizes: CI runs the short form; `RAYREF_RELIABILITY_FULL=1` runs the sizes the issue
names (docs/reliability.md records both).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rayref.emr.credentials import Credentials
from rayref.simulator.control import SimulatorControl
from tests.fixtures.envtest import KubeTestBed
from tests.fixtures.operator import OperatorProcess
from tests.support.leakscan import LeakScanner, distinctive

FULL = os.environ.get("RAYREF_RELIABILITY_FULL") == "1"
GROUP, VERSION = "rayref.io", "v1alpha1"
JOB, CLUSTER = "RayJobRef", "RayClusterRef"
PLURAL = {JOB: "rayjobrefs", CLUSTER: "rayclusterrefs"}
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Cancelled", "Timeout"})

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


# ---------------------------------------------------------------- Kubernetes objects


def ref_body(
    kind: str,
    namespace: str,
    name: str,
    workspace_id: str,
    remote_id: str,
    *,
    secret: str = "creds",
    poll: int = 5,
    **spec: Any,
) -> dict[str, Any]:
    id_key = "submissionId" if kind == JOB else "clusterId"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "workspaceId": workspace_id,
            id_key: remote_id,
            "pollIntervalSeconds": poll,
            "credentialsSecretRef": {"name": secret},
            **spec,
        },
    }


def secret_body(namespace: str, key: Credentials, name: str = "creds") -> dict[str, Any]:
    data = {"accessKeyId": key.access_key_id, "accessKeySecret": key.access_key_secret}
    if key.security_token:
        data["securityToken"] = key.security_token
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def create_refs(kube: KubeTestBed, bodies: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with kube.api_client() as api_client:
        api = client.CustomObjectsApi(api_client)
        for body in bodies:
            metadata = body["metadata"]
            api.create_namespaced_custom_object(
                GROUP, VERSION, metadata["namespace"], PLURAL[body["kind"]], dict(body)
            )
            count += 1
    return count


def put_secret(kube: KubeTestBed, namespace: str, key: Credentials, name: str = "creds") -> None:
    """Create the credentials Secret, or replace its data (a rotation)."""
    data = secret_body(namespace, key, name)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace), string_data=data["stringData"]
    )
    with kube.api_client() as api_client:
        core = client.CoreV1Api(api_client)
        try:
            core.create_namespaced_secret(namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_secret(name, namespace, body)


def patch_spec(
    kube: KubeTestBed, kind: str, namespace: str, name: str, spec: Mapping[str, Any]
) -> None:
    with kube.api_client() as api_client:
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL[kind], name, {"spec": dict(spec)}
        )


def list_refs(kube: KubeTestBed, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
    with kube.api_client() as api_client:
        listed = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL[kind]
        )
    items = cast(dict[str, Any], listed).get("items") or []
    return {str(item["metadata"]["name"]): item for item in items}


def list_events(kube: KubeTestBed, namespace: str) -> list[dict[str, Any]]:
    with kube.api_client() as api_client:
        events = client.CoreV1Api(api_client).list_namespaced_event(namespace)
        data = cast(dict[str, Any], api_client.sanitize_for_serialization(events))
    return list(data.get("items") or [])


def occurrences(events: Sequence[Mapping[str, Any]], reason: str | None = None) -> int:
    """Events as a person sees them: an Event with count 3 happened three times."""
    return sum(
        int(event.get("count") or 1)
        for event in events
        if reason is None or event.get("reason") == reason
    )


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return None


def synced(obj: Mapping[str, Any]) -> tuple[str, str]:
    item = condition(obj, "Synced")
    return ("", "") if item is None else (str(item.get("status")), str(item.get("reason")))


def state_of(obj: Mapping[str, Any]) -> str | None:
    status = obj.get("status") or {}
    value = status.get("phase") if obj.get("kind") == JOB else status.get("state")
    return None if value is None else str(value)


def kept_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a failed read must leave alone: the status without its bookkeeping (a read
    that works again after a failure changes Synced, and so moves lastSyncTime)."""
    status = dict(obj.get("status") or {})
    for key in ("conditions", "observedGeneration", "lastSyncTime"):
        status.pop(key, None)
    return status


def resource_versions(*groups: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {
        f"{obj.get('kind')}/{name}": str(obj["metadata"]["resourceVersion"])
        for group in groups
        for name, obj in group.items()
    }


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
        if remote.kind == JOB:
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


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, what: str, within: float, every: float = 0.5
) -> tuple[T, float]:
    """Run `probe` until it returns a value; returns it and the seconds it took."""
    started = time.monotonic()
    while True:
        result = await probe()
        if result is not None:
            return result, time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(every)


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
    latest: dict[str, Any] = {}

    async def probe() -> dict[str, dict[str, Any]] | None:
        refs: dict[str, dict[str, Any]] = {}
        for kind in kinds:
            refs.update(list_refs(kube, kind, namespace))
        latest["wrong"] = mismatches(refs, truth)
        return None if latest["wrong"] else refs

    try:
        return await wait_for(probe, what=what, within=within)
    except AssertionError as error:
        wrong = latest.get("wrong") or {}
        sample = dict(list(wrong.items())[:5])
        raise AssertionError(f"{error}; {len(wrong)} refs differ, e.g. {sample}") from None


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
    if kind == JOB:
        count += (old.get("phase") or "Unknown") != (new.get("phase") or "Unknown")
        count += bool(new.get("clusterState")) and old.get("clusterState") != new.get(
            "clusterState"
        )
        count += (old.get("usage") or {}).get("cuHours") is None and (new.get("usage") or {}).get(
            "cuHours"
        ) is not None
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
        for kind in (JOB, CLUSTER):
            for name, obj in list_refs(kube, kind, namespace).items():
                scanner.scan_json(f"{kind} {namespace}/{name}", obj)
        scanner.scan_json(f"events of {namespace}", list_events(kube, namespace))
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


async def requests_in(control: SimulatorControl, workspace_id: str) -> int:
    return (await control.counters(workspace_id)).total
