"""`ListPollStrategy`: the scheduler's work as list sweeps per group, Gets only where needed.

For each batch of due refs of one group (see `listings.GroupKey`):

1. refs no list can vouch for (never read for this generation, last read failed,
   suspended, no shared credentials for their namespace) go to the per-ref poll;
2. the others are looked up in a list sweep: ListRayJob pages of a `submitTime`
   window that covers them, or every ListRayCluster page. A sweep taken a few seconds
   ago by an earlier batch of the same group is reused;
3. refs whose item matches their status are done: no call of their own, no write;
   changed, missing and node-refresh refs go to the per-ref poll (a Get, a write
   only on change, events, connection Secret);
4. every ref's next check snaps to its group's `SweepGrid` tick, so the next sweep
   serves them together.

A throttled or failing sweep leaves the refs' status as it is (staler first) and
tries again soon. When the sweeps have failed for a whole poll interval of a ref,
its status says so (`Synced=False` with the sweep's reason, last state kept;
`Poller.report_failure`) and the ref stays with the sweeps: the first sweep that works
again sends it to a Get, which restores `Synced=True`. A sweep refused for a reason a
person must fix (credentials, bad request, unknown workspace) hands the refs to the
per-ref poll, which reports it in each status as before. A ref a finished sweep did
not cover (the window ran past the page limit) is read with a Get.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from rayref.api.kinds import CLUSTER_KIND
from rayref.emr import endpoints
from rayref.emr.credentials import Credentials
from rayref.emr.errors import CredentialsError, ThrottledError
from rayref.kube.client import KubeError
from rayref.mirror.failure_table import SWEEP_REFUSALS, row_for
from rayref.observability.metrics import Metrics
from rayref.polling import listings
from rayref.polling.cloud import CloudAccess, EmrReader, fingerprint
from rayref.polling.lister import REUSE_SECONDS, GroupLister
from rayref.polling.listings import (
    GroupKey,
    Verdict,
)
from rayref.polling.memory import RefMemory
from rayref.polling.node_refresh import NodeRefreshBudget, Unlimited
from rayref.polling.reconcile import Poller
from rayref.polling.refs import PollOutcome, RefKey, RefSnapshot
from rayref.polling.timing import (
    TICK_SECONDS,
    SweepGrid,
    instance_refresh_period,
    next_poll_delay,
    stale_retry_delay,
)

logger = logging.getLogger("rayref.sweeps")

# Per-ref polls (Gets) of one batch run at most this many at a time: each group then
# holds only a few places in the budget's queue, and busy groups share it evenly.
GETS_PER_GROUP = 4
# Judging a ref maps its list item with the operator's own mapping (about 0.1-1 ms);
# a group of 10,000 refs judged in one go would hold the event loop for seconds, and
# with it the Lease renewals of leader election and sharding. Yield this often.
JUDGED_BETWEEN_YIELDS = 100
# The list call could not be made for a reason a person must fix: hand the refs to the
# per-ref poll (which reports it per ref and backs off) and do not list again for this long.
REFUSED_SWEEP_SECONDS = 120.0

# Which errors refuse a sweep: the failure table's (kept under its old name).
REFUSALS = SWEEP_REFUSALS


@dataclass
class _NodeReads:
    """When a cluster's nodes were last read, and how many reads in a row changed nothing."""

    at: float
    unchanged: int = 0


@dataclass(slots=True)
class RefSweepState:
    """What the sweeps remember of one ref (`RefMemory.sweep`), forgotten with the ref."""

    # The list item last found to match the status: (resourceVersion, fingerprint).
    remembered: tuple[str, int] | None = None
    # A running cluster's node reads (only GetRayCluster shows nodes).
    nodes: _NodeReads | None = None
    # Since when the sweeps meant to vouch for the ref have failed.
    unverified_since: float | None = None
    # The generation whose status now shows a failed sweep (not a failed Get).
    sweep_failed: int | None = None
    # Checked at least once since start (the restart re-verification).
    checked: bool = False
    # A node refresh granted by the node budget and not yet given back.
    refresh_granted: bool = False


@dataclass(frozen=True)
class _Refusal:
    fingerprint: str
    until: float


class ListPollStrategy:
    def __init__(
        self,
        reconciler: Poller,
        cloud: CloudAccess,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = listings.PAGE_SIZE,
        gets_per_group: int = GETS_PER_GROUP,
        reuse_seconds: float = REUSE_SECONDS,
        node_budget: NodeRefreshBudget | None = None,
    ) -> None:
        self._reconciler = reconciler
        self._node_budget: NodeRefreshBudget = node_budget or Unlimited()
        self._cloud = cloud
        self._metrics = metrics
        self._clock = clock
        self._now = now
        self._gets_per_group = gets_per_group
        self._lister = GroupLister(
            self._client, clock=clock, page_size=page_size, reuse_seconds=reuse_seconds
        )
        self._grids: dict[GroupKey, SweepGrid] = {}
        self._refusals: dict[GroupKey, _Refusal] = {}
        self._checked = 0

    # -- the PollStrategy protocol ------------------------------------------------

    def batch_key(self, ref: RefSnapshot) -> Hashable:
        key = listings.group_key(
            ref, self._cloud.default_region, self._cloud.shared_credentials_allowed
        )
        return ref.key if key is None else key

    async def poll_batch(self, refs: Sequence[RefSnapshot]) -> Mapping[RefKey, PollOutcome]:
        key = listings.group_key(
            refs[0], self._cloud.default_region, self._cloud.shared_credentials_allowed
        )
        if key is None:  # an invalid spec: only its own poll can say so
            return {ref.key: await self._reconciler(ref) for ref in refs}
        started = self._clock()
        if await self._refusal_outdated(key, refs[0]):
            del self._refusals[key]  # the Secret holds another key now: list again
        direct: list[RefSnapshot] = []
        listable: list[RefSnapshot] = []
        for ref in refs:
            if self._own_poll_or_fault(key, ref):
                direct.append(ref)
            else:
                listable.append(ref)
        outcomes: dict[RefKey, PollOutcome] = {}
        if listable:
            more, listed = await self._check_listed(key, listable, started)
            direct += more
            outcomes.update(listed)
        if direct:
            outcomes.update(await self._poll_each(key, direct))
        for ref in refs:
            # a ref deleted while this sweep ran was already taken off the count
            if ref.key in outcomes and not ref.memory.forgotten:
                state = self._state(ref)
                if not state.checked:
                    state.checked = True
                    self._checked += 1
        self._metrics.refs_checked.set(self._checked)
        return outcomes

    def forget(self, memory: RefMemory) -> None:
        """The ref is gone (the scheduler's `on_forget`): its state went with its memory,
        its share of the totals (refs checked, node refreshes granted) goes here."""
        state, memory.sweep = memory.sweep, None
        if state is not None and state.checked:
            self._checked -= 1
        if state is not None:
            self._give_back(state)

    @property
    def lister(self) -> GroupLister:
        """The group sweeps, which sets share (`GroupLister.watch`)."""
        return self._lister

    @property
    def sweeps(self) -> int:
        """List sweeps taken since start (each one or more pages)."""
        return self._lister.sweeps

    @property
    def checked(self) -> int:
        """Refs checked at least once since start (the restart re-verification)."""
        return self._checked

    def _state(self, ref: RefSnapshot) -> RefSweepState:
        state = ref.memory.sweep
        if state is None:
            state = ref.memory.sweep = RefSweepState()
        return state

    # -- deciding -----------------------------------------------------------------

    def _needs_own_poll(self, key: GroupKey, ref: RefSnapshot) -> bool:
        if ref.suspended:
            return True
        # Synced=False from failed sweeps keeps the ref with the sweeps: a Get each would
        # cost the budget what the sweep saves, for an answer no better.
        state = ref.memory.sweep
        failed_sweep = state is not None and state.sweep_failed == ref.generation
        if listings.needs_read_before_listing(ref, failed_sweep=failed_sweep) is not None:
            return True
        own_secret = key.credentials is not None and key.credentials[1]
        if not own_secret and not self._cloud.shared_credentials_allowed(ref.key.namespace):
            return True
        refusal = self._refusals.get(key)
        return refusal is not None and self._clock() < refusal.until

    def _own_poll_or_fault(self, key: GroupKey, ref: RefSnapshot) -> bool:
        """`_needs_own_poll` within a bulkhead: a ref it fails on is read on its own (its
        poll says what is wrong, on the ref), and the group's sweep goes on."""
        needs = self._metrics.faults.contained(
            ref.key.kind, ref.key, "sort", lambda: self._needs_own_poll(key, ref)
        )
        return needs is not False

    def _failing_for_an_interval(self, ref: RefSnapshot) -> bool:
        now = self._clock()
        state = self._state(ref)
        if state.unverified_since is None:
            state.unverified_since = now
        # Half a tick of slack, as for node reads: retries land on ticks.
        return now - state.unverified_since >= ref.interval - TICK_SECONDS / 2

    async def _check_listed(
        self, key: GroupKey, refs: list[RefSnapshot], started: float
    ) -> tuple[list[RefSnapshot], dict[RefKey, PollOutcome]]:
        """Look refs up in a (possibly reused) sweep. Returns the refs that need their
        own poll and the outcomes of the others.

        What the sweep showed of each ref is gathered first (`_sight`: the steps that read
        state or the clock, or may fault), `listings.plan_listed` decides what to do with
        all of them, and `_carry_out` does it: the decision stays pure and testable."""
        lookup, taken_at, error = await self._lister.lookup(key, refs, started)
        if error is not None:
            logger.warning(
                "listing %s refs of workspace %s failed: %s",
                key.kind,
                key.workspace_id,
                type(error).__name__,
            )
        if error is not None and row_for(error).refuses_sweep:
            await self._note_refusal(key, refs[0], error)
            return list(refs), {}
        now = self._now()
        sightings: list[listings.Sighting] = []
        for index, ref in enumerate(refs):
            if index and index % JUDGED_BETWEEN_YIELDS == 0:
                await asyncio.sleep(0)
            sightings.append(self._sight(key, ref, lookup, error, now))
        plan = listings.plan_listed(sightings, sweep_failed=error is not None)
        return await self._carry_out(key, plan, now, taken_at, error)

    def _sight(
        self,
        key: GroupKey,
        ref: RefSnapshot,
        lookup: Mapping[RefKey, listings.Summary | None],
        error: Exception | None,
        now: datetime,
    ) -> listings.Sighting:
        """What the sweep showed of one ref: only the facts its plan will read."""
        if ref.key not in lookup:
            failing = error is not None and self._failing_for_an_interval(ref)
            return listings.Sighting(ref, listed=False, failing=failing)
        state = self._state(ref)
        if state.sweep_failed is not None:
            return listings.Sighting(ref, listed=True, after_failed_sweep=True)
        summary = lookup[ref.key]
        judgement = self._judge(ref, summary, state, now)
        nodes_due = (
            judgement.verdict is Verdict.UNCHANGED
            and key.kind == CLUSTER_KIND
            and self._nodes_due(key, ref, state, summary)
        )
        return listings.Sighting(
            ref,
            listed=True,
            judgement=judgement,
            nodes_due=nodes_due,
            node_age=_node_age_key(state),
        )

    async def _carry_out(
        self,
        key: GroupKey,
        plan: listings.ListedPlan,
        now: datetime,
        taken_at: float,
        error: Exception | None,
    ) -> tuple[list[RefSnapshot], dict[RefKey, PollOutcome]]:
        """Do what the plan says: returns the refs to read and the others' outcomes."""
        for ref in plan.verified:
            state = self._state(ref)
            state.unverified_since = state.sweep_failed = None
        for ref, mark in plan.remember:
            self._state(ref).remembered = (ref.resource_version, mark)
        for ref, verdict in plan.counted:
            self._metrics.polls.labels(ref.key.kind, f"listed-{verdict}").inc()
        direct = list(plan.reads)
        served = list(plan.unchanged)
        for ref in plan.node_refreshes:
            if self._node_budget.take():
                self._state(ref).refresh_granted = True
                self._metrics.polls.labels(ref.key.kind, f"listed-{Verdict.INSTANCES}").inc()
                direct.append(ref)
            else:
                self._metrics.polls.labels(ref.key.kind, "listed-nodes-deferred").inc()
                served.append(ref)
        outcomes: dict[RefKey, PollOutcome] = {}
        for ref in served:
            self._metrics.synced(ref.memory)
            outcomes[ref.key] = self._unchanged(key, ref, now, observed_at=taken_at)
        for ref in plan.stale:
            outcomes[ref.key] = self._stale(key, ref, error)
        if plan.failed:
            assert error is not None
            outcomes.update(await self._report_failed(key, list(plan.failed), error))
        return direct, outcomes

    def _judge(
        self,
        ref: RefSnapshot,
        summary: listings.Summary | None,
        state: RefSweepState,
        now: datetime,
    ) -> listings.Judgement:
        """The verdict on one ref, within a bulkhead: judging it failed reads as changed,
        so its own poll says what is wrong, on the ref; the other refs of the sweep are
        judged all the same."""
        judged = self._metrics.faults.contained(
            ref.key.kind,
            ref.key,
            "judge",
            lambda: listings.judge(ref, summary, remembered=state.remembered, now=now),
        )
        return listings.Judgement(Verdict.CHANGED) if isinstance(judged, BaseException) else judged

    async def _report_failed(
        self, key: GroupKey, refs: list[RefSnapshot], error: Exception
    ) -> dict[RefKey, PollOutcome]:
        """Say on each ref that its sweeps keep failing; try the sweep again soon."""
        outcomes: dict[RefKey, PollOutcome] = {}
        for ref in refs:
            next_delay = self._stale_delay(key, ref, error)
            try:
                outcome = await self._reconciler.report_failure(ref, error)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reporting the failed sweep on %s crashed", ref.key)
                outcomes[ref.key] = PollOutcome(next_delay=next_delay)
                continue
            if outcome.gone:
                outcomes[ref.key] = outcome
                continue
            self._state(ref).sweep_failed = ref.generation
            outcomes[ref.key] = PollOutcome(
                next_delay=next_delay,
                status=outcome.status,
                resource_version=outcome.resource_version,
            )
        return outcomes

    def _nodes_due(
        self,
        key: GroupKey,
        ref: RefSnapshot,
        state: RefSweepState,
        summary: listings.Summary | None,
    ) -> bool:
        if not listings.shows_nodes(summary, ref.status):
            state.nodes = None
            return False
        reads = state.nodes
        if reads is None:
            return True
        period = instance_refresh_period(ref.interval, reads.unchanged)
        # Half a tick of slack: a check landing a hair early must not skip a whole period.
        return self._clock() - reads.at >= period - self._grid(key).tick / 2

    def _unchanged(
        self, key: GroupKey, ref: RefSnapshot, now: datetime, *, observed_at: float
    ) -> PollOutcome:
        delay = next_poll_delay(ref.key.kind, ref.status, ref.interval, now=now)
        return PollOutcome(next_delay=self._snap(key, delay, observed_at))

    def _stale(self, key: GroupKey, ref: RefSnapshot, error: Exception | None) -> PollOutcome:
        self._metrics.polls.labels(ref.key.kind, "listed-stale").inc()
        return PollOutcome(next_delay=self._stale_delay(key, ref, error))

    def _stale_delay(
        self, key: GroupKey, ref: RefSnapshot, error: Exception | None
    ) -> float | None:
        """When to try the sweep again for a ref it failed to cover."""
        retry_after = error.retry_after if isinstance(error, ThrottledError) else None
        return self._snap(key, stale_retry_delay(ref.interval, retry_after), self._clock())

    # -- timing -------------------------------------------------------------------

    def _grid(self, key: GroupKey) -> SweepGrid:
        grid = self._grids.get(key)
        if grid is None:
            grid = self._grids[key] = SweepGrid()
        return grid

    def _snap(self, key: GroupKey, delay: float | None, observed_at: float) -> float | None:
        if delay is None:
            return None
        now = self._clock()
        due = self._grid(key).next_due(observed_at, delay, not_before=now)
        return max(0.0, due - now)

    # -- clients --------------------------------------------------------------------

    async def _credentials(self, key: GroupKey, ref: RefSnapshot) -> Credentials:
        secret = key.credentials[1] if key.credentials is not None else None
        return await self._cloud.credentials.credentials_for(ref.key.namespace, secret)

    async def _client(self, key: GroupKey, ref: RefSnapshot) -> EmrReader:
        credentials = await self._credentials(key, ref)
        # The workspace ends up in a URL path: checked again here, not only by the CRD.
        endpoints.validate_workspace_id(key.workspace_id)
        return self._cloud.client(credentials, key.region)

    async def _refusal_outdated(self, key: GroupKey, ref: RefSnapshot) -> bool:
        """Whether the group's sweep was refused with a key its Secret no longer holds.

        Checked before the refs are sorted: while the refusal holds, every ref goes to its
        own poll, so no sweep would ever read the Secret to notice the new key."""
        refusal = self._refusals.get(key)
        if refusal is None or self._clock() >= refusal.until:
            return False
        try:
            credentials = await self._credentials(key, ref)
        except (CredentialsError, KubeError):
            return False  # the per-ref polls report it
        return fingerprint(credentials) != refusal.fingerprint

    async def _note_refusal(self, key: GroupKey, ref: RefSnapshot, error: Exception) -> None:
        logger.info(
            "listing %s refs of workspace %s refused (%s); reading them one by one",
            key.kind,
            key.workspace_id,
            type(error).__name__,
        )
        refused = ""
        with contextlib.suppress(CredentialsError, KubeError):
            refused = fingerprint(await self._credentials(key, ref))
        self._refusals[key] = _Refusal(refused, self._clock() + REFUSED_SWEEP_SECONDS)

    # -- per-ref polls --------------------------------------------------------------

    async def _poll_each(self, key: GroupKey, refs: list[RefSnapshot]) -> dict[RefKey, PollOutcome]:
        results: dict[RefKey, PollOutcome] = {}
        pending = iter(refs)

        async def worker() -> None:
            for ref in pending:  # one shared iterator: each ref is taken once
                try:
                    outcome = await self._reconciler(ref)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("poll of %s crashed", ref.key)
                    self._give_back(self._state(ref))
                    continue
                state = self._state(ref)
                state.unverified_since = state.sweep_failed = None
                results[ref.key] = self._after_poll(key, ref, state, outcome)

        await asyncio.gather(*(worker() for _ in range(min(self._gets_per_group, len(refs)))))
        return results

    def _after_poll(
        self, key: GroupKey, ref: RefSnapshot, state: RefSweepState, outcome: PollOutcome
    ) -> PollOutcome:
        now = self._clock()
        self._give_back(state)
        if key.kind == CLUSTER_KIND and not ref.suspended:
            reads = state.nodes
            wrote = outcome.status is not None
            unchanged = 0 if wrote or reads is None else reads.unchanged + 1
            state.nodes = _NodeReads(at=now, unchanged=unchanged)
        if outcome.gone or outcome.next_delay is None:
            return outcome
        return PollOutcome(
            next_delay=self._snap(key, outcome.next_delay, now),
            status=outcome.status,
            resource_version=outcome.resource_version,
            gone=outcome.gone,
        )

    def _give_back(self, state: RefSweepState) -> None:
        if state.refresh_granted:
            state.refresh_granted = False
            self._node_budget.give_back()


def _node_age_key(state: RefSweepState) -> float:
    """Oldest node read first; a cluster whose nodes were never read before all."""
    return -float("inf") if state.nodes is None else state.nodes.at
