"""Slot balancing: every live replica ends with its fair share, a dead one's slots are
taken once their Leases expire, a joining one gets slots from whoever holds too many."""

from __future__ import annotations

from rayref.sharding.balance import Plan, SlotView, fair_share, plan


def _views(holders: list[str], expired: frozenset[str] = frozenset()) -> list[SlotView]:
    return [SlotView(i, h, h in expired) for i, h in enumerate(holders)]


def _settle(names: list[str], slots: int, holders: list[str] | None = None) -> list[str]:
    """Run the replicas' plans in turn until nobody wants to act (a slot is taken only
    when free, as its Lease would enforce)."""
    holders = holders or [""] * slots
    for _ in range(50):
        acted = False
        for name in names:
            step = plan(name, name, _views(holders), names)
            for slot in step.release:
                holders[slot] = ""
                acted = True
            for slot in step.acquire:
                if not holders[slot]:
                    holders[slot] = name
                    acted = True
        if not acted:
            return holders
    raise AssertionError(f"no steady state: {holders}")


def test_fair_share() -> None:
    assert [fair_share(3, m) for m in (0, 1, 2, 3, 4)] == [3, 3, 2, 1, 1]


def test_replicas_starting_together_each_get_one_slot() -> None:
    holders = _settle(["a", "b", "c"], 3)
    assert sorted(holders) == ["a", "b", "c"]


def test_one_replica_holds_every_slot() -> None:
    assert _settle(["a"], 4) == ["a"] * 4


def test_a_live_holders_slot_is_never_taken() -> None:
    step = plan("b", "b", _views(["a", "a", "a"]), ["a", "b"])
    assert step == Plan()  # b waits; a releases its extra slot itself


def test_a_dead_replicas_slot_is_taken_once_its_lease_expired() -> None:
    holders = ["a", "b", "c"]
    before = plan("a", "a", _views(holders), ["a", "b"])
    assert before.idle  # c's Lease still runs: nothing to take yet
    after = [plan(n, n, _views(holders, frozenset({"c"})), ["a", "b"]) for n in ("a", "b")]
    assert [s.acquire for s in after].count((2,)) >= 1
    assert all(s.release == () for s in after)
    holders[2] = "a" if after[0].acquire else "b"
    assert all(plan(n, n, _views(holders), ["a", "b"]).idle for n in ("a", "b"))


def test_a_joining_replica_gets_a_slot_from_the_one_holding_two() -> None:
    holders = _settle(["a", "b", "c"], 3, ["a", "a", "b"])
    assert sorted(holders) == ["a", "b", "c"]


def test_the_released_slots_are_the_least_preferred_and_the_rest_kept() -> None:
    step = plan("a", "a", _views(["a", "a", "a", "a"]), ["a", "b"])
    assert len(step.release) == 2 and not step.acquire
    kept = plan("a", "a", _views(["" if i in step.release else "a" for i in range(4)]), ["a", "b"])
    assert kept.idle


def test_own_member_lease_not_seen_yet_still_counts() -> None:
    # b sees only a's member Lease; it must count itself or it would want every slot.
    step = plan("b", "b", _views(["", "", "", ""]), ["a"])
    assert len(step.acquire) == 2
