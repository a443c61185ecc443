"""The mirror applies the redaction rule: no secret a remote object carries in a user
field or a message reaches the status, a condition or an Event's text."""

from __future__ import annotations

import json

from rayref.emr.errors import BadRequestError
from rayref.mirror.cluster import cluster_status
from rayref.mirror.failure import sync_failure
from rayref.mirror.job import job_status
from tests.support.leakscan import LeakScanner, distinctive, planted_job_fields
from tests.unit.mirror.remotes import T0, at, cluster, job

MASK = "**********"


def _scanner(value: str) -> LeakScanner:
    scanner = LeakScanner()
    scanner.add("planted", value)
    return scanner


def test_a_failed_job_with_planted_fields_leaks_nothing_to_status_or_events() -> None:
    secret = distinctive("mirror")
    fields = planted_job_fields(secret)
    running = job_status(job(status="Running", **fields), None, generation=1, now=T0)
    failed = job_status(job(status="Failed", **fields), running.status, generation=1, now=at(60))

    scanner = _scanner(secret)
    for update in (running, failed):
        scanner.scan_json("status", update.status)
        scanner.scan_text("events", " ".join(t.message for t in update.transitions))
    scanner.assert_clean()
    assert failed.status["workingDir"] == f"https://ci:{MASK}@artifacts.example/work.zip"
    job_failed = next(t for t in failed.transitions if t.reason == "JobFailed")
    assert f";token={MASK} (password: {MASK}" in job_failed.message


def test_a_cluster_message_and_an_error_message_are_redacted_in_conditions() -> None:
    secret = distinctive("clustermsg")
    message = f"pull failed: https://reg:{secret}@registry.example/img"
    update = cluster_status(cluster(state="Error", message=message), None, generation=1, now=T0)
    failure = sync_failure(
        "RayClusterRef",
        update.status,
        BadRequestError(f"bad request ?signature={secret}&x=1"),
        generation=1,
        now=at(60),
    )

    scanner = _scanner(secret)
    for status in (update.status, failure.status):
        scanner.scan_json("status", status)
    scanner.scan_text("events", json.dumps([t.message for t in update.transitions]))
    scanner.assert_clean()
    assert f"https://reg:{MASK}@registry.example/img" in update.status["message"]
