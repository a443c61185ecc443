"""What the refs' own watches hand the scheduler, from their pages and events."""

from __future__ import annotations

import asyncio
from typing import Any

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.kube.client import KubeClient
from rayref.kube.ref_watches import HANDLED_BETWEEN_YIELDS, RefWatches, collection_path


def ref(name: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "uid": f"uid-{name}"}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def __call__(self, type_: str, kind: str, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        self.events.append((type_, kind, metadata["name"], metadata["uid"]))


def watches(namespaces: tuple[str, ...] = ()) -> tuple[RefWatches, Recorder]:
    sink = Recorder()
    # never started: the client is not called
    return RefWatches(KubeClient.__new__(KubeClient), sink, namespaces=namespaces), sink


def list_again(
    refs: RefWatches, kind: str, namespace: str, pages: list[list[dict[str, Any]]]
) -> None:
    async def listing() -> None:
        for index, items in enumerate(pages):
            await refs._page(kind, namespace, items, index == 0)
        refs._listed(kind, namespace)

    asyncio.run(listing())


def test_a_ref_deleted_while_the_watch_was_down_is_forgotten_when_listed_again() -> None:
    refs, sink = watches()
    list_again(refs, JOB_KIND, "", [[ref("a"), ref("b")], [ref("c")]])
    assert [event[:3] for event in sink.events] == [
        ("ADDED", JOB_KIND, "a"),
        ("ADDED", JOB_KIND, "b"),
        ("ADDED", JOB_KIND, "c"),
    ]
    sink.events.clear()
    # the watch's version expired (410); "b" was deleted meanwhile
    list_again(refs, JOB_KIND, "", [[ref("a")], [ref("c")]])
    assert sink.events[-1] == ("DELETED", JOB_KIND, "b", "uid-b")
    assert [event[0] for event in sink.events].count("DELETED") == 1
    assert refs.following() == 2


def test_a_listing_of_one_kind_or_namespace_leaves_the_others_alone() -> None:
    refs, sink = watches(("one", "two"))
    list_again(refs, JOB_KIND, "one", [[ref("a", "one")]])
    list_again(refs, JOB_KIND, "two", [[ref("b", "two")]])
    list_again(refs, CLUSTER_KIND, "one", [[ref("c", "one")]])
    sink.events.clear()
    list_again(refs, JOB_KIND, "one", [[]])
    assert sink.events == [("DELETED", JOB_KIND, "a", "uid-a")]
    assert refs.following() == 2


def test_watch_events_pass_through_and_a_deletion_is_not_reported_again_by_a_listing() -> None:
    refs, sink = watches()
    refs._event(JOB_KIND, "ADDED", ref("a"))
    refs._event(JOB_KIND, "MODIFIED", ref("a"))
    refs._event(JOB_KIND, "DELETED", ref("a"))
    refs._event(JOB_KIND, "ADDED", {"metadata": {"name": "no-namespace"}})
    list_again(refs, JOB_KIND, "", [[]])
    assert [event[0] for event in sink.events] == ["ADDED", "MODIFIED", "DELETED"]
    assert refs.following() == 0


def test_a_long_page_gives_way_to_the_event_loop() -> None:
    refs, _ = watches()
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def run() -> None:
        task = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        start = ticks
        items = [ref(f"r{index}") for index in range(5 * HANDLED_BETWEEN_YIELDS)]
        await refs._page(JOB_KIND, "", items, True)
        task.cancel()
        assert ticks - start >= 4

    asyncio.run(run())


def test_paths_name_the_namespace_or_every_namespace() -> None:
    assert collection_path(JOB_KIND, "").endswith("/rayjobrefs")
    assert "/namespaces/team-a/rayclusterrefs" in collection_path(CLUSTER_KIND, "team-a")
