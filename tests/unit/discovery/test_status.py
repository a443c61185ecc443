"""A set's status: counts, conditions, and writes only on change."""

from __future__ import annotations

from datetime import timedelta

from rayref.discovery import status
from rayref.discovery.plan import Plan
from rayref.emr.errors import CredentialsError, ServerError
from rayref.mirror import conditions as cond
from tests.unit.discovery.support import NOW, ref


def plan(limit: bool = False) -> Plan:
    owned = tuple(ref(f"rj-{i}") for i in range(4))
    return Plan(
        matched=5, create=(), limit_reached=limit, tags_needed=(), owned=owned, active=3, finished=1
    )


def _cond(update: status.SetStatusUpdate, type_: str) -> tuple[str, str]:
    found = cond.get_condition(update.status["conditions"], type_)
    assert found is not None
    return found["status"], found["reason"]


def test_a_sync_reports_counts_and_is_ready() -> None:
    update = status.synced({}, plan(), max_refs=10, generation=2, now=NOW)
    assert update.changed
    assert {k: update.status[k] for k in ("matched", "created", "active", "finished")} == {
        "matched": 5,
        "created": 4,
        "active": 3,
        "finished": 1,
    }
    assert _cond(update, "Synced") == ("True", "Listed")
    assert _cond(update, "Ready") == ("True", "Listed")
    assert _cond(update, "Stalled") == ("False", "WithinLimit")
    assert update.status["observedGeneration"] == 2 and update.status["lastSyncTime"]


def test_the_same_sync_again_writes_nothing_and_keeps_the_sync_time() -> None:
    first = status.synced({}, plan(), max_refs=10, generation=2, now=NOW)
    later = NOW + timedelta(minutes=5)
    again = status.synced(first.status, plan(), max_refs=10, generation=2, now=later)
    assert not again.changed and again.status == first.status


def test_the_cap_is_stalled_limit_reached() -> None:
    update = status.synced({}, plan(limit=True), max_refs=10, generation=1, now=NOW)
    assert _cond(update, "Stalled") == ("True", "LimitReached")
    assert _cond(update, "Ready") == ("False", "LimitReached")


def test_a_failed_listing_keeps_the_counts_and_says_why() -> None:
    good = status.synced({}, plan(), max_refs=10, generation=1, now=NOW)
    update = status.listing_failed(good.status, ServerError("boom"), generation=1, now=NOW)
    assert update.changed and update.status["matched"] == 5
    assert _cond(update, "Synced") == ("False", "RemoteError")
    assert _cond(update, "Stalled") == ("False", "WithinLimit")
    assert update.status["lastSyncTime"] == good.status["lastSyncTime"]
    again = status.listing_failed(update.status, ServerError("boom"), generation=1, now=NOW)
    assert not again.changed


def test_missing_credentials_stall_the_set() -> None:
    update = status.listing_failed({}, CredentialsError("no key"), generation=1, now=NOW)
    assert _cond(update, "Synced") == ("False", "CredentialsNotFound")
    assert _cond(update, "Stalled") == ("True", "CredentialsNotFound")


def test_a_suspended_set_says_so() -> None:
    update = status.suspended({}, generation=3, now=NOW)
    assert _cond(update, "Ready") == ("False", "Suspended")


def test_a_refused_create_makes_the_set_not_ready_and_stalled_with_the_servers_words() -> None:
    message = 'RayJobRef.rayref.io "rj-1" is invalid: metadata.labels: Invalid value: "a b"'
    update = status.synced({}, plan(), max_refs=10, generation=1, now=NOW, refused=message)
    assert _cond(update, cond.READY) == ("False", status.REF_CREATE_REFUSED)
    assert _cond(update, cond.STALLED) == ("True", status.REF_CREATE_REFUSED)
    assert _cond(update, cond.SYNCED) == ("True", status.LISTED)  # the listing itself worked
    ready = cond.get_condition(update.status["conditions"], cond.READY)
    assert ready is not None and "metadata.labels" in ready["message"]
    # fixed: the next sync without a refusal is Ready again
    again = status.synced(update.status, plan(), max_refs=10, generation=2, now=NOW)
    assert _cond(again, cond.READY) == ("True", status.LISTED)


def test_an_internal_error_stalls_the_set_and_keeps_its_counts() -> None:
    before = status.synced({}, plan(), max_refs=10, generation=1, now=NOW).status
    update = status.failed(
        before, status.INTERNAL_ERROR, "plan failed: OverflowError", generation=1, now=NOW
    )
    assert _cond(update, cond.READY) == ("False", status.INTERNAL_ERROR)
    assert _cond(update, cond.STALLED) == ("True", status.INTERNAL_ERROR)
    assert update.status["created"] == 4
