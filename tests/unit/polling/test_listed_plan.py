"""The plan for the refs of one sweep (`listings.plan_listed`): which are served by the
sweep, which need a Get, which wait for nodes, which are stale or failing."""

from __future__ import annotations

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import InvalidSpec, parse_spec
from rayref.polling.listings import Judgement, ListedPlan, Sighting, Verdict, plan_listed
from rayref.polling.refs import RefKey, RefSnapshot


def ref(name: str, kind: str = JOB_KIND) -> RefSnapshot:
    remote = {"submissionId": f"rj-{name}"} if kind == JOB_KIND else {"clusterId": f"ray-{name}"}
    spec = parse_spec(kind, {"workspaceId": "w-d2d82aa09155", **remote})
    assert not isinstance(spec, InvalidSpec), spec
    return RefSnapshot(RefKey(kind, "team-a", name), f"uid-{name}", 1, spec, {}, "100")


def unchanged(
    name: str, mark: int = 7, *, nodes_due: bool = False, node_age: float = 0.0
) -> Sighting:
    judgement = Judgement(Verdict.UNCHANGED, mark)
    return Sighting(
        ref(name), listed=True, judgement=judgement, nodes_due=nodes_due, node_age=node_age
    )


def judged(name: str, verdict: Verdict) -> Sighting:
    return Sighting(ref(name), listed=True, judgement=Judgement(verdict, 3))


def names(refs: tuple[RefSnapshot, ...]) -> list[str]:
    return [each.key.name for each in refs]


def test_matching_items_are_served_by_the_sweep_and_remembered() -> None:
    plan = plan_listed([unchanged("a", 1), unchanged("b", 2)], sweep_failed=False)
    assert names(plan.unchanged) == ["a", "b"]
    assert plan.reads == ()
    assert [(each.key.name, mark) for each, mark in plan.remember] == [("a", 1), ("b", 2)]
    assert [verdict for _, verdict in plan.counted] == [Verdict.UNCHANGED] * 2


def test_changed_and_missing_items_need_a_get_in_their_order() -> None:
    sightings = [
        judged("a", Verdict.CHANGED),
        unchanged("b"),
        judged("c", Verdict.MISSING),
    ]
    plan = plan_listed(sightings, sweep_failed=False)
    assert names(plan.reads) == ["a", "c"]
    assert names(plan.unchanged) == ["b"]
    assert [each.key.name for each, _ in plan.remember] == ["b"]
    assert [(each.key.name, v) for each, v in plan.counted] == [
        ("a", Verdict.CHANGED),
        ("b", Verdict.UNCHANGED),
        ("c", Verdict.MISSING),
    ]


def test_a_ref_no_sweep_vouches_for_is_read_when_the_sweep_worked() -> None:
    plan = plan_listed([Sighting(ref("a"), listed=False)], sweep_failed=False)
    assert names(plan.reads) == ["a"]
    assert plan.verified == () and plan.stale == () and plan.failed == ()


def test_a_failed_sweep_leaves_refs_stale_until_they_fail_for_an_interval() -> None:
    sightings = [Sighting(ref("a"), listed=False), Sighting(ref("b"), listed=False, failing=True)]
    plan = plan_listed(sightings, sweep_failed=True)
    assert names(plan.stale) == ["a"]
    assert names(plan.failed) == ["b"]
    assert plan.reads == () and plan.unchanged == ()


def test_a_status_showing_failed_sweeps_is_read_once_the_sweep_vouches_again() -> None:
    plan = plan_listed(
        [Sighting(ref("a"), listed=True, after_failed_sweep=True)], sweep_failed=False
    )
    assert names(plan.reads) == ["a"]
    assert names(plan.verified) == ["a"]
    assert plan.counted == ()  # not judged: nothing to count


def test_only_listed_refs_are_verified() -> None:
    sightings = [unchanged("a"), Sighting(ref("b"), listed=False), judged("c", Verdict.CHANGED)]
    assert names(plan_listed(sightings, sweep_failed=True).verified) == ["a", "c"]


def test_node_refreshes_come_oldest_first_and_are_not_served_or_counted() -> None:
    sightings = [
        unchanged("new", nodes_due=True, node_age=50.0),
        unchanged("old", nodes_due=True, node_age=10.0),
        unchanged("never", nodes_due=True, node_age=-float("inf")),
        unchanged("calm"),
    ]
    plan = plan_listed(sightings, sweep_failed=False)
    assert names(plan.node_refreshes) == ["never", "old", "new"]
    assert names(plan.unchanged) == ["calm"]
    assert plan.reads == ()
    assert [each.key.name for each, _ in plan.counted] == ["calm"]
    # their items match: remembered all the same
    assert len(plan.remember) == 4


def test_a_changed_cluster_is_read_not_refreshed() -> None:
    changed = Sighting(
        ref("a", CLUSTER_KIND),
        listed=True,
        judgement=Judgement(Verdict.CHANGED, 1),
        nodes_due=True,
    )
    plan = plan_listed([changed], sweep_failed=False)
    assert names(plan.reads) == ["a"]
    assert plan.node_refreshes == ()


def test_no_refs_no_work() -> None:
    assert plan_listed([], sweep_failed=True) == ListedPlan()
