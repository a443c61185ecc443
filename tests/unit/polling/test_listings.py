"""Batching decisions: which refs a list item vouches for, and which need a Get."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rayref.api.kinds import CLUSTER_KIND, JOB_KIND
from rayref.api.specs import InvalidSpec, parse_spec
from rayref.emr.models import RayClusterSummary, RayJobSummary
from rayref.mirror.cluster import cluster_status
from rayref.mirror.failure import sync_failure
from rayref.mirror.job import job_status
from rayref.mirror.times import epoch_ms
from rayref.polling import listings as batching
from rayref.polling.listings import ClusterListing, JobListing, Verdict
from rayref.polling.refs import RefKey, RefSnapshot
from tests.fixtures.paths import FIXTURES_DIR
from tests.unit.mirror.remotes import DASHBOARD_URL, at, cluster, cluster_body, job, job_body

JOB_SUMMARY_KEYS = (
    "submissionId",
    "name",
    "status",
    "clusterState",
    "submitTime",
    "startTime",
    "endTime",
    "duration",
    "cuHours",
    "dashboardUrl",
    "creatorName",
    "resourceQueue",
)
CLUSTER_GET_ONLY_KEYS = ("instances", "submitToken", "jobUrl", "jobUrlInner", "volumeIds")


def job_summary(**changes: Any) -> RayJobSummary:
    body = job_body(**changes)
    return RayJobSummary.model_validate({k: body[k] for k in JOB_SUMMARY_KEYS if k in body})


def cluster_summary(**changes: Any) -> RayClusterSummary:
    body = cluster_body(**changes)
    return RayClusterSummary.model_validate(
        {k: v for k, v in body.items() if k not in CLUSTER_GET_ONLY_KEYS}
    )


def ref(
    kind: str = JOB_KIND,
    *,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    namespace: str = "team-a",
    resource_version: str = "100",
    **spec: Any,
) -> RefSnapshot:
    remote = {"submissionId": "rj-test"} if kind == JOB_KIND else {"clusterId": "ray-test"}
    base = {"workspaceId": "w-d2d82aa09155", "credentialsSecretRef": {"name": "creds"}, **remote}
    base.update(spec)
    parsed = parse_spec(kind, base)
    assert not isinstance(parsed, InvalidSpec), parsed
    return RefSnapshot(
        key=RefKey(kind, namespace, "r"),
        uid="uid-1",
        generation=generation,
        spec=parsed,
        status=status or {},
        resource_version=resource_version,
    )


def job_ref_read_from(**changes: Any) -> RefSnapshot:
    """A RayJobRef whose status is what the operator wrote after a GetRayJob."""
    status = job_status(job(**changes), None, generation=1, now=at(0)).status
    return ref(status=status)


def cluster_ref_read_from(**changes: Any) -> RefSnapshot:
    status = cluster_status(cluster(**changes), None, generation=1, now=at(0)).status
    return ref(CLUSTER_KIND, status=status)


NOW = at(60)


# ---------------------------------------------------------------- groups


def allowed(namespace: str) -> bool:
    return namespace in {"team-a", "team-b"}


def test_refs_of_one_workspace_and_secret_share_a_group() -> None:
    assert batching.group_key(ref(), "cn-hangzhou", allowed) == batching.group_key(
        ref(submissionId="rj-other"), "cn-hangzhou", allowed
    )


@pytest.mark.parametrize(
    "other",
    [
        ref(workspaceId="w-000000000001"),
        ref(regionId="cn-shanghai"),
        ref(credentialsSecretRef={"name": "other"}),
        ref(namespace="team-b"),  # same Secret name, another namespace: other keys
        ref(CLUSTER_KIND),
    ],
)
def test_another_workspace_region_secret_or_kind_is_another_group(other: RefSnapshot) -> None:
    assert batching.group_key(ref(), "cn-hangzhou", allowed) != batching.group_key(
        other, "cn-hangzhou", allowed
    )


def test_operator_wide_credentials_group_across_the_allowed_namespaces() -> None:
    first = ref(namespace="team-a", credentialsSecretRef=None)
    second = ref(namespace="team-b", credentialsSecretRef=None)
    key = batching.group_key(first, "cn-hangzhou", allowed)
    assert key == batching.group_key(second, "cn-hangzhou", allowed)
    assert key is not None
    assert key.credentials is None
    assert key.region == "cn-hangzhou"


def test_a_namespace_outside_the_allow_list_never_shares_the_operator_wide_group() -> None:
    inside = batching.group_key(ref(namespace="team-a", credentialsSecretRef=None), "r", allowed)
    outside = ref(namespace="team-x", credentialsSecretRef=None)
    key = batching.group_key(outside, "r", allowed)
    assert key is not None and key != inside
    assert key.credentials == ("team-x", "")
    # nor the group of a Secret that happens to have an empty name in that namespace
    assert key != batching.group_key(ref(namespace="team-x"), "r", allowed)


# ---------------------------------------------------------------- before listing


def test_a_ref_never_read_needs_a_get() -> None:
    assert batching.needs_read_before_listing(ref()) is Verdict.NEW


def test_a_ref_read_for_its_generation_can_be_listed() -> None:
    assert batching.needs_read_before_listing(job_ref_read_from()) is None
    assert batching.needs_read_before_listing(cluster_ref_read_from()) is None


def test_a_changed_spec_needs_a_get() -> None:
    read = job_ref_read_from()
    changed = RefSnapshot(read.key, read.uid, 2, read.spec, read.status, read.resource_version)
    assert batching.needs_read_before_listing(changed) is Verdict.NEW


def test_a_ref_whose_last_read_failed_needs_a_get() -> None:
    read = job_ref_read_from()
    failed = sync_failure(
        JOB_KIND, read.status, TimeoutError("boom"), generation=1, now=at(30)
    ).status
    assert batching.needs_read_before_listing(ref(status=failed)) is Verdict.NEW


def test_a_ref_whose_sweeps_failed_can_still_be_listed_but_not_after_a_spec_change() -> None:
    read = job_ref_read_from()
    failed = sync_failure(
        JOB_KIND, read.status, TimeoutError("boom"), generation=1, now=at(30)
    ).status
    assert batching.needs_read_before_listing(ref(status=failed), failed_sweep=True) is None
    changed = RefSnapshot(read.key, read.uid, 2, read.spec, failed, read.resource_version)
    assert batching.needs_read_before_listing(changed, failed_sweep=True) is Verdict.NEW


def test_a_job_without_a_submit_time_cannot_be_placed_in_a_window() -> None:
    read = job_ref_read_from(submitTime=None)
    assert "submitTime" not in read.status
    assert batching.needs_read_before_listing(read) is Verdict.NEW


# ---------------------------------------------------------------- judging list items


def test_a_job_item_matching_the_status_needs_nothing() -> None:
    judgement = batching.judge(job_ref_read_from(), job_summary(), remembered=None, now=NOW)
    assert judgement.verdict is Verdict.UNCHANGED
    assert judgement.fingerprint is not None


@pytest.mark.parametrize(
    "change",
    [
        {"status": "Succeeded"},
        {"clusterState": "Deleted"},
        {"endTime": 1749000000000},
        {"duration": 999},
        {"cuHours": 12.5},
        {"name": "renamed"},
    ],
)
def test_a_job_item_that_differs_needs_a_get(change: dict[str, Any]) -> None:
    judgement = batching.judge(job_ref_read_from(), job_summary(**change), remembered=None, now=NOW)
    assert judgement.verdict is Verdict.CHANGED


def test_a_new_dashboard_token_is_no_change() -> None:
    read = job_ref_read_from(dashboardUrl=DASHBOARD_URL)
    rotated = DASHBOARD_URL.replace("dash-7f3e9c1a-secret", "another-token")
    judgement = batching.judge(read, job_summary(dashboardUrl=rotated), remembered=None, now=NOW)
    assert judgement.verdict is Verdict.UNCHANGED


def test_a_job_absent_from_a_list_that_covers_it_needs_a_get() -> None:
    assert batching.judge(job_ref_read_from(), None, remembered=None, now=NOW).verdict is (
        Verdict.MISSING
    )


def test_a_remembered_match_for_the_same_status_version_is_trusted() -> None:
    # An item the list shows differently from the Get (a field the status maps
    # otherwise) was matched before: the same item against the same status version is
    # not judged again, a new status version is.
    read = job_ref_read_from()
    item = job_summary(name="list-spelling")
    first = batching.judge(read, item, remembered=None, now=NOW)
    assert first.verdict is Verdict.CHANGED
    assert first.fingerprint is not None
    memo = (read.resource_version, first.fingerprint)
    assert batching.judge(read, item, remembered=memo, now=NOW).verdict is Verdict.UNCHANGED
    newer = RefSnapshot(read.key, read.uid, 1, read.spec, read.status, "101")
    assert batching.judge(newer, item, remembered=memo, now=NOW).verdict is Verdict.CHANGED


def test_a_cluster_item_without_nodes_matches_a_status_with_nodes() -> None:
    read = cluster_ref_read_from()
    assert read.status.get("instances")
    judgement = batching.judge(read, cluster_summary(), remembered=None, now=NOW)
    assert judgement.verdict is Verdict.UNCHANGED


def test_a_cluster_item_with_the_lists_fewer_node_keys_matches_the_status_of_a_get() -> None:
    """ListRayCluster items carry fewer node-spec keys than GetRayCluster (no engine
    version, no GCS fault-tolerance flag: the SDK's list models know none): the example
    list item of tests/data is the same cluster as the example Get answer."""
    read = cluster_ref_read_from()
    assert read.status["headSpec"]["gftEnabled"] is True
    listed = json.loads((FIXTURES_DIR / "list-ray-cluster.json").read_text())["rayClusters"][0]
    item = RayClusterSummary.model_validate(listed)
    assert item.head_spec is not None and item.head_spec.gft_enabled is None
    judgement = batching.judge(read, item, remembered=None, now=NOW)
    assert judgement.verdict is Verdict.UNCHANGED
    listed["workerSpec"][0]["replica"] = 3
    moved = RayClusterSummary.model_validate(listed)
    assert batching.judge(read, moved, remembered=None, now=NOW).verdict is Verdict.CHANGED


@pytest.mark.parametrize("change", [{"state": "Stopping"}, {"message": "quota"}, {"name": "x"}])
def test_a_cluster_item_that_differs_needs_a_get(change: dict[str, Any]) -> None:
    judgement = batching.judge(
        cluster_ref_read_from(), cluster_summary(**change), remembered=None, now=NOW
    )
    assert judgement.verdict is Verdict.CHANGED


@pytest.mark.parametrize(
    ("state", "nodes"), [("Starting", True), ("Running", True), ("Stopped", False)]
)
def test_nodes_matter_while_a_cluster_starts_or_runs(state: str, nodes: bool) -> None:
    read = cluster_ref_read_from(state=state)
    assert batching.shows_nodes(cluster_summary(state=state), read.status) is nodes


# ---------------------------------------------------------------- windows and listings


def test_a_window_spans_exactly_the_jobs_it_must_show() -> None:
    assert batching.job_window([5_000, 1_000, 3_000]) == (1_000, 5_000)
    assert batching.job_window([20_000]) == (20_000, 20_000)
    with pytest.raises(ValueError):
        batching.job_window([])


def _item(submission_id: str, submit_ms: int) -> RayJobSummary:
    return RayJobSummary.model_validate({"submissionId": submission_id, "submitTime": submit_ms})


def test_a_complete_listing_covers_its_whole_window() -> None:
    listing = JobListing(low=1_000, high=9_000, taken_at=0.0)
    listing.add_page([_item("rj-b", 8_000), _item("rj-a", 5_000)], last=False)
    listing.add_page([_item("rj-c", 4_000)], last=True)
    assert listing.complete
    assert listing.covers(1_000) and listing.covers(9_000)
    assert not listing.covers(999) and not listing.covers(9_001)
    assert set(listing.items) == {"rj-a", "rj-b", "rj-c"}


def test_an_unfinished_listing_covers_only_what_its_pages_passed() -> None:
    listing = JobListing(low=1_000, high=9_000, taken_at=0.0)
    assert not listing.covers(8_000)
    listing.add_page([_item("rj-b", 8_000), _item("rj-a", 5_000)], last=False)
    assert not listing.complete
    # a job submitted in the same millisecond as the page's oldest may be on the next page
    assert not listing.covers(5_000)
    assert listing.covers(5_001) and listing.covers(9_000)


def test_a_cluster_listing_vouches_for_absence_only_when_complete() -> None:
    listing = ClusterListing(taken_at=0.0)
    listing.add_page([cluster_summary(clusterId="ray-a")], last=False)
    assert not listing.complete and "ray-a" in listing.items
    listing.add_page([], last=True)
    assert listing.complete


def test_status_times_read_back_as_epoch_milliseconds() -> None:
    moment = datetime(2026, 6, 1, 8, 0, 0, 123000, tzinfo=UTC)
    assert epoch_ms("2026-06-01T08:00:00.123Z") == int(moment.timestamp() * 1000)
    assert epoch_ms("not a time") is None
    assert epoch_ms(None) is None


@pytest.mark.parametrize(("value", "seconds"), [(None, 30.0), (60, 60.0)])
def test_poll_interval_from_the_spec(value: object, seconds: float) -> None:
    extra: dict[str, Any] = {} if value is None else {"pollIntervalSeconds": value}
    assert ref(**extra).interval == seconds


@pytest.mark.parametrize("value", [1, "x", 86401])
def test_an_unreadable_poll_interval_is_an_invalid_spec_naming_the_field(value: object) -> None:
    """The CRD refuses these; one stored around it is reported, polled at the default."""
    spec = {"workspaceId": "w-d2d82aa09155", "submissionId": "rj-x", "pollIntervalSeconds": value}
    parsed = parse_spec(JOB_KIND, spec)
    assert isinstance(parsed, InvalidSpec)
    assert "spec.pollIntervalSeconds" in parsed.message
    snapshot = RefSnapshot(RefKey(JOB_KIND, "ns", "r"), "uid", 1, parsed, {}, "1")
    assert snapshot.interval == 30.0


def test_a_list_item_read_as_a_remote_object_has_the_defaults_validation_gives() -> None:
    """Judging builds the remote object from a list item without validating it again;
    the fields a list does not carry must come out as a validated object has them (an
    empty list, not a list shared between objects)."""
    from rayref.emr.models import RayCluster, RayJob
    from rayref.polling.listings import _cluster_from, _job_from

    job = RayJobSummary.model_validate({"submissionId": "rj-1", "status": "Running"})
    built, validated = _job_from(job), RayJob.model_validate(job.model_dump(by_alias=True))
    assert built.model_dump() == validated.model_dump()
    cluster = RayClusterSummary.model_validate({"clusterId": "ray-1", "state": "Running"})
    made = [_cluster_from(cluster) for _ in range(2)]
    assert (
        made[0].model_dump()
        == RayCluster.model_validate(cluster.model_dump(by_alias=True)).model_dump()
    )
    assert made[0].instances is not made[1].instances
