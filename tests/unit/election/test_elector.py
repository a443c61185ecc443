"""The elector loop on a virtual clock against an in-memory Lease."""

from __future__ import annotations

import asyncio

from rayref.election.elector import Elector
from rayref.election.lease import ElectionTiming
from tests.unit.election.fakes import FakeClock, FakeLeaseAPI

TIMING = ElectionTiming(lease_duration=15, renew_deadline=10, retry_period=2)


def elector(api: FakeLeaseAPI, identity: str) -> Elector:
    return Elector(api, identity, TIMING, clock=api.clock, jitter=lambda: 0.0)


async def leading_task(candidate: Elector) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(candidate.acquire())


async def test_a_free_lease_is_created_and_held_at_once() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    candidate = elector(api, "a")
    task = await leading_task(candidate)
    await clock.run_until(1.0, until=task.done)
    assert task.done() and candidate.leading
    assert api.stored is not None and api.stored.holder == "a"
    assert clock.t < 0.1


async def test_a_dead_holder_is_replaced_exactly_one_lease_after_its_last_renewal() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    api.put_external("dead")  # renewed at t=0, never again
    candidate = elector(api, "b")
    task = await leading_task(candidate)
    await clock.run_until(60.0, until=task.done)
    assert candidate.leading and api.stored is not None and api.stored.holder == "b"
    # controller-runtime polls every retry period: 15-17 s. The watch wakes us at expiry.
    assert 15.0 <= clock.t < 15.1
    assert api.stored.transitions == 1


async def test_a_live_holder_keeps_the_lease_and_the_standby_does_not_poll() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    for second in range(0, 120, 2):
        clock.at(second, lambda: api.put_external("alive"))
    candidate = elector(api, "b")
    task = await leading_task(candidate)
    await clock.run_until(119.0)
    assert not task.done() and not candidate.leading
    assert {w.holder for w in api.writes} == {"alive"}
    # One read per renewal seen (woken by the watch), not a tight loop.
    assert api.calls <= 62
    task.cancel()


async def test_a_released_lease_is_taken_over_within_milliseconds() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    api.put_external("leaving")
    clock.at(5.0, lambda: api.put_external("", duration=1))
    candidate = elector(api, "b")
    task = await leading_task(candidate)
    await clock.run_until(60.0, until=task.done)
    assert candidate.leading and 5.0 <= clock.t < 5.1


async def test_two_candidates_never_lead_at_once() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock, latency=0.05)
    first, second = elector(api, "a"), elector(api, "b")

    async def campaign(candidate: Elector) -> None:
        await candidate.acquire()
        await candidate.hold()

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(campaign(first)), loop.create_task(campaign(second))]
    for moment in range(1, 60):
        await clock.run_until(float(moment))
        assert [first.leading, second.leading].count(True) == 1
    assert len({write.holder for write in api.writes}) == 1
    for task in tasks:
        task.cancel()


async def test_a_leader_that_cannot_renew_stops_before_anyone_else_may_start() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader, standby = elector(api, "a"), elector(api, "b")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    waiting = await leading_task(standby)
    await clock.run_until(20.0)
    assert holding.done() is False and not waiting.done()  # renewals keep it
    # Partition: the leader's requests hang (each until its timeout); the standby's
    # reads still work. Modelled by making the leader's own calls hang.
    real_replace = api.replace

    async def hanging_replace(record, *, within):  # type: ignore[no-untyped-def]
        if record.holder == "a":
            await clock.sleep(within)
            from rayref.election.elector import LeaseUnavailable

            raise LeaseUnavailable("partitioned")
        return await real_replace(record, within=within)

    api.replace = hanging_replace  # type: ignore[method-assign]
    await clock.run_until(60.0, until=holding.done)
    stepped_down = clock.t
    assert "renew deadline" in holding.result()
    last_renewal = max(write.at for write in api.writes if write.holder == "a")
    assert stepped_down <= last_renewal + TIMING.renew_deadline
    await clock.run_until(60.0, until=waiting.done)
    taken_over = clock.t
    assert standby.leading and not leader.leading
    assert taken_over - stepped_down >= TIMING.margin - 0.1


async def test_a_short_outage_inside_the_deadline_keeps_the_leader() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader = elector(api, "a")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    clock.at(10.0, lambda: setattr(api, "mode", "refuse"))
    clock.at(16.0, lambda: setattr(api, "mode", "up"))
    await clock.run_until(60.0)
    assert not holding.done() and leader.leading
    holding.cancel()


async def test_an_api_server_that_hangs_cannot_carry_the_leader_past_its_deadline() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader = elector(api, "a")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    await clock.run_until(7.0)
    api.mode = "hang"
    last = leader.renewed_at
    await clock.run_until(60.0, until=holding.done)
    assert holding.done() and clock.t <= last + TIMING.renew_deadline + 1e-9


async def test_another_holder_in_the_lease_ends_the_leadership_at_once() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader = elector(api, "a")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    clock.at(5.0, lambda: api.put_external("usurper"))
    await clock.run_until(60.0, until=holding.done)
    assert "usurper" in holding.result() and clock.t < 6.1


async def test_release_lets_the_standby_take_over_without_waiting_the_lease_out() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader, standby = elector(api, "a"), elector(api, "b")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    waiting = await leading_task(standby)
    await clock.run_until(9.0)
    holding.cancel()
    released_at = clock.t
    release = asyncio.get_running_loop().create_task(leader.release())
    await clock.run_until(60.0, until=lambda: release.done() and waiting.done())
    assert release.result() is True
    assert standby.leading and clock.t - released_at < 0.1
    assert api.stored is not None and api.stored.holder == "b"


async def test_release_after_losing_writes_nothing() -> None:
    clock = FakeClock()
    api = FakeLeaseAPI(clock)
    leader = elector(api, "a")
    await clock.run_until(1.0, until=(await leading_task(leader)).done)
    holding = asyncio.get_running_loop().create_task(leader.hold())
    clock.at(3.0, lambda: api.put_external("other"))
    await clock.run_until(60.0, until=holding.done)
    writes = len(api.writes)
    assert await leader.release() is False
    assert len(api.writes) == writes
