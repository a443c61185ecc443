"""Batched polling, the pure part: which refs a list sweep vouches for, which need a Get.

Refs are grouped by (kind, region, credentials, workspace): one ListRayJob or
ListRayCluster sweep per group tells which of its refs changed. A ref needs its own
GetRayJob / GetRayCluster only when

- it was never read for its current generation, or its last read failed (`NEW`);
- its list item differs from what its status shows (`CHANGED`);
- it is missing from a list that should have shown it (`MISSING`): the Get then
  reports RemoteNotFound or finds it;
- it is a cluster whose nodes are due for a refresh (`INSTANCES`, decided by the
  strategy with `timing.instance_refresh_period`): only GetRayCluster shows them.

"Differs from the status" is judged by mapping the list item with the operator's own
mapping and comparing the fields a list item carries, so an operator restart needs no
Get for a ref whose status is still right. The verdict for an item already matched
against the same status (resourceVersion) is remembered as a fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel

from rayref.api import specs
from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import InvalidSpec, credentials_secret
from rayref.emr.models import (
    RayCluster,
    RayClusterSummary,
    RayJob,
    RayJobSummary,
)
from rayref.mirror.cluster import cluster_status
from rayref.mirror.job import job_status
from rayref.mirror.times import epoch_ms
from rayref.polling.packed import is_synced
from rayref.polling.refs import RefSnapshot

JOB_KIND = JOB_KIND
CLUSTER_KIND = CLUSTER_KIND
# The largest page the API documents (ListRayCluster: 1-100; ListRayJob states none).
PAGE_SIZE = 100
# Stop paging a window after this many pages (100,000 jobs), whatever the server says.
MAX_PAGES = 1000

# Status fields a list item also carries; only these can be compared without a Get.
JOB_LIST_FIELDS = (
    "phase",
    "clusterState",
    "name",
    "creatorName",
    "submitTime",
    "startTime",
    "endTime",
    "durationSeconds",
    "dashboardUrl",
)
CLUSTER_LIST_FIELDS = (
    "state",
    "message",
    "name",
    "description",
    "displayReleaseVersion",
    "networkServiceName",
    "creatorName",
    "modifierName",
    "modified",
    "instanceId",
    "headSpec",
    "workerSpecs",
    "dashboardUrl",
    "grpcEndpoint",
    "createTime",
    "startTime",
    "modifiedTime",
)
# Status fields a list item also sets but that are not compared whole, with the reason;
# tests/unit/recipes/test_list_field_recipe.py holds every other one to the tuples above.
JOB_LIST_COMPARED_APART = {
    "usage": "only usage.cuHours: a list item has no GPU hours (reads_like_status)",
}
CLUSTER_LIST_COMPARED_APART: dict[str, str] = {}
# A list item's node specs carry fewer keys than a Get's: the SDK's list models know no
# engine version, environment or GCS fault tolerance. Only these are compared, or every
# cluster read by a Get would look changed at every sweep.
LIST_HEAD_KEYS = (
    "replica", "enableAutoScaling", "idleTimeoutSeconds", "queueName", "cpu", "memory",
    "gpuSpec",
)  # fmt: skip
LIST_WORKER_KEYS = (
    "groupName", "workerType", "replica", "minReplica", "maxReplica", "queueName", "cpu",
    "memory", "gpuSpec",
)  # fmt: skip
# Cluster states in which nodes come and go; only GetRayCluster shows them.
NODE_STATES = frozenset({"Starting", "Running"})

Summary = RayJobSummary | RayClusterSummary


class Verdict(StrEnum):
    UNCHANGED = "unchanged"
    NEW = "new"
    CHANGED = "changed"
    MISSING = "missing"
    INSTANCES = "instances"


@dataclass(frozen=True)
class GroupKey:
    """One list sweep's scope. `credentials` is (namespace, Secret name), or None for
    the operator-wide credentials. A sweep is shared only within one key, so the key
    says who may see it: (namespace, "") is a namespace that names no Secret and may
    not use the operator-wide credentials (`credentials_scope`)."""

    kind: str
    region: str
    credentials: tuple[str, str] | None
    workspace_id: str


def credentials_scope(
    namespace: str, secret: str | None, shared_allowed: Callable[[str], bool]
) -> tuple[str, str] | None:
    """Who shares a sweep: the refs and sets of one namespace naming one Secret, or
    (None) every namespace allowed the operator-wide credentials. A namespace without
    a Secret outside the allow-list is a scope of its own, whose sweeps fail with
    CredentialsNotFound: it never sees another tenant's listing."""
    if secret:
        return (namespace, secret)
    return None if shared_allowed(namespace) else (namespace, "")


def group_key(
    ref: RefSnapshot, default_region: str, shared_allowed: Callable[[str], bool]
) -> GroupKey | None:
    """The sweep a ref belongs to; None for a ref no sweep can serve (invalid spec)."""
    spec = ref.spec
    if isinstance(spec, InvalidSpec):
        return None
    return GroupKey(
        kind=ref.key.kind,
        region=spec.region_id or default_region,
        credentials=credentials_scope(ref.key.namespace, credentials_secret(spec), shared_allowed),
        workspace_id=spec.workspace_id,
    )


def remote_id(ref: RefSnapshot) -> str:
    spec = ref.spec
    return "" if isinstance(spec, InvalidSpec) else specs.remote_id(spec)


def needs_read_before_listing(ref: RefSnapshot, *, failed_sweep: bool = False) -> Verdict | None:
    """`NEW` when no list can vouch for the ref: its status is not a successful read of
    the current generation, or (a job) it lacks the submitTime that places it in a window.

    `failed_sweep`: the status's Synced=False only reports failed sweeps, so a list can
    still vouch for the rest of it."""
    status = ref.status
    if status.get("observedGeneration") != ref.generation:
        return Verdict.NEW
    if not failed_sweep and not is_synced(status):
        return Verdict.NEW
    if ref.key.kind == JOB_KIND and epoch_ms(status.get("submitTime")) is None:
        return Verdict.NEW
    return None


def job_window(submit_times: Iterable[int]) -> tuple[int, int]:
    """The ListRayJob `submitTime` window (both ends inclusive) that holds every given job.

    No wider: jobs submitted later are outside it, so they cannot shift its pages while
    they are read, and refs already covered by a fresh sweep are not paged again.
    """
    times = list(submit_times)
    if not times:
        raise ValueError("a window needs at least one submit time")
    return min(times), max(times)


def fingerprint(summary: Summary) -> int:
    # model_dump_json gives redacted URLs: a rotated dashboard token is no change.
    return hash(summary.model_dump_json())


Factory = Callable[[], Any]


def _factories(model: type[BaseModel], given: Iterable[str]) -> tuple[tuple[str, Factory], ...]:
    """The fields of `model` that `given` lacks and that default to a factory's value."""
    known = set(given)
    return tuple(
        (name, cast(Factory, info.default_factory))
        for name, info in model.model_fields.items()
        if name not in known and info.default_factory is not None
    )


# model_construct asks pydantic for each missing field's default, and for a factory
# pydantic inspects the factory's signature every time (`inspect.signature(list)` parses
# text): a quarter of the operator's CPU while it re-verified 33,000 refs. The factories
# are called here instead.
_JOB_FACTORIES = _factories(RayJob, RayJobSummary.model_fields)
_CLUSTER_FACTORIES = _factories(RayCluster, RayClusterSummary.model_fields)


def _job_from(summary: RayJobSummary) -> RayJob:
    values = {name: getattr(summary, name) for name in RayJobSummary.model_fields}
    values.update((name, factory()) for name, factory in _JOB_FACTORIES)
    return RayJob.model_construct(**values)


def _cluster_from(summary: RayClusterSummary) -> RayCluster:
    values = {name: getattr(summary, name) for name in RayClusterSummary.model_fields}
    values.update((name, factory()) for name, factory in _CLUSTER_FACTORIES)
    return RayCluster.model_construct(**values)


def reads_like_status(
    summary: Summary, status: Mapping[str, Any], *, generation: int, now: datetime
) -> bool:
    """Whether the status already shows everything the list item says."""
    if isinstance(summary, RayJobSummary):
        new = job_status(_job_from(summary), status, generation=generation, now=now).status
        before_usage = (status.get("usage") or {}).get("cuHours")
        after_usage = (new.get("usage") or {}).get("cuHours")
        return before_usage == after_usage and all(
            new.get(name) == status.get(name) for name in JOB_LIST_FIELDS
        )
    new = cluster_status(_cluster_from(summary), status, generation=generation, now=now).status
    return all(
        _as_listed(name, new.get(name)) == _as_listed(name, status.get(name))
        for name in CLUSTER_LIST_FIELDS
    )


def _as_listed(name: str, value: Any) -> Any:
    """A cluster status field as much of it as a list item can show."""
    if name == "headSpec" and isinstance(value, Mapping):
        return {key: value[key] for key in LIST_HEAD_KEYS if key in value}
    if name == "workerSpecs" and isinstance(value, list):
        return [
            {key: group[key] for key in LIST_WORKER_KEYS if key in group}
            if isinstance(group, Mapping)
            else group
            for group in value
        ]
    return value


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    fingerprint: int | None = None


def judge(
    ref: RefSnapshot,
    summary: Summary | None,
    *,
    remembered: tuple[str, int] | None,
    now: datetime,
) -> Judgement:
    """The verdict for a listable ref (see `needs_read_before_listing`) given the item
    a complete list showed for it (None: absent) and the remembered (resourceVersion,
    fingerprint) of the last item found to match its status."""
    if summary is None:
        return Judgement(Verdict.MISSING)
    mark = fingerprint(summary)
    if remembered == (ref.resource_version, mark):
        return Judgement(Verdict.UNCHANGED, mark)
    if reads_like_status(summary, ref.status, generation=ref.generation, now=now):
        return Judgement(Verdict.UNCHANGED, mark)
    return Judgement(Verdict.CHANGED, mark)


def shows_nodes(summary: Summary | None, status: Mapping[str, Any]) -> bool:
    """A cluster whose nodes may be changing: Starting or Running by the list or status."""
    state = getattr(summary, "state", None) if summary is not None else None
    return str(state or status.get("state") or "") in NODE_STATES


@dataclass
class JobListing:
    """What one ListRayJob sweep of a window showed, and which part of it is complete.

    Pages come newest first; when a sweep stops early only the part down to the last
    page's oldest item (exclusive, since equal times may continue on the next page)
    is covered.
    """

    low: int
    high: int
    taken_at: float
    items: dict[str, RayJobSummary] = field(default_factory=dict)
    covered_low: int | None = None  # None: nothing covered yet
    # When each item's page arrived, and when coverage reached each page's low end
    # (newest pages first): a sweep of hundreds of pages lasts longer than the reuse
    # window, so what it can vouch for is judged by page, not by its start.
    item_at: dict[str, float] = field(default_factory=dict)
    pages_at: list[tuple[int, float]] = field(default_factory=list)

    def add_page(self, page: list[RayJobSummary], *, last: bool, at: float | None = None) -> None:
        arrived = self.taken_at if at is None else at
        oldest: int | None = None
        for item in page:
            if item.submission_id:
                self.items[item.submission_id] = item
                self.item_at[item.submission_id] = arrived
            if item.submit_time is not None:
                moment = round(item.submit_time.timestamp() * 1000)
                oldest = moment if oldest is None else min(oldest, moment)
        if last:
            self.covered_low = self.low
        elif oldest is not None:
            self.covered_low = oldest + 1
        if self.covered_low is not None:
            self.pages_at.append((self.covered_low, arrived))

    @property
    def last_page_at(self) -> float:
        return self.pages_at[-1][1] if self.pages_at else self.taken_at

    def read_at(self, submission_id: str, submit_ms: int) -> float:
        """When the listing vouched for the job: its item's page, or (absent) the page
        whose coverage first reached its submit time. Call only where `covers`."""
        at = self.item_at.get(submission_id)
        if at is not None:
            return at
        for covered_low, arrived in self.pages_at:
            if covered_low <= submit_ms:
                return arrived
        return self.last_page_at

    @property
    def complete(self) -> bool:
        return self.covered_low == self.low

    def covers(self, submit_ms: int) -> bool:
        return self.covered_low is not None and self.covered_low <= submit_ms <= self.high


@dataclass
class ClusterListing:
    """What one ListRayCluster sweep showed; only a complete one vouches for absence."""

    taken_at: float
    items: dict[str, RayClusterSummary] = field(default_factory=dict)
    complete: bool = False
    _last_page_at: float | None = None

    def add_page(
        self, page: list[RayClusterSummary], *, last: bool, at: float | None = None
    ) -> None:
        for item in page:
            if item.cluster_id:
                self.items[item.cluster_id] = item
        self.complete = last
        self._last_page_at = at

    @property
    def last_page_at(self) -> float:
        return self.taken_at if self._last_page_at is None else self._last_page_at


@dataclass(frozen=True)
class Sighting:
    """What a sweep showed of one listable ref, as the plan needs it.

    `listed`: the sweep vouches for the ref (its item, or a complete page without it).
    `failing`: not listed because the sweep failed, and it has failed for a whole poll
    interval of the ref. `after_failed_sweep`: its status shows failed sweeps, which only
    a Get can clear. `judgement`: the verdict on its item (None where not judged).
    `nodes_due`: an unchanged cluster whose nodes are due for a read; `node_age` orders
    those (oldest read first)."""

    ref: RefSnapshot
    listed: bool
    failing: bool = False
    after_failed_sweep: bool = False
    judgement: Judgement | None = None
    nodes_due: bool = False
    node_age: float = 0.0


@dataclass(frozen=True)
class ListedPlan:
    """What to do with the refs of one sweep; `plan_listed` decides, the strategy acts.

    `reads`: a Get each, in this order. `unchanged`: served by the sweep (synced, no
    call). `node_refreshes`: oldest first, a Get each while the node budget lasts, the
    rest served as unchanged (their nodes deferred). `stale`: the sweep failed; retry
    soon, status as it is. `failed`: the sweep has failed for a whole interval; say so
    on the ref. `verified`: the sweep vouched for them (forget failed sweeps).
    `remember`: (ref, fingerprint) of items found to match the status. `counted`: the
    verdicts to count, by ref."""

    reads: tuple[RefSnapshot, ...] = ()
    unchanged: tuple[RefSnapshot, ...] = ()
    node_refreshes: tuple[RefSnapshot, ...] = ()
    stale: tuple[RefSnapshot, ...] = ()
    failed: tuple[RefSnapshot, ...] = ()
    verified: tuple[RefSnapshot, ...] = ()
    remember: tuple[tuple[RefSnapshot, int], ...] = ()
    counted: tuple[tuple[RefSnapshot, Verdict], ...] = ()


def plan_listed(sightings: Iterable[Sighting], *, sweep_failed: bool) -> ListedPlan:
    """The plan for the refs of one sweep that was not refused. `sweep_failed`: the
    sweep (or part of it) failed, so an unlisted ref is not known to need a Get."""
    reads: list[RefSnapshot] = []
    unchanged: list[RefSnapshot] = []
    stale: list[RefSnapshot] = []
    failed: list[RefSnapshot] = []
    verified: list[RefSnapshot] = []
    remember: list[tuple[RefSnapshot, int]] = []
    counted: list[tuple[RefSnapshot, Verdict]] = []
    nodes: list[Sighting] = []
    for sighting in sightings:
        ref = sighting.ref
        if not sighting.listed:
            if not sweep_failed:
                reads.append(ref)  # no sweep vouches for it: read it
            else:
                (failed if sighting.failing else stale).append(ref)
            continue
        verified.append(ref)
        judgement = sighting.judgement
        if sighting.after_failed_sweep or judgement is None:
            reads.append(ref)  # its status still shows the failed sweeps
            continue
        if judgement.verdict is not Verdict.UNCHANGED:
            counted.append((ref, judgement.verdict))
            reads.append(ref)
            continue
        assert judgement.fingerprint is not None
        remember.append((ref, judgement.fingerprint))
        if sighting.nodes_due:
            nodes.append(sighting)
        else:
            counted.append((ref, Verdict.UNCHANGED))
            unchanged.append(ref)
    # Node refreshes last and oldest first: only from budget nothing else needs.
    refreshes = tuple(due.ref for due in sorted(nodes, key=lambda due: due.node_age))
    return ListedPlan(
        reads=tuple(reads),
        unchanged=tuple(unchanged),
        node_refreshes=refreshes,
        stale=tuple(stale),
        failed=tuple(failed),
        verified=tuple(verified),
        remember=tuple(remember),
        counted=tuple(counted),
    )
