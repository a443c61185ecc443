"""A list page with one item that does not fit the model keeps every other item: one
tenant's broken remote object must not blind the sweep of a whole workspace."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from rayref.emr.models import RayClusterPage, RayJobPage

YEAR_10000_MS = 253402300800000


def test_a_job_item_out_of_range_is_kept_as_its_id_alone() -> None:
    body = {
        "totalCount": 3,
        "rayJobs": [
            {"submissionId": "rj-good", "status": "Running", "submitTime": 1700000000000},
            {"submissionId": "rj-edge", "status": "Running", "submitTime": YEAR_10000_MS},
            {"submissionId": "rj-next", "status": "Failed", "duration": 12},
        ],
    }

    page = RayJobPage.model_validate_json(json.dumps(body))

    assert [item.submission_id for item in page.ray_jobs] == ["rj-good", "rj-edge", "rj-next"]
    assert page.ray_jobs[0].status == "Running"
    assert page.ray_jobs[1].status is None and page.ray_jobs[1].submit_time is None
    assert page.ray_jobs[2].duration == 12


def test_a_cluster_item_of_the_wrong_shape_is_kept_as_its_id_alone() -> None:
    body = {"rayClusters": [{"clusterId": "ray-a", "createTime": [1]}, "not an object"]}

    page = RayClusterPage.model_validate_json(json.dumps(body))

    assert [item.cluster_id for item in page.ray_clusters] == ["ray-a", None]


def test_a_page_whose_list_is_not_a_list_is_still_an_invalid_answer() -> None:
    with pytest.raises(ValidationError):
        RayJobPage.model_validate_json('{"rayJobs": {"submissionId": "rj-a"}}')
