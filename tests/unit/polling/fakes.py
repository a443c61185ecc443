"""Fakes for the reconcile and sweep tests: the cloud, credentials, Kubernetes, events and
the clocks. Everything else (the mapping, the timing rules, the metrics) is the real code.

`World` wires one of each into a `Poller` (and a `ListPollStrategy`), and keeps the refs
as the API server would store them, so a test can poll, look at what was written, and
poll again with the snapshot the watch would deliver.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import parse_spec
from rayref.emr import endpoints
from rayref.emr.credentials import Credentials
from rayref.emr.errors import AccessDeniedError, NotFoundError
from rayref.emr.models import (
    RayCluster,
    RayClusterPage,
    RayClusterSummary,
    RayJob,
    RayJobPage,
    RayJobSummary,
)
from rayref.kube.client import JsonObject, KubeClient, KubeNotFound
from rayref.kube.connection import ConnectionSecrets, SecretMemory
from rayref.kube.credentials import CredentialsNotFound, CredentialsSource
from rayref.kube.events import EventRecorder, EventType, InvolvedObject
from rayref.observability.metrics import Metrics
from rayref.polling.cloud import CloudAccess, EmrReader
from rayref.polling.reconcile import PollContext, Poller
from rayref.polling.refs import RefKey, RefSnapshot
from rayref.polling.sweeps import ListPollStrategy
from tests.support.clock import ManualClock
from tests.unit.mirror.remotes import at, cluster_body, job_body

WORKSPACE = "w-d2d82aa09155"
REGION = "cn-hangzhou"
NAMESPACE = "team-a"
SECRET = "creds"
KEY_ONE = Credentials("AKID-one", "secret-one")
KEY_TWO = Credentials("AKID-two", "secret-two")
SHARED_KEY = Credentials("AKID-shared", "secret-shared")

# The fields a ListRayJob item carries (the rest only GetRayJob shows).
JOB_SUMMARY_KEYS = frozenset(
    RayJobSummary.model_fields[name].alias for name in RayJobSummary.model_fields
)
# What only GetRayCluster shows.
CLUSTER_GET_ONLY_KEYS = frozenset(
    {"instances", "submitToken", "jobUrl", "jobUrlInner", "volumeIds", "requestId"}
)


class FakeClock(ManualClock):
    """The monotonic clock (call it) and a wall clock (`now`) that move together."""

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(start)
        self.start = start

    def now(self) -> datetime:
        # After the fixture bodies' times, so mapped durations and ages are positive.
        return at(100_000 + self.t - self.start)


@dataclass(frozen=True)
class Call:
    operation: str
    access_key_id: str
    page_num: int | None = None
    submit_time: tuple[int, int] | str | None = None
    object_id: str | None = None  # the job or cluster a Get read


class FakeEmr:
    """The remote objects, as GetRayJob / GetRayCluster bodies, and every call made.

    `errors[operation]` is raised by every call of that operation until removed; an
    access key in `refused_keys` is answered AccessDenied by every operation.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, Exception] = {}
        self.refused_keys: set[str] = set()
        self.calls: list[Call] = []

    def add_job(self, submission_id: str, **changes: Any) -> dict[str, Any]:
        body = job_body(submissionId=submission_id, **changes)
        self.jobs[submission_id] = body
        return body

    def add_cluster(self, cluster_id: str, **changes: Any) -> dict[str, Any]:
        body = cluster_body(clusterId=cluster_id, **changes)
        self.clusters[cluster_id] = body
        return body

    def count(self, operation: str) -> int:
        return sum(1 for call in self.calls if call.operation == operation)

    def counts(self) -> Counter[str]:
        return Counter(call.operation for call in self.calls)

    def keys_used(self, operation: str) -> list[str]:
        return [call.access_key_id for call in self.calls if call.operation == operation]

    def reset_calls(self) -> None:
        self.calls.clear()


class FakeEmrClient:
    """One client (one key pair); satisfies `rayref.polling.cloud.EmrReader`."""

    def __init__(self, emr: FakeEmr, credentials: Credentials) -> None:
        self._emr = emr
        self._key = credentials.access_key_id

    def _call(self, operation: str, **detail: Any) -> None:
        self._emr.calls.append(Call(operation, self._key, **detail))
        error = self._emr.errors.get(operation)
        if error is not None:
            raise error
        if self._key in self._emr.refused_keys:
            raise AccessDeniedError(
                "You are not authorized to do this action.",
                code="Forbidden.RAM",
                status_code=403,
            )

    async def get_ray_job(self, workspace_id: str, submission_id: str) -> RayJob:
        self._call("GetRayJob", object_id=submission_id)
        body = self._emr.jobs.get(submission_id)
        if body is None:
            raise NotFoundError(
                "The ray job does not exist.", code="RayJob.NotFound", status_code=404
            )
        return RayJob.model_validate(body)

    async def get_ray_cluster(self, workspace_id: str, cluster_id: str) -> RayCluster:
        self._call("GetRayCluster", object_id=cluster_id)
        body = self._emr.clusters.get(cluster_id)
        if body is None:
            raise NotFoundError(
                "The ray cluster does not exist.", code="RayCluster.NotFound", status_code=404
            )
        return RayCluster.model_validate(body)

    async def list_ray_jobs(
        self,
        workspace_id: str,
        *,
        page_num: int = 1,
        page_size: int = 20,
        submit_time: tuple[int, int] | str | None = None,
    ) -> RayJobPage:
        self._call("ListRayJob", page_num=page_num, submit_time=submit_time)
        bodies = list(self._emr.jobs.values())
        if isinstance(submit_time, tuple):
            low, high = submit_time
            bodies = [b for b in bodies if low <= int(b["submitTime"]) <= high]
        bodies.sort(key=lambda b: int(b["submitTime"]), reverse=True)  # newest first
        page = bodies[(page_num - 1) * page_size : page_num * page_size]
        return RayJobPage(
            total_count=len(bodies),
            ray_jobs=[
                RayJobSummary.model_validate({k: v for k, v in b.items() if k in JOB_SUMMARY_KEYS})
                for b in page
            ],
        )

    async def list_ray_clusters(
        self, workspace_id: str, *, page_num: int = 1, page_size: int = 20
    ) -> RayClusterPage:
        self._call("ListRayCluster", page_num=page_num)
        bodies = list(self._emr.clusters.values())
        page = bodies[(page_num - 1) * page_size : page_num * page_size]
        return RayClusterPage(
            ray_clusters=[
                RayClusterSummary.model_validate(
                    {k: v for k, v in b.items() if k not in CLUSTER_GET_ONLY_KEYS}
                )
                for b in page
            ]
        )


class FakeCredentials(CredentialsSource):
    """Secrets by (namespace, name): a key pair or the error reading it raises.

    `error`, when set, is raised for every read (e.g. KubeUnavailable)."""

    def __init__(self, shared_namespaces: frozenset[str] = frozenset()) -> None:
        self.secrets: dict[tuple[str, str], Credentials | Exception] = {
            (NAMESPACE, SECRET): KEY_ONE
        }
        self.shared_namespaces = shared_namespaces
        self.error: Exception | None = None
        self.reads = 0

    async def credentials_for(self, namespace: str, secret_name: str | None) -> Credentials:
        self.reads += 1
        if self.error is not None:
            raise self.error
        if secret_name is None:
            if namespace not in self.shared_namespaces:
                raise CredentialsNotFound(
                    f"namespace {namespace} may not use the operator-wide credentials"
                )
            return SHARED_KEY
        found = self.secrets.get((namespace, secret_name))
        if found is None:
            raise CredentialsNotFound(f"Secret {namespace}/{secret_name} not found")
        if isinstance(found, Exception):
            raise found
        return found


class FakeCloud(CloudAccess):
    """`CloudAccess` whose clients are `FakeEmrClient`s (no HTTP pool, no budget)."""

    def __init__(self, emr: FakeEmr, credentials: FakeCredentials) -> None:
        # Not the dataclass __init__: the HTTP pool and the budget are never used here.
        self.emr = emr
        self.credentials = credentials
        self.default_region = REGION
        self.network = "public"
        self.endpoint = None
        self.observer = None
        self.shared_credentials_allowed = lambda namespace: (
            namespace in credentials.shared_namespaces
        )

    def client(self, credentials: Credentials, region: str) -> EmrReader:
        endpoints.validate_region(region)  # as the real one: the region becomes a host name
        return FakeEmrClient(self.emr, credentials)


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies it."""
    result = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = apply_merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@dataclass
class Write:
    key: RefKey
    patch: dict[str, Any]


class FakeKube(KubeClient):
    """Stored refs with a status subresource; `error`, when set, answers every patch."""

    def __init__(self) -> None:
        self.objects: dict[RefKey, JsonObject] = {}
        self.writes: list[Write] = []
        self.error: Exception | None = None
        self._version = 100

    def store(self, key: RefKey, status: Mapping[str, Any]) -> str:
        self._version += 1
        self.objects[key] = {
            "metadata": {"resourceVersion": str(self._version)},
            "status": copy.deepcopy(dict(status)),
        }
        return str(self._version)

    async def patch_status(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> JsonObject:
        key = RefKey(kind, namespace, name)
        if self.error is not None:
            raise self.error
        stored = self.objects.get(key)
        if stored is None:
            raise KubeNotFound(404, "NotFound", f"{kind} {namespace}/{name} not found")
        self.writes.append(Write(key, copy.deepcopy(dict(patch))))
        self.store(key, apply_merge_patch(stored["status"], patch))
        return copy.deepcopy(self.objects[key])

    def status(self, key: RefKey) -> dict[str, Any]:
        status: dict[str, Any] = self.objects[key]["status"]
        return status

    def writes_of(self, key: RefKey) -> list[dict[str, Any]]:
        return [write.patch for write in self.writes if write.key == key]


@dataclass(frozen=True)
class Event:
    name: str
    type: str
    reason: str
    message: str


class FakeEvents(EventRecorder):
    def __init__(self) -> None:
        self.recorded: list[Event] = []

    def forget(self, uid: str) -> None:
        pass

    async def record(
        self, obj: InvolvedObject, type_: EventType, reason: str, message: str
    ) -> None:
        self.recorded.append(Event(obj.name, type_, reason, message))

    def reasons(self, name: str | None = None) -> list[str]:
        return [e.reason for e in self.recorded if name is None or e.name == name]


@dataclass
class Ensured:
    namespace: str
    secret_name: str
    owner_uid: str
    data: dict[str, str]


class FakeConnectionSecrets(ConnectionSecrets):
    """Connection Secrets by (namespace, name); `ensure` says whether the data changed."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict[str, str]] = {}
        self.calls: list[Ensured] = []

    async def ensure(
        self,
        *,
        namespace: str,
        secret_name: str,
        owner_kind: str,
        owner_name: str,
        owner_uid: str,
        data: Mapping[str, str],
        memory: SecretMemory,
    ) -> bool:
        self.calls.append(Ensured(namespace, secret_name, owner_uid, dict(data)))
        changed = self.stored.get((namespace, secret_name)) != dict(data)
        self.stored[(namespace, secret_name)] = dict(data)
        return changed


@dataclass
class World:
    """One of each fake, wired as the runtime wires the real parts."""

    clock: FakeClock = field(default_factory=FakeClock)
    emr: FakeEmr = field(default_factory=FakeEmr)
    credentials: FakeCredentials = field(default_factory=FakeCredentials)
    kube: FakeKube = field(default_factory=FakeKube)
    events: FakeEvents = field(default_factory=FakeEvents)
    secrets: FakeConnectionSecrets = field(default_factory=FakeConnectionSecrets)
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        self.cloud = FakeCloud(self.emr, self.credentials)
        self.poller = Poller(
            PollContext(
                cloud=self.cloud,
                kube=self.kube,
                events=self.events,
                connection_secrets=self.secrets,
                metrics=self.metrics,
                now=self.clock.now,
                clock=self.clock,
            )
        )

    def sweeps(self, **options: Any) -> ListPollStrategy:
        return ListPollStrategy(
            self.poller, self.cloud, self.metrics, clock=self.clock, now=self.clock.now, **options
        )

    def ref(
        self,
        kind: str,
        name: str,
        *,
        status: Mapping[str, Any] | None = None,
        generation: int = 1,
        namespace: str = NAMESPACE,
        **spec: Any,
    ) -> RefSnapshot:
        """A ref stored in the fake API server, as the registry would hand it to a poll."""
        raw: dict[str, Any] = {"workspaceId": WORKSPACE, "credentialsSecretRef": {"name": SECRET}}
        raw.update(spec)
        key = RefKey(kind, namespace, name)
        version = self.kube.store(key, status or {})
        return RefSnapshot(
            key=key,
            uid=f"uid-{name}",
            generation=generation,
            spec=parse_spec(kind, {k: v for k, v in raw.items() if v is not None}),
            status=copy.deepcopy(dict(status or {})),
            resource_version=version,
        )

    def job_ref(self, name: str, submission_id: str, **options: Any) -> RefSnapshot:
        return self.ref(JOB_KIND, name, submissionId=submission_id, **options)

    def cluster_ref(self, name: str, cluster_id: str, **options: Any) -> RefSnapshot:
        return self.ref(CLUSTER_KIND, name, clusterId=cluster_id, **options)

    def current(self, ref: RefSnapshot, *, generation: int | None = None) -> RefSnapshot:
        """The ref as the watch delivers it after the writes so far."""
        stored = self.kube.objects[ref.key]
        return RefSnapshot(
            key=ref.key,
            uid=ref.uid,
            generation=ref.generation if generation is None else generation,
            spec=ref.spec,
            status=copy.deepcopy(stored["status"]),
            resource_version=stored["metadata"]["resourceVersion"],
            memory=ref.memory,  # the registry entry's: the same ref
        )

    def polls(self, kind: str, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "rayref_polls_total", {"kind": kind, "result": result}
        )
        return value or 0.0


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for item in status.get("conditions") or []:
        if item["type"] == type_:
            return dict(item)
    raise AssertionError(f"no {type_} condition in {status.get('conditions')}")


def synced(status: Mapping[str, Any]) -> tuple[str, str]:
    """The Synced condition's (status, reason)."""
    found = condition(status, "Synced")
    return found["status"], found["reason"]
