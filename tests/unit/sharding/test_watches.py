"""Which refs a sharded replica follows, from the events of its slots' watches."""

from __future__ import annotations

from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.api.specs import parse_spec
from rayref.kube.client import KubeClient
from rayref.sharding.ownership import Ownership, group_key_of
from rayref.sharding.slots import slot_of
from rayref.sharding.watches import SlotWatches, slot_labels

SLOTS = 8


def job(name: str, secret: str, slot: int | None, version: str = "1") -> dict[str, Any]:
    labels = {} if slot is None else slot_labels(slot, SLOTS)
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": version,
            "labels": labels,
        },
        "spec": {
            "workspaceId": "w-abc",
            "submissionId": "rj-1",
            "credentialsSecretRef": {"name": secret},
        },
    }


def slot_for(secret: str) -> int:
    spec = parse_spec(JOB_KIND, job("x", secret, None)["spec"])
    return slot_of(group_key_of("ns", "x", spec, "cn-hangzhou"), SLOTS)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, type_: str, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((type_, obj["metadata"]["name"]))


def watches(held: set[int]) -> tuple[SlotWatches, Recorder]:
    ownership = Ownership(SLOTS, "cn-hangzhou")
    for slot in held:
        ownership.gain(slot)
    sink = Recorder()
    # never started: the client is not called
    return SlotWatches(KubeClient.__new__(KubeClient), ownership, sink), sink


def two_secrets_in_different_slots() -> tuple[str, str]:
    names = [f"creds-{i}" for i in range(40)]
    first = names[0]
    second = next(n for n in names if slot_for(n) != slot_for(first))
    return first, second


def test_a_ref_moved_between_two_held_slots_stays_followed_whatever_the_event_order() -> None:
    old, new = two_secrets_in_different_slots()
    i, j = slot_for(old), slot_for(new)
    slot_watches, sink = watches({i, j})
    slot_watches._slot_event(i, JOB_KIND, "ADDED", job("a", old, i))
    # relabelled after a spec change: the new slot's watch may speak first
    slot_watches._slot_event(j, JOB_KIND, "ADDED", job("a", new, j, "3"))
    slot_watches._slot_event(i, JOB_KIND, "DELETED", job("a", new, j, "3"))
    assert sink.events == [("ADDED", "a"), ("ADDED", "a")]
    assert slot_watches.following() == 1
    # and dropping the old slot does not drop it either
    slot_watches._dropped(i)
    assert slot_watches.following() == 1
    slot_watches._dropped(j)
    assert slot_watches.following() == 0
    assert sink.events[-1] == ("DELETED", "a")


def test_a_spec_that_moves_the_ref_asks_the_current_holder_to_relabel_it() -> None:
    old, new = two_secrets_in_different_slots()
    i, j = slot_for(old), slot_for(new)
    slot_watches, _ = watches({i})
    slot_watches._slot_event(i, JOB_KIND, "MODIFIED", job("a", new, i, "5"))
    queued = slot_watches._labelling[(JOB_KIND, "ns", "a")]
    assert (queued.slot, queued.writer, queued.resource_version) == (j, i, "5")


async def unlabelled_listing(slot_watches: SlotWatches, items: list[dict[str, Any]]) -> None:
    await slot_watches._unlabelled_page(JOB_KIND, "", items, True)
    slot_watches._unlabelled_listed(JOB_KIND, "")


async def test_unlabelled_refs_are_labelled_by_the_holder_of_their_slot_only() -> None:
    old, new = two_secrets_in_different_slots()
    i = slot_for(old)
    slot_watches, _ = watches({i})
    await unlabelled_listing(slot_watches, [job("mine", old, None), job("theirs", new, None)])
    assert set(slot_watches._queued) == {(JOB_KIND, "ns", "mine")}
    assert set(slot_watches._labelling) == {(JOB_KIND, "ns", "mine"), (JOB_KIND, "ns", "theirs")}


async def test_a_relist_of_unlabelled_refs_keeps_the_relabels_a_slot_asked_for() -> None:
    old, new = two_secrets_in_different_slots()
    i = slot_for(old)
    slot_watches, _ = watches({i})
    slot_watches._slot_event(i, JOB_KIND, "MODIFIED", job("moved", new, i, "5"))
    await unlabelled_listing(slot_watches, [job("fresh", old, None)])
    assert set(slot_watches._labelling) == {(JOB_KIND, "ns", "moved"), (JOB_KIND, "ns", "fresh")}
    await unlabelled_listing(slot_watches, [])
    assert set(slot_watches._labelling) == {(JOB_KIND, "ns", "moved")}


async def test_a_relist_drops_the_refs_it_no_longer_shows_and_keeps_the_others() -> None:
    old, _ = two_secrets_in_different_slots()
    i = slot_for(old)
    slot_watches, sink = watches({i})
    items = [job(f"j{n}", old, i) for n in range(250)]
    await slot_watches._slot_page(i, JOB_KIND, "", items[:200], True)
    await slot_watches._slot_page(i, JOB_KIND, "", items[200:], False)
    slot_watches._slot_listed(i, JOB_KIND, "")
    assert slot_watches.following() == 250
    # listed again (after a 410) without j0: gone while the watch was down
    await slot_watches._slot_page(i, JOB_KIND, "", items[1:], True)
    slot_watches._slot_listed(i, JOB_KIND, "")
    assert slot_watches.following() == 249
    assert sink.events[-1] == ("DELETED", "j0")
