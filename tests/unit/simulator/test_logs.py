"""The simulator's log files (a pure function of the job's view and the time), its
ListRayLogs pages and its object store's byte ranges."""

from __future__ import annotations

from typing import Any

from rayref.simulator.log_api import _listing, route_logs
from rayref.simulator.logs import LINE_SECONDS, job_log_files
from rayref.simulator.object_store import _ranged

START = 1_700_000_000_000
VIEW: dict[str, Any] = {
    "submissionId": "rj-1",
    "status": "Running",
    "startTime": START,
    "logPath": "w-1/ray/logs/rj-1/",
    "workerSpecs": [{"groupName": "G", "replica": 2}],
}


def _driver(view: dict[str, Any], now: int) -> bytes:
    files = {f.path: f.content for f in job_log_files(view, now)}
    return files["w-1/ray/logs/rj-1/attempt-1/rj-1_driver.log"]


def test_no_files_before_the_job_runs() -> None:
    assert job_log_files({**VIEW, "startTime": None}, START) == []
    assert job_log_files(VIEW, START - 1) == []


def test_the_driver_log_grows_line_by_line_and_is_the_same_at_the_same_time() -> None:
    early, late = _driver(VIEW, START + 10_000), _driver(VIEW, START + 60_000)
    assert late.startswith(early)
    assert late.count(b"\n") - early.count(b"\n") == (60 - 10) // LINE_SECONDS
    assert _driver(VIEW, START + 60_000) == late


def test_a_failed_job_ends_in_a_traceback_at_its_end_time_and_grows_no_more() -> None:
    failed = {**VIEW, "status": "Failed", "endTime": START + 30_000}
    text = _driver(failed, START + 999_000)
    assert text == _driver(failed, START + 30_000)
    assert text.endswith(b"ValueError: bad record in batch 7\n")
    assert b"Traceback (most recent call last):" in text
    assert b"Traceback" not in _driver({**failed, "status": "Succeeded"}, START + 30_000)


def test_worker_logs_one_per_replica() -> None:
    paths = [f.path for f in job_log_files(VIEW, START + 1000)]
    assert paths == [
        "w-1/ray/logs/rj-1/attempt-1/rj-1_driver.log",
        "w-1/ray/logs/rj-1/attempt-1/worker-G-0.log",
        "w-1/ray/logs/rj-1/attempt-1/worker-G-1.log",
    ]


def test_a_listing_pages_after_the_marker_and_groups_folders() -> None:
    files = job_log_files(VIEW, START + 1000)
    first = _listing(files, "b", {"prefix": "w-1/ray/logs/rj-1/", "maxKeys": "2"})
    assert first["isTruncated"] and first["nextMarker"] == files[1].path
    rest = _listing(files, "b", {"prefix": "/w-1/ray/logs/rj-1/", "marker": first["nextMarker"]})
    assert [o["path"] for o in rest["objectList"]] == [files[2].path]
    assert (rest["isTruncated"], rest["nextMarker"]) == (False, "")
    folders = _listing(files, "b", {"prefix": "w-1/ray/logs/", "delimiter": "/"})
    assert [(o["path"], o["isDir"]) for o in folders["objectList"]] == [
        ("w-1/ray/logs/rj-1/", True)
    ]


def test_log_routes() -> None:
    base = "/api/interactive/v1/workspace/w-1/ray/rj-1"
    assert route_logs("GET", base + "/logs") == ("ListRayLogs", "w-1", "rj-1")
    assert route_logs("GET", base + "/log") == ("GetRayLog", "w-1", "rj-1")
    assert route_logs("POST", base + "/log") is None
    assert route_logs("GET", base + "/other") is None


def test_ranges_as_object_storage_answers_them() -> None:
    body = b"0123456789"
    tail = _ranged(body, "bytes=-3")
    assert (tail.status, tail.body, tail.headers["Content-Range"]) == (206, b"789", "bytes 7-9/10")
    assert _ranged(body, "bytes=-30").body == body
    assert _ranged(body, "bytes=2-4").body == b"234"
    assert _ranged(body, "bytes=8-").body == b"89"
    assert _ranged(body, None).status == 200
    assert _ranged(body, "bytes=0-1,4-5").status == 200  # several ranges: ignored, as OSS does
    empty = _ranged(b"", "bytes=-3")
    assert (empty.status, empty.headers["Content-Range"]) == (416, "bytes */0")
    assert _ranged(body, "bytes=10-").status == 416
