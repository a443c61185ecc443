"""RayJobRefSet and RayClusterRefSet at work: one task per set, fed by the group sweeps.

Each set watches its group (`GroupLister.watch`): every sweep of the workspace, taken for
the refs or for the set, is handed to it, and the set lists on its own only when no sweep
came within its interval. What to create, delete and report is decided by the pure
`rayref.discovery`; this module reads the listing, writes refs and the set's status, and
deletes finished refs by their TTL.

Many tenants share the sweeps and the TTL loop, so a fault of one set (its window, its
plan, its template, a refused create) or of one ref's TTL is contained
(`observability.faults`) and shown on that set; and a set shares sweeps only within its
credential scope (`listings.credentials_scope`): without a Secret outside the allow-list
it lists nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rayref.api.kinds import (
    CLUSTER_SET_KIND,
    GROUP,
    JOB_KIND,
    PLURALS,
    SET_MEMBERS,
    SET_PLURALS,
    VERSION,
)
from rayref.api.models import POLL_INTERVAL_DEFAULT, RayJobRefSpec
from rayref.api.refsets import RayClusterRefSetSpec, RayJobRefSetSpec, RefSetSpec
from rayref.api.specs import InvalidSpec
from rayref.controller.refset_index import RefIndex
from rayref.discovery import expiry, plan, selector
from rayref.discovery import status as set_status
from rayref.discovery.manifest import SetIdentity, ref_manifest
from rayref.discovery.naming import MAX_NAME_LENGTH
from rayref.discovery.refs import RefInfo
from rayref.emr import endpoints
from rayref.emr.errors import EmrError
from rayref.kube.client import (
    KubeClient,
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
    merge_patch,
)
from rayref.mirror.failure import CREDENTIALS_NOT_FOUND, INVALID_SPEC
from rayref.observability.faults import Faults, describe
from rayref.polling.cloud import CloudAccess, EmrReader
from rayref.polling.lister import GroupLister, Listing, SweepError
from rayref.polling.listings import ClusterListing, GroupKey, JobListing, credentials_scope
from rayref.polling.refs import RefKey, RefSnapshot

logger = logging.getLogger("rayref.refsets")

# Refs created (or deleted) at once: the API server's writes stay a steady stream.
WRITES_IN_FLIGHT = 8
# Tag reads (GetRayJob) per sync and at once: a set naming tags meets each job once.
TAG_READS_PER_SYNC = 200
TAG_READS_IN_FLIGHT = 4
# How often finished refs are checked against their TTL.
EXPIRY_CHECK_SECONDS = 2.0
# What a set's condition quotes of the API server's refusal: enough to name the field.
REFUSAL_MESSAGE_LIMIT = 500

ClientFor = Callable[[GroupKey, RefSnapshot], Awaitable[EmrReader]]


def client_for(cloud: CloudAccess) -> ClientFor:
    """Clients as the sweeps build them: the group's credentials, region and workspace."""

    async def build(key: GroupKey, ref: RefSnapshot) -> EmrReader:
        secret = key.credentials[1] if key.credentials is not None else None
        credentials = await cloud.credentials.credentials_for(ref.key.namespace, secret)
        # The workspace ends up in a URL path: checked again here, not only by the CRD.
        endpoints.validate_workspace_id(key.workspace_id)
        return cloud.client(credentials, key.region)

    return build


@dataclass
class _Set:
    identity: SetIdentity
    generation: int
    spec: RefSetSpec | InvalidSpec
    status: dict[str, Any]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    pending: tuple[Listing, SweepError | None] | None = None
    consumed_at: float = float("-inf")
    dirty: bool = True
    group: GroupKey | None = None
    gone_since: dict[str, datetime] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    # A fault of this set's own step (contained): (reason, message) for its status.
    faulted: tuple[str, str] | None = None
    # The API server's refusal of a create in the current sync.
    refused: str | None = None
    faults: Faults | None = None

    @property
    def member(self) -> str:
        return SET_MEMBERS[self.identity.kind]

    @property
    def interval(self) -> float:
        if isinstance(self.spec, InvalidSpec):
            return float(POLL_INTERVAL_DEFAULT)
        return float(self.spec.template.poll_interval_seconds or POLL_INTERVAL_DEFAULT)

    # -- the ListingWatcher protocol ------------------------------------------------

    def oldest_submit_ms(self) -> int | None:
        if not isinstance(self.spec, RayJobRefSetSpec):
            return None
        oldest = selector.submitted_after(self.spec.selector, datetime.now(UTC))
        # Before 1970 is the whole history: a listing window starts at 0 ms.
        return None if oldest is None else max(0, int(oldest.timestamp() * 1000))

    def fault(self, step: str, error: Exception) -> None:
        """A step the group's sweep runs for this set raised: the set says so itself."""
        message = describe(error)
        if self.faults is not None:
            message = self.faults.report(self.identity.kind, _watch_name(self), step, error)
        self.faulted = (set_status.INTERNAL_ERROR, f"{step} failed: {message}")
        self.wake.set()

    def seen(self, listing: Listing, error: SweepError | None) -> None:
        self.pending = (listing, error)
        self.wake.set()


def parse_set_spec(kind: str, raw: Mapping[str, Any]) -> RefSetSpec | InvalidSpec:
    model: type[RefSetSpec] = RayClusterRefSetSpec if kind == CLUSTER_SET_KIND else RayJobRefSetSpec
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return InvalidSpec("; ".join(problems)[:1000] or "the spec is invalid")


class RefSets:
    def __init__(
        self,
        kube: KubeClient,
        lister: GroupLister,
        client_for: ClientFor,
        default_region: str,
        *,
        owns: Callable[[RefSnapshot], bool] | None = None,
        shared_allowed: Callable[[str], bool] = lambda namespace: False,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # With sharding, a set works on the replica holding its workspace's slot (as its
        # refs' polls do); the others only keep it in mind.
        self._owns = owns
        # RAYREF_SHARED_CREDENTIALS_NAMESPACES: a set without a Secret outside it learns
        # nothing of the workspace (no listing, no ref, no answer to `names`).
        self._shared_allowed = shared_allowed
        self._faults = faults or Faults()
        self._kube = kube
        self._lister = lister
        self._client_for = client_for
        self._default_region = default_region
        self._clock = clock
        self._now = now
        self.index = RefIndex()
        self._sets: dict[tuple[str, str, str], _Set] = {}
        self._started = False
        self._expiry: asyncio.Task[None] | None = None
        self._writes = asyncio.Semaphore(WRITES_IN_FLIGHT)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        for state in self._sets.values():
            self._launch(state)
        if self._expiry is None:
            self._expiry = asyncio.create_task(self._expire_forever())

    async def stop(self) -> None:
        tasks = [s.task for s in self._sets.values() if s.task is not None]
        tasks += [self._expiry] if self._expiry is not None else []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _launch(self, state: _Set) -> None:
        if self._started and state.task is None:
            state.task = asyncio.create_task(self._run(state))

    # -- watch events -----------------------------------------------------------------

    def observe_ref(self, kind: str, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        metadata = obj.get("metadata") or {}
        if event.get("type") == "DELETED":
            self.index.forget(kind, str(metadata.get("namespace")), str(metadata.get("name")))
        else:
            self.index.observe(kind, obj)

    def observe_set(self, kind: str, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        metadata = obj.get("metadata") or {}
        namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
        if not namespace or not name:
            return
        key = (kind, namespace, name)
        if event.get("type") == "DELETED" or metadata.get("deletionTimestamp"):
            self.forget_set(key)
            return
        generation = int(metadata.get("generation") or 0)
        state = self._sets.get(key)
        if state is not None and state.generation == generation:
            return
        spec = parse_set_spec(kind, obj.get("spec") or {})
        if state is None:
            status = dict(obj.get("status") or {})
            identity = SetIdentity(kind, namespace, name, str(metadata.get("uid") or ""))
            state = _Set(identity, generation, spec, status, faults=self._faults)
            self._sets[key] = state
        state.generation, state.spec, state.dirty = generation, spec, True
        state.faulted = None
        self._rewatch(state)
        state.wake.set()
        self._launch(state)

    def forget_set(self, key: tuple[str, str, str]) -> None:
        state = self._sets.pop(key, None)
        if state is None:
            return
        if state.group is not None:
            self._lister.unwatch(state.group, _watch_name(state))
        if state.task is not None:
            state.task.cancel()
        self._faults.forget(_watch_name(state))

    def _rewatch(self, state: _Set) -> None:
        if state.group is not None:
            self._lister.unwatch(state.group, _watch_name(state))
        spec = state.spec
        if isinstance(spec, InvalidSpec) or spec.suspend or self._keyless(state, spec):
            state.group = None
            return
        secret = spec.credentials_secret_ref
        state.group = GroupKey(
            kind=state.member,
            region=spec.region_id or self._default_region,
            credentials=credentials_scope(
                state.identity.namespace, secret.name if secret else None, self._shared_allowed
            ),
            workspace_id=spec.workspace_id,
        )
        self._lister.watch(state.group, _watch_name(state), state)

    def _keyless(self, state: _Set, spec: RefSetSpec) -> bool:
        """No Secret of its own, and its namespace may not use the operator-wide ones."""
        return spec.credentials_secret_ref is None and not self._shared_allowed(
            state.identity.namespace
        )

    # -- one set --------------------------------------------------------------------

    async def _run(self, state: _Set) -> None:
        while True:
            try:
                await self._sync(state)
            except asyncio.CancelledError:
                raise
            except KubeUnavailable as error:
                # The API server, not the set: counted and logged (bounded), retried at
                # the next interval; nothing to write on the set meanwhile.
                self._faults.report(state.identity.kind, _watch_name(state), "sync", error)
            except Exception as error:
                # A set's own fault: on its status, counted, logged at most every 5 min.
                await self._report_fault(state, "sync", error)
            await self._wait(state)

    async def _report_fault(self, state: _Set, step: str, error: Exception) -> None:
        message = self._faults.report(state.identity.kind, _watch_name(state), step, error)
        update = set_status.failed(
            state.status,
            set_status.INTERNAL_ERROR,
            f"{step} failed: {message}",
            generation=state.generation,
            now=self._now(),
        )
        if update.changed:
            with contextlib.suppress(KubeError):
                await self._write_status(state, update.status)

    async def _wait(self, state: _Set) -> None:
        await asyncio.sleep(0)  # a sync that found everything at hand still yields
        while not state.dirty:
            remaining = state.interval - (self._clock() - state.consumed_at)
            if remaining <= 0 or self._news(state):
                return
            state.wake.clear()
            try:
                await asyncio.wait_for(state.wake.wait(), remaining)
            except TimeoutError:
                return

    def _news(self, state: _Set) -> bool:
        return state.pending is not None and state.pending[0].taken_at > state.consumed_at

    async def _sync(self, state: _Set) -> None:
        state.dirty = False
        if self._owns is not None and not self._owns(_snapshot(state)):
            return
        spec = state.spec
        blocked = self._blocked(state)
        if blocked is not None:
            reason, message = blocked
            update = set_status.failed(
                state.status, reason, message, generation=state.generation, now=self._now()
            )
        elif isinstance(spec, InvalidSpec):  # _blocked said so; this tells mypy
            return
        elif spec.suspend:
            update = set_status.suspended(
                state.status, generation=state.generation, now=self._now()
            )
        else:
            await self.index.seed(self._kube, state.member, state.identity.namespace)
            listing, error = await self._listing(state)
            if state.faulted is not None:  # its window could not be computed for the sweep
                (reason, message), state.faulted = state.faulted, None
                update = set_status.failed(
                    state.status, reason, message, generation=state.generation, now=self._now()
                )
            elif error is not None:
                update = set_status.listing_failed(
                    state.status, error, generation=state.generation, now=self._now()
                )
            else:
                update = await self._apply(state, spec, listing)
        if update.changed:
            await self._write_status(state, update.status)

    def _blocked(self, state: _Set) -> tuple[str, str] | None:
        """Why the set cannot list at all (reason, message); None: it can."""
        spec = state.spec
        if isinstance(spec, InvalidSpec):
            return INVALID_SPEC, spec.message
        if len(state.identity.name) > MAX_NAME_LENGTH:
            return set_status.NAME_TOO_LONG, (
                f"the set's name is its refs' label value: at most {MAX_NAME_LENGTH} characters"
            )
        if not spec.suspend and self._keyless(state, spec):
            # The words of the refs' own CredentialsNotFound (kube.credentials).
            namespace = state.identity.namespace
            return CREDENTIALS_NOT_FOUND, (
                f"spec.credentialsSecretRef is not set and namespace {namespace} may not use "
                "the operator-wide credentials (RAYREF_SHARED_CREDENTIALS_NAMESPACES); "
                "nothing was listed"
            )
        return None

    async def _listing(self, state: _Set) -> tuple[Listing, SweepError | None]:
        pending, state.pending = state.pending, None
        if (
            pending is not None
            and pending[0].taken_at > state.consumed_at
            and pending[0].taken_at >= self._clock() - state.interval
        ):
            listing, error = pending
        else:
            assert state.group is not None
            listing, error = await self._lister.discover(
                state.group, _snapshot(state), self._clock(), newer_than=state.consumed_at
            )
            state.pending = None
        state.consumed_at = listing.taken_at if error is None else self._clock()
        return listing, error

    async def _apply(
        self, state: _Set, spec: RefSetSpec, listing: Listing
    ) -> set_status.SetStatusUpdate:
        planned = await self._contained_plan(state, spec, listing)
        if isinstance(planned, set_status.SetStatusUpdate):
            return planned
        state.refused = None
        await self._create(state, spec, planned.create)
        for ref in planned.delete:
            await self._delete(ref)
        if planned.create or planned.delete:
            replanned = await self._contained_plan(state, spec, listing)
            if isinstance(replanned, set_status.SetStatusUpdate):
                return replanned
            planned = replanned
        return set_status.synced(
            state.status,
            planned,
            max_refs=spec.max_refs,
            generation=state.generation,
            now=self._now(),
            refused=state.refused,
        )

    async def _contained_plan(
        self, state: _Set, spec: RefSetSpec, listing: Listing
    ) -> plan.Plan | set_status.SetStatusUpdate:
        """The plan, or the set's InternalError status when planning raised (selector
        evaluation, TTL arithmetic): nothing is created or deleted then."""
        try:
            return await self._plan(state, spec, listing)
        except Exception as error:
            message = self._faults.report(state.identity.kind, _watch_name(state), "plan", error)
            return set_status.failed(
                state.status,
                set_status.INTERNAL_ERROR,
                f"evaluating spec.selector and spec.ttlSecondsAfterFinished failed: {message}",
                generation=state.generation,
                now=self._now(),
            )

    async def _plan(self, state: _Set, spec: RefSetSpec, listing: Listing) -> plan.Plan:
        refs = self.index.refs(state.member, state.identity.namespace)
        now = self._now()
        if isinstance(spec, RayJobRefSetSpec) and isinstance(listing, JobListing):
            decided = plan.plan_jobs(
                spec, state.identity.uid, listing.items, refs, now=now, tags=state.tags
            )
            if decided.tags_needed:
                await self._read_tags(state, decided.tags_needed[:TAG_READS_PER_SYNC])
                decided = plan.plan_jobs(
                    spec, state.identity.uid, listing.items, refs, now=now, tags=state.tags
                )
            return decided
        assert isinstance(spec, RayClusterRefSetSpec) and isinstance(listing, ClusterListing)
        decided = plan.plan_clusters(
            spec,
            state.identity.uid,
            listing.items,
            refs,
            complete=listing.complete,
            gone_since=state.gone_since,
            now=now,
        )
        state.gone_since = decided.gone_since
        return decided

    async def _read_tags(self, state: _Set, ids: tuple[str, ...]) -> None:
        assert state.group is not None
        group = state.group
        try:
            client = await self._client_for(group, _snapshot(state))
        except (EmrError, endpoints.InvalidIdentifierError, KubeError):
            return  # the listing reports credentials problems
        limit = asyncio.Semaphore(TAG_READS_IN_FLIGHT)

        async def read(submission_id: str) -> None:
            async with limit:
                try:
                    job = await client.get_ray_job(group.workspace_id, submission_id)
                except EmrError as exc:
                    logger.info(
                        "reading the tags of %s failed: %s", submission_id, type(exc).__name__
                    )
                    return
                state.tags[submission_id] = {
                    str(tag.key): str(tag.value or "") for tag in job.tags if tag.key is not None
                }

        await asyncio.gather(*(read(i) for i in ids))

    # -- writes -----------------------------------------------------------------------

    async def _create(self, state: _Set, spec: RefSetSpec, remote_ids: tuple[str, ...]) -> None:
        plural = PLURALS[state.member]
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{state.identity.namespace}/{plural}"

        async def create(remote_id: str) -> None:
            body = self._faults.contained(
                state.identity.kind,
                _watch_name(state),
                "template",
                lambda: ref_manifest(state.identity, spec, remote_id),
            )
            if isinstance(body, BaseException):
                state.refused = f"spec.template: {describe(body, REFUSAL_MESSAGE_LIMIT)}"
                return
            async with self._writes:
                try:
                    created = await self._kube.request("POST", path, body=body)
                except KubeConflict:
                    return  # a ref of that name exists: never adopted, never replaced
                except KubeUnavailable as exc:
                    logger.warning(
                        "creating the ref of %s for %s failed: %s",
                        remote_id,
                        _watch_name(state),
                        exc,
                    )
                    return
                except KubeError as exc:
                    # A refusal (422 invalid, 403 quota or webhook) repeats for every ref:
                    # on the set's status, logged at most once per 5 minutes.
                    self._faults.report(state.identity.kind, _watch_name(state), "create", exc)
                    state.refused = _refusal(exc)
                    return
            self.index.observe(state.member, created)

        await asyncio.gather(*(create(i) for i in remote_ids))

    async def _delete(self, ref: RefInfo) -> None:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{ref.namespace}/{PLURALS[ref.kind]}/{ref.name}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"uid": ref.uid},
            "propagationPolicy": "Background",
        }
        async with self._writes:
            try:
                await self._kube.request("DELETE", path, body=body)
            except (KubeNotFound, KubeConflict):
                pass  # gone already, or another object of that name now
            except KubeError as exc:
                logger.warning("deleting %s/%s failed: %s", ref.namespace, ref.name, exc)
                return
        self.index.mark_deleting(ref)

    async def _write_status(self, state: _Set, status: dict[str, Any]) -> None:
        identity = state.identity
        plural = SET_PLURALS[identity.kind]
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{identity.namespace}"
        path = f"{base}/{plural}/{identity.name}/status"
        patch = merge_patch(state.status, status)
        try:
            await self._kube.request(
                "PATCH", path, body={"status": patch}, content_type="application/merge-patch+json"
            )
        except KubeNotFound:
            return
        state.status = status

    # -- TTL ------------------------------------------------------------------------

    async def _expire_forever(self) -> None:
        while True:
            try:
                await self.expire()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the TTL check crashed")
            await asyncio.sleep(EXPIRY_CHECK_SECONDS)

    async def expire(self) -> None:
        """Delete every finished job ref whose ttlSecondsAfterFinished (its own, or its
        set's) has passed."""
        ttls = {
            s.identity.uid: s.spec.ttl_seconds_after_finished
            for s in self._sets.values()
            if isinstance(s.spec, RayJobRefSetSpec)
        }
        now = self._now()
        due = [
            ref
            for ref in self.index.expiry_candidates(JOB_KIND)
            if not ref.deleting and self._expired(ref, ttls.get(ref.owner_uid or ""), now)
        ]
        await asyncio.gather(*(self._delete(ref) for ref in due), return_exceptions=True)

    def _expired(self, ref: RefInfo, set_ttl: int | None, now: datetime) -> bool:
        """One ref's TTL, contained: its fault keeps the ref and every other TTL runs."""
        verdict = self._faults.contained(
            ref.kind,
            f"{ref.namespace}/{ref.name}",
            "ttl",
            lambda: expiry.expired(expiry.job_expires_at(ref, set_ttl), now),
        )
        return verdict is True


def _refusal(error: KubeError) -> str:
    """The server's message (it names the field), one line and bounded."""
    text = " ".join(f"{error.status} {error.reason}: {error.message}".split())
    if len(text) <= REFUSAL_MESSAGE_LIMIT:
        return text
    return text[: REFUSAL_MESSAGE_LIMIT - 3] + "..."


def _watch_name(state: _Set) -> str:
    identity = state.identity
    return f"{identity.kind}/{identity.namespace}/{identity.name}"


def _snapshot(state: _Set) -> RefSnapshot:
    """The set where the lister wants a ref: it builds clients from namespace and group."""
    identity, spec = state.identity, state.spec
    ref_spec: InvalidSpec | RayJobRefSpec = InvalidSpec("a set")
    if not isinstance(spec, InvalidSpec):
        # Only the group's fields matter (workspace, region, credentials).
        ref_spec = RayJobRefSpec(
            workspace_id=spec.workspace_id,
            region_id=spec.region_id,
            credentials_secret_ref=spec.credentials_secret_ref,
            submission_id="set",
        )
    return RefSnapshot(
        key=RefKey(state.member, identity.namespace, identity.name),
        uid=identity.uid,
        generation=state.generation,
        spec=ref_spec,
        status={},
        resource_version="",
    )
