"""TTL decisions on a given clock."""

from __future__ import annotations

from datetime import timedelta

from rayref.discovery.expiry import expired, job_expires_at
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
