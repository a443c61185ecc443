"""The benchmark's failure-log figures (issue 25): what its watch records per failed job
and how the report shows it. The run itself is tests/integration/test_bench_smoke.py."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest
from bench import measure, report
from bench.kubeapi import Kube
from bench.measure import Expectation, Watcher


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def _job(name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "team-0", "name": name}, "status": status}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(measure, "time", fake)
    return fake


def test_the_delay_runs_from_the_write_showing_failed_to_the_one_showing_the_log(
    clock: _Clock,
) -> None:
    watcher = Watcher(cast(Kube, None))
    watcher.expected["team-0/read"] = Expectation(990.0, phase="Failed", wants_log=True)
    watcher.expected["team-0/never"] = Expectation(990.0, phase="Failed", wants_log=True)
    watcher.expected["team-0/ok"] = Expectation(990.0, phase="Succeeded")
    watcher._on_event("MODIFIED", _job("read", {"phase": "Running"}))
    clock.now = 1001.0
    watcher._on_event("MODIFIED", _job("read", {"phase": "Failed"}))
    watcher._on_event("MODIFIED", _job("never", {"phase": "Failed"}))
    watcher._on_event("MODIFIED", _job("ok", {"phase": "Succeeded"}))
    clock.now = 1003.5
    log = {"reason": "LogRead", "excerpt": "ValueError: bad row"}
    watcher._on_event("MODIFIED", _job("read", {"phase": "Failed", "failureLog": log}))
    clock.now = 1010.0
    # a later write (a condition, say) does not move the time the log first showed
    watcher._on_event("MODIFIED", _job("read", {"phase": "Failed", "failureLog": log}))

    assert sorted(watcher.failure_logs()) == [(2.5, "LogRead"), (math.inf, "")]


def _result(operator: str) -> report.Result:
    return report.Result(
        operator=operator,
        size=1000,
        refs=1100,
        failed_jobs=4,
        failure_logs_shown=3,
        failure_log_reasons={"LogRead": 2, "LogNotFound": 1},
        failure_log_requests={"ListRayLogs": 4, "GetRayLog": 3, "GetObject": 2},
        failure_log_p50=0.5,
        failure_log_p99=math.inf,
        failure_log_max=math.inf,
    )


def test_the_row_shows_calls_per_failed_job_reasons_and_logs_not_shown() -> None:
    row = report.failure_log_row(_result("rayref"))

    assert row == (
        "| 1,000 + 100 | rayref | 4 | 2 / 1 (LogNotFound 1), 1 not shown "
        "| 1.75 (4 + 3) | 0.50 | 0.50/not seen/not seen |"
    )


def test_the_table_has_rayref_rows_only_and_survives_a_json_round_trip() -> None:
    figures = _result("rayref").figures()
    assert (figures["log_calls_per_failed_job"], figures["log_downloads_per_failed_job"]) == (
        1.75,
        0.5,
    )
    again = report.from_figures(figures)

    table = report.failure_log_table([again, _result("baseline")])

    assert table.splitlines()[2:] == [report.failure_log_row(again)]
    assert "| baseline |" not in table


def test_a_run_without_failed_jobs_shows_no_figure_rather_than_zero() -> None:
    # results written before failures were part of the changes
    old = report.Result(operator="rayref", size=1000, refs=1100)

    assert math.isnan(old.figures()["log_calls_per_failed_job"])
    assert "| 0 | 0 / 0 | - (0 + 0) | - | -/-/- |" in report.failure_log_row(old)
