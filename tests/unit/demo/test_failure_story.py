"""The demo's failed-job step: `status.failureLog` printed once, under the command that shows
it; a wait that ends without the field says so in one line and prints no excerpt."""

from __future__ import annotations

from typing import Any

from rayref.demo.failure import Commands, FailureLogStory
from rayref.demo.samples import SampleRef

COMMANDS = Commands(
    kubectl="kubectl --kubeconfig .demo/kubeconfig",
    rayref_logs="rayref logs",
    operator_log=".demo/logs/operator.log",
)
FAILED = SampleRef("RayJobRef", "rayref-demo", "gpu-inference", {"submissionId": "rj-1"})
SUCCEEDED = SampleRef("RayJobRef", "rayref-demo", "etl-daily", {"submissionId": "rj-2"})
EXCERPT = "ValueError: bad record in batch 7\n---\nTraceback (most recent call last):"
Objects = dict[tuple[str, str, str], Any]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def objects(phase: str, failure_log: dict[str, Any] | None = None) -> Objects:
    status: dict[str, Any] = {"phase": phase}
    if failure_log is not None:
        status["failureLog"] = failure_log
    return {
        ("RayJobRef", "rayref-demo", "gpu-inference"): {"status": status},
        ("RayJobRef", "rayref-demo", "etl-daily"): {"status": {"phase": "Succeeded"}},
    }


def story() -> tuple[FailureLogStory, list[str], Clock]:
    printed: list[str] = []
    clock = Clock()
    return (
        FailureLogStory([SUCCEEDED, FAILED], COMMANDS, printed.append, clock=clock),
        printed,
        clock,
    )


def test_the_excerpt_is_printed_once_under_the_kubectl_command_that_shows_it() -> None:
    failures, printed, _ = story()
    failures.tick(objects("Running"))
    assert printed == [] and failures.done

    failures.tick(objects("Failed"))
    assert printed == [] and not failures.done

    log = {"reason": "LogRead", "file": "attempt-1/rj-1_driver.log", "excerpt": EXCERPT}
    failures.tick(objects("Failed", log))
    failures.tick(objects("Failed", log))

    assert failures.done
    assert printed[0].startswith("  rayjobref/gpu-inference Failed: ")
    assert "attempt-1/rj-1_driver.log" in printed[0]
    assert printed[1] == (
        "  kubectl --kubeconfig .demo/kubeconfig get rayjobref gpu-inference -n rayref-demo "
        "-o jsonpath='{.status.failureLog.excerpt}'; echo"
    )
    assert printed[2:5] == [f"    {line}" for line in EXCERPT.splitlines()]
    assert "rayref logs rayjobref/gpu-inference -n rayref-demo" in printed[-1]
    assert not any("etl-daily" in line for line in printed)


def test_a_field_without_excerpt_prints_its_reason_and_message() -> None:
    failures, printed, _ = story()
    log = {"reason": "LogNotFound", "message": "The job has no driver log."}
    failures.tick(objects("Timeout", log))

    assert "(LogNotFound)" in printed[0] and "Timeout" in printed[0]
    assert "    The job has no driver log." in printed
    assert failures.done


def test_a_wait_that_ends_without_the_field_is_one_honest_line() -> None:
    failures, printed, clock = story()
    failures.tick(objects("Failed"))
    clock.now += 29
    failures.tick(objects("Failed"))
    assert printed == [] and not failures.done

    clock.now += 1
    failures.tick(objects("Failed"))
    failures.tick(objects("Failed", {"reason": "LogRead", "excerpt": EXCERPT}))

    assert printed == [
        "  rayjobref/gpu-inference Failed: no status.failureLog within 30 s; "
        "see .demo/logs/operator.log"
    ]
    assert failures.done
