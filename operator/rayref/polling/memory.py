"""What the operator remembers of one ref, in one place: `RefMemory`.

The scheduler's registry entry holds it and every `RefSnapshot` of the ref carries it, so
forgetting a deleted ref is one removal (`Scheduler.forget`), and a ref re-created under
the same name starts with nothing remembered. The operator runs 100,000 refs: the object
has slots and every field stays None until a component needs it.

The slots of the events, the connection Secrets and the metrics hold value objects of
their own layers (`kube.events.PostedEvents`, `kube.connection.KnownSecret`,
`observability.sync.SyncTimes`), which reach them through a structural protocol, so
those layers never import polling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rayref.kube.connection import KnownSecret
from rayref.kube.events import PostedEvents
from rayref.observability.sync import SyncTimes

if TYPE_CHECKING:
    from rayref.polling.failure_logs import FailureLogMemory
    from rayref.polling.reconcile import Denial
    from rayref.polling.sweeps import RefSweepState


@dataclass(slots=True)
class RefMemory:
    # The reconcile: the refused credentials and when to try them on the cloud again.
    denial: Denial | None = None
    # The list sweeps: what they remember of the ref between sweeps.
    sweep: RefSweepState | None = None
    # kube.events: the Events posted for the ref (deduplication).
    events: PostedEvents | None = None
    # kube.connection: the cluster's connection Secret as last found or written.
    connection: KnownSecret | None = None
    # observability.metrics: since when the ref is unsynced, when it last synced.
    sync: SyncTimes | None = None
    # polling.failure_logs: the failed job's log was handed to the readers (and tried).
    failure_log: FailureLogMemory | None = None
    # Scheduler.forget: the ref is gone (deleted, or created again under its name). Work
    # that was already running or queued with this memory must not count or write for it
    # again: the sweeps' totals were given back, a queued log read is dropped.
    forgotten: bool = False
