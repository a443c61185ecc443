"""Lifecycles as pure functions of simulated time."""

from __future__ import annotations

from rayref.simulator.lifecycle import (
    ForcedEnd,
    cluster_run_from_script,
    cluster_snapshot,
    cluster_timeline,
    job_timeline,
)
from rayref.simulator.scripts import ClusterScript, JobScript, OomKill

S = 1000  # ms


def _at(timeline: object, now: int) -> dict[str, object]:
    from rayref.simulator.lifecycle import Timeline

    assert isinstance(timeline, Timeline)
    return timeline.snapshots[timeline.index_at(now)]


def test_job_steps_and_usage() -> None:
    script = JobScript(
        submitted_seconds=1, pending_seconds=2, running_seconds=3, cu_hours_delay_seconds=600
    )
    timeline = job_timeline(0, script)
    assert _at(timeline, 0)["status"] == "Submitted"
    assert _at(timeline, 1 * S)["status"] == "Pending"
    running = _at(timeline, 3 * S)
    assert (running["status"], running["startTime"]) == ("Running", 3 * S)
    done = _at(timeline, 6 * S)
    assert (done["status"], done["clusterState"], done["duration"]) == ("Succeeded", "Running", 3)
    assert _at(timeline, 11 * S)["clusterState"] == "Deleted"
    assert "cuHours" not in _at(timeline, 11 * S + 599 * S)
    assert _at(timeline, 11 * S + 600 * S)["cuHours"] == round(3 / 3600 * 2, 4)


def test_an_idle_timeline_is_small() -> None:
    # a finished job has a handful of moments; reading it is a bisect
    timeline = job_timeline(0, JobScript())
    assert len(timeline.times) <= 7
    assert timeline.bounds(len(timeline.times) - 1)[1] == 2**62


def test_a_forced_end_before_running_has_no_start() -> None:
    timeline = job_timeline(0, JobScript(outcome=None), ForcedEnd(1500, "Failed", "no quota"))
    failed = _at(timeline, 1500)
    assert (failed["status"], failed["message"], failed["duration"]) == ("Failed", "no quota", 0)
    assert "startTime" not in failed


def test_a_forced_end_after_the_natural_end_changes_nothing() -> None:
    script = JobScript(running_seconds=1)
    natural = job_timeline(0, script)
    forced = job_timeline(0, script, ForcedEnd(10**9, "Cancelled"))
    assert natural.times == forced.times


def test_cluster_oom_then_restart() -> None:
    script = ClusterScript(
        head_ready_seconds=1,
        workers_appear_seconds=1,
        workers_ready_seconds=2,
        starting_seconds=2,
        oom_kills=(OomKill(instance="head", at_seconds=10, restart_seconds=5),),
    )
    run = cluster_run_from_script("ray-x", 0, 0, script, (("G", 1),))
    killed = cluster_snapshot(run, 12 * S)["instances"][0]
    back = cluster_snapshot(run, 15 * S)["instances"][0]
    assert (killed["containerState"], killed["containerExitCode"]) == ("Terminated", 137)
    assert (back["containerState"], back["startTime"]) == ("Running", 15 * S)
    assert 10 * S in cluster_timeline(run).times


def test_an_error_before_a_stop_wins_and_ends_the_timeline() -> None:
    script = ClusterScript(error_at_seconds=5, stop_at_seconds=8)
    run = cluster_run_from_script("ray-x", 0, 0, script, ())
    timeline = cluster_timeline(run)
    assert timeline.times[-1] == 5 * S
    assert _at(timeline, 100 * S)["state"] == "Error"


def test_a_stop_before_an_error_ends_stopped() -> None:
    script = ClusterScript(stop_at_seconds=5, stopping_seconds=2, error_at_seconds=6)
    run = cluster_run_from_script("ray-x", 0, 0, script, (("G", 2),))
    assert cluster_snapshot(run, 5 * S)["state"] == "Stopping"
    assert cluster_snapshot(run, 7 * S) == {
        "state": "Stopped",
        "message": "Cluster is stopped.",
        "instances": [],
    }
