"""Groups to slots: stable, spread evenly, and moved as little as possible on a resize."""

from __future__ import annotations

from collections import Counter

import pytest

from rayref.sharding.slots import ShardKey, jump_hash, slot_lease_name, slot_of


def _keys(count: int) -> list[ShardKey]:
    return [
        ShardKey("cn-hangzhou", ("team-a", "emr") if i % 3 else None, f"w-{i:016x}")
        for i in range(count)
    ]


def test_the_same_group_lands_in_the_same_slot_in_every_process() -> None:
    # Pinned values: a change of the hash would re-home every workspace of every
    # sharded install on upgrade, so it must be a decision, not an accident. (Python's
    # own hash() is salted per process and would differ between replicas.)
    plain = ShardKey("cn-hangzhou", None, "w-0123456789abcdef")
    with_secret = ShardKey("cn-shanghai", ("team-a", "emr"), "w-0123456789abcdef")
    assert [slot_of(plain, n) for n in (1, 2, 3, 10)] == [0, 0, 2, 5]
    assert [slot_of(with_secret, n) for n in (1, 2, 3, 10)] == [0, 1, 2, 2]
    assert [jump_hash(k, 10) for k in (0, 1, 2, 3, 2**63)] == [0, 6, 6, 8, 5]


def test_slots_are_spread_evenly() -> None:
    counts = Counter(slot_of(key, 3) for key in _keys(3000))
    assert set(counts) == {0, 1, 2}
    assert all(800 <= c <= 1200 for c in counts.values()), counts


def test_growing_the_slots_moves_only_the_groups_of_the_new_slot() -> None:
    keys = _keys(2000)
    before = {key: slot_of(key, 3) for key in keys}
    after = {key: slot_of(key, 4) for key in keys}
    moved = [key for key in keys if before[key] != after[key]]
    assert all(after[key] == 3 for key in moved)
    assert 350 <= len(moved) <= 650  # about a quarter


def test_kind_is_not_part_of_the_key_and_credentials_are() -> None:
    plain = ShardKey("cn-hangzhou", None, "w-1")
    keys = [ShardKey("cn-hangzhou", ("ns", f"s{i}"), "w-1") for i in range(64)]
    assert any(slot_of(key, 8) != slot_of(plain, 8) for key in keys)
    # "\x00"-joined, so no two different keys share a text
    assert ShardKey("a", ("b", "c"), "d").text() != ShardKey("a", ("bc", ""), "d").text()


@pytest.mark.parametrize("slots", [0, -1, 1025])
def test_slot_count_out_of_range_is_refused(slots: int) -> None:
    with pytest.raises(ValueError, match="slots"):
        slot_of(ShardKey("cn-hangzhou", None, "w-1"), slots)


def test_lease_names() -> None:
    assert slot_lease_name("rayref-operator", 2) == "rayref-operator-shard-2"
