"""The benchmark's smoke run (N = 200, short phases) produces every figure, for both operators.

Only that the figures exist is checked: their values depend on the machine and are the
benchmark's business (docs/performance.md), never a test's.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO_ROOT

FIGURES = (
    "requests_total_per_minute",
    "writes_per_minute",
    "writes_per_change",
    "unchanged_ref_writes",
    "freshness_p50",
    "freshness_p95",
    "freshness_p99",
    "reverified",
    "restart_writes",
    "rss_mib",
    "cpu_idle_percent",
    "cpu_busy_percent",
)
OPERATIONS = ("GetRayJob", "GetRayCluster", "ListRayJob", "ListRayCluster")


@pytest.mark.slow
def test_the_smoke_benchmark_reports_every_figure_for_both_operators(tmp_path: Path) -> None:
    results, report = tmp_path / "results.json", tmp_path / "performance.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--sizes",
            "200",
            "--smoke",
            "--json",
            str(results),
            "--output",
            str(report),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(results.read_text())
    assert {"nproc", "memory", "cpu", "python", "kube-apiserver", "etcd"} <= set(data["machine"])
    by_operator = {item["operator"]: item for item in data["results"]}
    assert set(by_operator) == {"rayref", "baseline"}
    for name, figures in by_operator.items():
        assert figures["size"] == 200 and figures["refs"] == 220, name
        assert set(figures["requests_per_minute"]) == set(OPERATIONS), name
        assert figures["changes"] > 0, name
        for figure in FIGURES:
            value = figures[figure]
            assert isinstance(value, int | float) and not math.isnan(value), (name, figure)
    # node changes (OOM kills only a GetRayCluster shows) are their own figure, and the
    # control plane's own CPU and memory stand beside the operator's
    assert by_operator["rayref"]["node_changes"] > 0
    assert set(by_operator["rayref"]["control_plane"]) == {"kube-apiserver", "etcd"}
    # some changes are failures, and what reading their driver logs cost is rayref's own
    # figure: calls per failed job and the delay from Failed to status.failureLog
    ours = by_operator["rayref"]
    assert ours["failed_jobs"] > 0
    assert set(ours["failure_log_requests"]) == {"ListRayLogs", "GetRayLog", "GetObject"}
    for figure in ("log_calls_per_failed_job", "log_downloads_per_failed_job"):
        assert isinstance(ours[figure], int | float) and not math.isnan(ours[figure]), figure
    # the table is printed and written with the machine's description
    assert "| rayref / baseline |" in done.stdout
    text = report.read_text()
    assert "| rayref |" in text and "| baseline |" in text and "| nproc |" in text
    assert "| Failed to failureLog p50/p99/max s |" in text
