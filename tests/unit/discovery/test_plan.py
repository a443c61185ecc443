"""One sync of a set: what is created, what is left alone, the cap, clusters that go."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rayref.api.kinds import CLUSTER_KIND
from rayref.api.refsets import RayClusterRefSetSpec, RayJobRefSetSpec
from rayref.discovery.plan import plan_clusters, plan_jobs
from tests.unit.discovery.support import NOW, SET_UID, WS, cluster, job, ref


def job_set(**fields: Any) -> RayJobRefSetSpec:
    return RayJobRefSetSpec.model_validate({"workspaceId": WS, **fields})


def cluster_set(**fields: Any) -> RayClusterRefSetSpec:
    return RayClusterRefSetSpec.model_validate({"workspaceId": WS, **fields})


def test_matching_jobs_get_refs_newest_first_and_others_none() -> None:
    items = {
        "rj-old": job("rj-old", name="etl-a", age=300),
        "rj-new": job("rj-new", name="etl-b", age=10),
        "rj-other": job("rj-other", name="adhoc"),
    }
    plan = plan_jobs(job_set(selector={"namePrefix": "etl-"}), SET_UID, items, [], now=NOW)
    assert plan.create == ("rj-new", "rj-old")
    assert plan.matched == 2 and not plan.limit_reached


def test_every_selector_field_must_match() -> None:
    spec = job_set(
        selector={"names": ["a", "b"], "statuses": ["Running", "Failed"], "submittedWithin": "1h"}
    )
    items = {
        "rj-1": job("rj-1", name="a", status="Failed"),
        "rj-2": job("rj-2", name="c", status="Failed"),
        "rj-3": job("rj-3", name="b", status="Succeeded"),
        "rj-4": job("rj-4", name="b", status="Running", age=7200),
    }
    assert plan_jobs(spec, SET_UID, items, [], now=NOW).create == ("rj-1",)


def test_tags_are_asked_for_once_then_judged() -> None:
    spec = job_set(selector={"tags": {"team": "data"}})
    items = {"rj-1": job("rj-1"), "rj-2": job("rj-2")}
    first = plan_jobs(spec, SET_UID, items, [], now=NOW)
    assert first.tags_needed == ("rj-1", "rj-2") and first.create == ()
    tags = {"rj-1": {"team": "data", "x": "y"}, "rj-2": {"team": "web"}}
    assert plan_jobs(spec, SET_UID, items, [], now=NOW, tags=tags).create == ("rj-1",)


def test_a_job_already_mirrored_by_any_ref_gets_no_second_ref() -> None:
    items = {"rj-mine": job("rj-mine"), "rj-hand": job("rj-hand"), "rj-new": job("rj-new")}
    refs = [
        ref("rj-mine"),
        ref("rj-hand", owner=None),
        ref("rj-new", owner=None, workspace="w-other"),
    ]
    plan = plan_jobs(job_set(), SET_UID, items, refs, now=NOW)
    assert plan.create == ("rj-new",)
    assert [r.remote_id for r in plan.owned] == ["rj-mine"]


def test_the_cap_counts_the_sets_own_refs_and_reports_the_limit() -> None:
    items = {f"rj-{i}": job(f"rj-{i}", age=i) for i in range(5)}
    refs = [ref("rj-0"), ref("rj-hand-written", owner=None), ref("rj-theirs", owner="other")]
    plan = plan_jobs(job_set(maxRefs=3), SET_UID, items, refs, now=NOW)
    assert plan.create == ("rj-1", "rj-2") and plan.limit_reached
    full = plan_jobs(job_set(maxRefs=1), SET_UID, items, refs, now=NOW)
    assert full.create == () and full.limit_reached


def test_a_finished_job_past_its_ttl_gets_no_ref_but_one_within_it_does() -> None:
    items = {
        "rj-long-ago": job("rj-long-ago", status="Succeeded", ended=600),
        "rj-just-now": job("rj-just-now", status="Failed", ended=5),
    }
    plan = plan_jobs(job_set(ttlSecondsAfterFinished=60), SET_UID, items, [], now=NOW)
    assert plan.create == ("rj-just-now",)
    assert plan_jobs(job_set(), SET_UID, items, [], now=NOW).create == (
        "rj-just-now",
        "rj-long-ago",
    )


def test_active_and_finished_count_the_sets_refs() -> None:
    items = {"rj-1": job("rj-1", status="Succeeded"), "rj-2": job("rj-2")}
    refs = [
        ref("rj-1", phase="Succeeded"),
        ref("rj-2"),
        ref("rj-3", phase=None),
        ref("rj-4", owner=None),
    ]
    plan = plan_jobs(job_set(), SET_UID, items, refs, now=NOW)
    assert (plan.active, plan.finished) == (2, 1)


def test_a_deleting_ref_is_not_counted_as_the_sets() -> None:
    gone = ref("rj-1")
    deleting = type(gone)(**{**gone.__dict__, "deleting": True})
    assert plan_jobs(job_set(), SET_UID, {}, [deleting], now=NOW).owned == ()


def test_a_cluster_ref_goes_after_its_cluster_is_missing_for_the_grace_period() -> None:
    spec = cluster_set(ttlSecondsAfterFinished=300)
    refs = [ref("ray-gone", kind=CLUSTER_KIND), ref("ray-here", kind=CLUSTER_KIND)]
    items = {"ray-here": cluster("ray-here"), "ray-new": cluster("ray-new")}
    first = plan_clusters(spec, SET_UID, items, refs, complete=True, gone_since={}, now=NOW)
    assert first.create == ("ray-new",) and first.delete == ()
    assert first.gone_since == {"ray-gone": NOW} and (first.active, first.finished) == (1, 1)
    later = NOW + timedelta(seconds=300)
    second = plan_clusters(
        spec, SET_UID, items, refs, complete=True, gone_since=first.gone_since, now=later
    )
    assert [r.name for r in second.delete] == ["ray-gone"]


def test_an_incomplete_cluster_listing_decides_no_disappearance() -> None:
    refs = [ref("ray-gone", kind=CLUSTER_KIND)]
    plan = plan_clusters(cluster_set(), SET_UID, {}, refs, complete=False, gone_since={}, now=NOW)
    assert plan.gone_since == {} and plan.delete == ()


def test_a_cluster_back_in_the_list_is_no_longer_gone() -> None:
    refs = [ref("ray-1", kind=CLUSTER_KIND)]
    items = {"ray-1": cluster("ray-1")}
    plan = plan_clusters(
        cluster_set(),
        SET_UID,
        items,
        refs,
        complete=True,
        gone_since={"ray-1": NOW},
        now=NOW + timedelta(days=1),
    )
    assert plan.gone_since == {} and plan.delete == ()


def test_cluster_states_select() -> None:
    items = {"ray-1": cluster("ray-1", state="Running"), "ray-2": cluster("ray-2", state="Stopped")}
    spec = cluster_set(selector={"statuses": ["Running"]})
    plan = plan_clusters(spec, SET_UID, items, [], complete=True, gone_since={}, now=NOW)
    assert plan.create == ("ray-1",) and plan.matched == 1
