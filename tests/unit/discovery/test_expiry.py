"""TTL decisions on a given clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rayref.api.kinds import JOB_KIND
from rayref.api.models import TTL_MAX
from rayref.api.refsets import RayJobSelector
from rayref.discovery.expiry import (
    EARLIEST,
    LATEST,
    cluster_gone_expired,
    expired,
    job_expires_at,
    shifted,
)
from rayref.discovery.refs import ref_info
from rayref.discovery.selector import submitted_after
from tests.unit.discovery.support import NOW, ref


def test_a_finished_ref_expires_its_ttl_after_the_end() -> None:
    finished = ref("rj-1", phase="Succeeded", ended=30, ttl=60)
    at = job_expires_at(finished, None)
    assert at == NOW + timedelta(seconds=30)
    assert not expired(at, NOW) and expired(at, NOW + timedelta(seconds=30))


def test_the_refs_own_ttl_wins_over_the_sets() -> None:
    finished = ref("rj-1", phase="Failed", ended=0, ttl=10)
    assert job_expires_at(finished, 3600) == NOW + timedelta(seconds=10)


def test_the_sets_ttl_applies_to_its_own_refs_only() -> None:
    mine = ref("rj-1", phase="Failed", ended=0)
    hand_written = ref("rj-2", phase="Failed", ended=0, owner=None)
    assert job_expires_at(mine, 100) == NOW + timedelta(seconds=100)
    assert job_expires_at(hand_written, 100) is None


def test_running_jobs_and_unset_ttls_never_expire() -> None:
    assert job_expires_at(ref("rj-1", phase="Running", ttl=0), 0) is None
    assert job_expires_at(ref("rj-1", phase="Succeeded", ended=10), None) is None
    assert job_expires_at(ref("rj-1", phase="Succeeded", ttl=5), None) is None  # no endTime yet
    assert not expired(None, NOW)


def test_an_end_time_at_the_edge_of_the_calendar_saturates_instead_of_raising() -> None:
    # endTime comes from the cloud: year 9999 passes every check the CRD can make.
    edge = replace(
        ref("rj-1", phase="Failed", ttl=TTL_MAX), end_time=datetime(9999, 12, 31, tzinfo=UTC)
    )
    assert job_expires_at(edge, None) == LATEST
    assert not expired(job_expires_at(edge, None), NOW)
    # a TTL stored before the CRD had a maximum, far beyond what a timedelta holds
    huge = ref("rj-2", phase="Failed", ended=10, ttl=10**18)
    assert job_expires_at(huge, None) == LATEST


def test_a_vanished_clusters_grace_saturates_too() -> None:
    assert not cluster_gone_expired(LATEST - timedelta(seconds=1), 3600, NOW)
    assert cluster_gone_expired(NOW, 0, NOW)


def test_shifted_clamps_both_ways_and_is_exact_in_between() -> None:
    assert shifted(NOW, 90) == NOW + timedelta(seconds=90)
    assert shifted(NOW, -(10**15)) == EARLIEST
    assert shifted(datetime(9000, 1, 1), 10**15) == datetime.max  # naive stays naive


def test_a_window_older_than_the_calendar_starts_at_its_beginning() -> None:
    # A set stored before the CRD bounded submittedWithin: pattern-valid, ~16,000 years.
    selector = RayJobSelector.model_construct(submitted_within="999999d999999d999999d")
    assert submitted_after(selector, NOW) == EARLIEST


def test_a_stored_ref_with_a_ttl_beyond_any_bound_is_kept_and_a_boolean_is_no_ttl() -> None:
    stored: dict[str, Any] = {
        "metadata": {"namespace": "ns", "name": "old", "uid": "u"},
        "spec": {"workspaceId": "w-1", "submissionId": "rj-1", "ttlSecondsAfterFinished": 10**30},
        "status": {"phase": "Failed", "endTime": "2026-01-01T00:00:00Z"},
    }
    info = ref_info(JOB_KIND, stored)
    assert info is not None and job_expires_at(info, None) == LATEST
    stored["spec"]["ttlSecondsAfterFinished"] = True
    info = ref_info(JOB_KIND, stored)
    assert info is not None and info.ttl_seconds_after_finished is None
