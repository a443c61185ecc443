"""`rayref run` with leader election: a standby waits, the leader runs kopf.

- Standby: serves `/healthz` (ready) and `/metrics`, calls no cloud API and writes
  nothing. Cold (`RAYREF_LEADER_ELECTION_STANDBY=cold`): it watches the Lease and
  nothing else. Warm: kopf runs already, so its watches keep the scheduler's registry
  filled, but the scheduler is held (`Scheduler.hold`) until the Lease is ours; then
  every ref is checked at once without listing them again.
- Leader: runs kopf (`lead`) and renews the Lease beside it. If a renewal does not
  succeed before the renew deadline, the process exits at once (exit code 1) so that
  not one more write leaves it; the kubelet restarts it as a standby. A watchdog thread
  does the same should the event loop itself be stuck past the deadline.
- SIGTERM: kopf stops gracefully (its cleanup stops the scheduler), then the Lease is
  released (empty holder) and a standby takes over without waiting the lease out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rayref.election.elector import Elector
from rayref.replication.process import default_identity as default_identity
from rayref.replication.process import exit_now, replica_place, replica_process
from rayref.replication.watchdog import Watchdog

if TYPE_CHECKING:
    import kopf

    from rayref.controller.settings import OperatorSettings

logger = logging.getLogger("rayref.election")

SIGNAL_AGAIN_SECONDS = 0.2

Lead = Callable[[], Awaitable[None]]
"""Runs the operator (kopf) until it stops: kopf stops gracefully on SIGTERM itself."""


class LeaderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.leader = Gauge(
            "rayref_leader", "1 while this replica holds the leader Lease", registry=registry
        )
        self.transitions = Counter(
            "rayref_leader_transitions",
            "Times this replica became or stopped being the leader",
            registry=registry,
        )

    def leading(self, value: bool) -> None:
        self.leader.set(1 if value else 0)
        self.transitions.inc()


@dataclass
class HealthState:
    identity: str
    role: str = "standby"  # standby, leader, stopping

    def view(self, holder: str) -> dict[str, str]:
        """`/healthz` for both roles: answering at all means the event loop runs
        (liveness); a standby is ready too, it only waits."""
        return {"role": self.role, "identity": self.identity, "leader": holder}


def leader_watchdog(elector: Elector, exit_process: Callable[[int], None]) -> Watchdog:
    """Kills the process if the leader is past its deadline and still running: the
    event loop was blocked, so the elector could not stop it in time."""
    return Watchdog(
        holding=lambda: elector.leading,
        deadline=lambda: elector.deadline,
        slack=elector.timing.margin / 2,
        message="leader Lease not renewed in time and the event loop is stuck",
        exit_process=exit_process,
        name="lease-watchdog",
    )


async def run_with_election(
    elector: Elector,
    lead: Lead,
    *,
    metrics: LeaderMetrics,
    health_port: int,
    exit_process: Callable[[int], None] = exit_now,
    close: Callable[[], Awaitable[None]] | None = None,
    leading: asyncio.Event | None = None,
) -> int:
    """Wait for the Lease, then lead until stopped. Returns the exit code.

    `leading` given: a warm standby. `lead` runs from the start and `leading` is set
    when the Lease is acquired (the operator holds its polling until then)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stopping.set)
    metrics.leader.set(0)
    state = HealthState(elector.identity)
    async with replica_process(health_port, lambda: state.view(elector.holder), close):
        logger.info(
            "%s is a candidate for the leader Lease %s (lease %g s, renew deadline %g s, "
            "retry %g s)",
            elector.identity,
            elector.api,
            elector.timing.lease_duration,
            elector.timing.renew_deadline,
            elector.timing.retry_period,
        )
        return await _campaign(elector, lead, metrics, state, stopping, exit_process, leading)


async def _campaign(
    elector: Elector,
    lead: Lead,
    metrics: LeaderMetrics,
    state: HealthState,
    stopping: asyncio.Event,
    exit_process: Callable[[int], None],
    gate: asyncio.Event | None = None,
) -> int:
    # The renewals' task and the signal's exist before kopf starts: on its stop kopf
    # waits 5 s for every task created after its own start, then cancels it, and a warm
    # standby's kopf starts first (the leader's stop then took 5 s, or it crashed without
    # releasing the Lease).
    acquired = asyncio.Event()
    holding = asyncio.ensure_future(_hold_once_acquired(elector, acquired))
    stop_wait = asyncio.ensure_future(stopping.wait())
    warm = asyncio.ensure_future(lead()) if gate is not None else None
    if not await _stand_by(elector, stop_wait, warm):
        for task in (holding, stop_wait):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return 0 if warm is None or await _stopped_standby(warm) else 1

    state.role = "leader"
    metrics.leading(True)
    watchdog = leader_watchdog(elector, exit_process)
    watchdog.start()
    acquired.set()
    if warm is not None and gate is not None:
        gate.set()  # the warm operator's scheduler starts: every ref is due now
    leading = warm or asyncio.ensure_future(lead())
    try:
        while True:
            waiting: set[asyncio.Future[Any]] = {leading, holding, stop_wait}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if holding.done():
                # Lost (or the renewals were cancelled under us): not one more write.
                # Exiting is the only stop that is immediate; kopf's own stop would let
                # polls run on for a while.
                metrics.leading(False)
                state.role = "stopping"
                reason = "the Lease renewals were cancelled" if holding.cancelled() else None
                logger.error("exiting: %s", reason or holding.result())
                exit_process(1)
                return 1  # only reached when exit_process is a test double
            if leading.done():
                break
            if stopping.is_set():
                # The signal came before kopf put in its own handlers (they replace
                # ours); send it again for kopf, whose graceful stop runs the cleanup
                # that stops the scheduler.
                logger.info("stopping: kopf first, then the Lease is released")
                state.role = "stopping"
                stopping.clear()
                stop_wait = asyncio.ensure_future(stopping.wait())
                asyncio.get_running_loop().call_later(
                    SIGNAL_AGAIN_SECONDS, signal.raise_signal, signal.SIGTERM
                )
    finally:
        stop_wait.cancel()

    # kopf has stopped (SIGTERM, or it failed): nothing writes any more.
    holding.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holding
    watchdog.stop()
    metrics.leading(False)
    await elector.release()
    error = leading.exception()
    if error is not None:
        logger.error("the operator stopped with an error", exc_info=error)
        return 1
    return 0


async def _hold_once_acquired(elector: Elector, acquired: asyncio.Event) -> str:
    await acquired.wait()
    return await elector.hold()


async def _stand_by(
    elector: Elector, stop_wait: asyncio.Future[Any], warm: asyncio.Future[None] | None
) -> bool:
    """Wait for the Lease; False when stopped first (a signal, or the warm operator
    ended: once kopf runs, SIGTERM reaches its handlers instead of ours)."""
    acquiring = asyncio.ensure_future(elector.acquire())
    waiting: set[asyncio.Future[Any]] = {acquiring, stop_wait}
    if warm is not None:
        waiting.add(warm)
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if acquiring.done():
        acquiring.result()
        return True  # a warm operator that ended meanwhile is seen by the leader's loop
    acquiring.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await acquiring
    logger.info("stopped while standing by")
    return False


async def _stopped_standby(warm: asyncio.Future[None]) -> bool:
    """Stop a warm standby's operator (it never polled nor wrote); True if it ended
    cleanly."""
    if not warm.done():
        # The signal came before kopf put in its own handlers: nothing of it needs a
        # graceful stop while it only watches.
        warm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warm
        return True
    if warm.cancelled() or warm.exception() is None:
        return True
    logger.error("the standby's operator stopped with an error", exc_info=warm.exception())
    return False


def run_elected(
    settings: OperatorSettings,
    environ: dict[str, str],
    operator: Callable[[kopf.Memo, asyncio.Event | None], Awaitable[None]],
) -> int:
    """The `rayref run` entry point with election on: `operator(memo, stop_flag)` runs
    kopf (with no liveness endpoint of its own: this module serves `/healthz`). The stop
    flag given is None: kopf stops on SIGTERM by itself, and with a flag it would wait
    5 s for its own waiter task before returning, delaying the release of the Lease."""
    import kopf

    from rayref.election.kube_lease import KubeLeaseAPI, lease_client
    from rayref.observability.metrics import Metrics

    place = replica_place(settings, environ)
    # Served before the election, so that a standby shows rayref_leader 0; kopf's
    # startup takes this same object from the memo instead of building its own.
    metrics = Metrics()
    leader_metrics = LeaderMetrics(metrics.registry)
    metrics.serve(settings.metrics_port)

    async def main() -> int:
        client = lease_client()
        api = KubeLeaseAPI(
            client,
            settings.leader_election_lease_name,
            place.namespace,
            retry_period=place.timing.retry_period,
        )
        elector = Elector(api, place.identity, place.timing)
        memo = kopf.Memo(settings=settings, metrics=metrics)
        leading = asyncio.Event() if settings.leader_election_standby == "warm" else None
        if leading is not None:
            memo["leading"] = leading  # the startup handler holds the scheduler until set
        return await run_with_election(
            elector,
            lambda: operator(memo, None),
            metrics=leader_metrics,
            health_port=settings.health_port,
            close=client.close,
            leading=leading,
        )

    return asyncio.run(main())
