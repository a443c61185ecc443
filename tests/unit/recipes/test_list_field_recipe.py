"""Recipe "a new status field", list side: what a list item changes, the sweep compares.

The default list strategy decides "unchanged, no Get" by comparing the status fields a
list item carries (`polling.listings.JOB_LIST_FIELDS` / `CLUSTER_LIST_FIELDS`). A status
field a list item sets but that is in neither tuple is silently never noticed: the ref
keeps a stale value until something else changes. So every key of the SDK's list item
that changes the status must change the sweep's verdict too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from rayref.emr.models import RayClusterSummary, RayJobSummary
from rayref.mirror.cluster import cluster_status
from rayref.mirror.job import job_status
from rayref.polling import listings
from tests.unit.recipes.answers import full_answer, without

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Written on every read whatever the item says: not a field the item carries.
BOOKKEEPING = frozenset(
    {"conditions", "lastSyncTime", "instancesObservedTime", "observedGeneration"}
)
WHERE = "operator/rayref/polling/listings.py"


def _job(item: Mapping[str, Any]) -> dict[str, Any]:
    remote = listings._job_from(RayJobSummary.model_validate(item))
    return dict(job_status(remote, {}, generation=1, now=NOW).status)


def _cluster(item: Mapping[str, Any]) -> dict[str, Any]:
    remote = listings._cluster_from(RayClusterSummary.model_validate(item))
    return dict(cluster_status(remote, {}, generation=1, now=NOW).status)


CASES = [
    pytest.param(
        "ListRayJob", "rayJobs", RayJobSummary, _job, listings.JOB_LIST_FIELDS,
        listings.JOB_LIST_COMPARED_APART, "JOB_LIST_FIELDS", id="job",
    ),
    pytest.param(
        "ListRayCluster", "rayClusters", RayClusterSummary, _cluster,
        listings.CLUSTER_LIST_FIELDS, listings.CLUSTER_LIST_COMPARED_APART,
        "CLUSTER_LIST_FIELDS", id="cluster",
    ),
]  # fmt: skip


def _changed_by_each_key(
    item: dict[str, Any], mapped: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> dict[str, set[str]]:
    base = mapped(item)
    changed = {}
    for key in item:
        after = mapped(without(item, key))
        fields = {f for f in set(base) | set(after) if base.get(f) != after.get(f)}
        changed[key] = fields - BOOKKEEPING
    return changed


@pytest.mark.parametrize(
    ("operation", "items", "model", "mapped", "compared", "apart", "name"), CASES
)
def test_every_status_field_a_list_item_sets_is_compared(
    operation: str,
    items: str,
    model: type[BaseModel],
    mapped: Callable[[Mapping[str, Any]], dict[str, Any]],
    compared: tuple[str, ...],
    apart: dict[str, str],
    name: str,
) -> None:
    item = full_answer(operation)[items][0]
    set_by_items = set().union(*_changed_by_each_key(item, mapped).values())
    missed = sorted(set_by_items - set(compared) - set(apart))
    assert not missed, (
        f"a {operation} item sets the status fields {missed}, which the list sweep never "
        f"compares: add them to {name} in {WHERE}, or to its *_LIST_COMPARED_APART with "
        "the reason (docs/design.md, Changing rayref: a new status field)"
    )
    assert not set(apart) - set_by_items, f"{WHERE} compares apart fields no list item sets"


@pytest.mark.parametrize(
    ("operation", "items", "model", "mapped", "compared", "apart", "name"), CASES
)
def test_a_change_in_any_such_key_sends_the_ref_to_a_get(
    operation: str,
    items: str,
    model: type[BaseModel],
    mapped: Callable[[Mapping[str, Any]], dict[str, Any]],
    compared: tuple[str, ...],
    apart: dict[str, str],
    name: str,
) -> None:
    item = full_answer(operation)[items][0]
    status = mapped(item)
    unnoticed = sorted(
        key
        for key, fields in _changed_by_each_key(item, mapped).items()
        if fields
        and listings.reads_like_status(
            model.model_validate(without(item, key)),  # type: ignore[arg-type]
            status,
            generation=1,
            now=NOW,
        )
    )
    assert not unnoticed, (
        f"the list sweep judges a ref unchanged when its {operation} item's {unnoticed} "
        f"changed: compare the fields they set ({name} in {WHERE})"
    )
