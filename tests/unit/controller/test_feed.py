"""`controller.handlers.feed`: what the refs' watches hand the scheduler. A ref whose spec
or stored status cannot be read is registered all the same, its fault counted; nothing
raises into the listing that serves the other refs."""

from __future__ import annotations

from typing import Any

import pytest

from rayref.api.kinds import JOB_KIND
from rayref.api.specs import InvalidSpec
from rayref.controller.handlers import feed
from rayref.controller.runtime import Runtime
from rayref.observability.metrics import Metrics
from rayref.polling.refs import RefKey
from rayref.polling.scheduler import PerRefStrategy, Scheduler

SPEC = {"workspaceId": "w-abc", "submissionId": "rj-1"}


async def never(_: Any) -> Any:
    raise AssertionError("not polled in these tests")


@pytest.fixture
def runtime() -> Runtime:
    return Runtime(scheduler=Scheduler(PerRefStrategy(never)), metrics=Metrics())


def event(name: str, status: Any, *, version: str = "10", spec: Any = None) -> dict[str, Any]:
    metadata = {"namespace": "team-a", "name": name, "uid": f"uid-{name}", "generation": 1}
    return {
        "type": "ADDED",
        "object": {
            "metadata": {**metadata, "resourceVersion": version},
            "spec": SPEC if spec is None else spec,
            "status": status,
        },
    }


def faults(runtime: Runtime, step: str) -> float:
    assert runtime.metrics is not None
    value = runtime.metrics.registry.get_sample_value(
        "rayref_object_faults_total", {"kind": JOB_KIND, "step": step}
    )
    return value or 0.0


@pytest.mark.parametrize(
    "status",
    [
        {"phase": "Running", "conditions": "Synced"},
        {"phase": "Running", "usage": 7, "observedGeneration": "1"},
        ["not", "an", "object"],
    ],
)
def test_an_unreadable_status_is_registered_without_it_and_counted(
    runtime: Runtime, status: Any
) -> None:
    feed(runtime, JOB_KIND, event("bad", status))
    feed(runtime, JOB_KIND, event("after", {"phase": "Running"}))

    key = RefKey(JOB_KIND, "team-a", "bad")
    registered = runtime.scheduler.status_of(key)
    assert registered is not None
    assert all(registered.get(field) is None for field in ("conditions", "usage"))
    assert runtime.scheduler.status_of(RefKey(JOB_KIND, "team-a", "after")) is not None
    assert faults(runtime, "read-status") == 1


def test_a_spec_the_models_refuse_is_registered_as_invalid(runtime: Runtime) -> None:
    feed(runtime, JOB_KIND, event("bad", {}, spec={"workspaceId": 5}))

    (entry,) = runtime.scheduler.entries()
    assert isinstance(entry.spec, InvalidSpec)
    assert "spec.submissionId" in entry.spec.message


def test_the_echo_of_the_operators_own_write_is_not_read_again(runtime: Runtime) -> None:
    feed(runtime, JOB_KIND, event("a", {"phase": "Running"}, version="10"))
    key = RefKey(JOB_KIND, "team-a", "a")
    held = runtime.scheduler.status_of(key)

    feed(runtime, JOB_KIND, event("a", {"phase": "Running"}, version="10"))
    assert runtime.scheduler.status_of(key) is held
    feed(runtime, JOB_KIND, event("a", {"phase": "Failed"}, version="11"))
    status = runtime.scheduler.status_of(key)
    assert status is not None and status.get("phase") == "Failed"
