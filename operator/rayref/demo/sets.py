"""The demo's RayJobRefSet: a set that fills up as batch jobs are submitted remotely.

Beside the sample refs, the demo applies one `RayJobRefSet` (jobs named `batch-...` of
the first sample job's workspace) and submits such a job to the simulator every few
seconds; the set creates a ref for each, and the demo prints the set's counts as they
grow. The story is complete once every submitted job has its ref.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rayref.api.kinds import API_VERSION, GROUP, JOB_SET_KIND, JOB_SET_PLURAL, VERSION
from rayref.demo.samples import Samples

SET_NAME = "batch-jobs"
PREFIX = "batch-"
SUBMISSIONS = 5
SUBMIT_EVERY_SECONDS = 4.0
# Each batch job runs a minute (simulated), so its ref shows it Running, then Succeeded.
BATCH_SCRIPT = {"submittedSeconds": 2, "pendingSeconds": 3, "runningSeconds": 60}


def set_manifest(samples: Samples) -> dict[str, Any] | None:
    """The set, in the namespace and workspace of the first sample job; None without one."""
    job = samples.first("RayJobRef")
    if job is None:
        return None
    spec: dict[str, Any] = {
        "workspaceId": job.spec["workspaceId"],
        "selector": {"namePrefix": PREFIX},
        "template": {"labels": {"demo": "batch"}, "pollIntervalSeconds": 5},
    }
    for key in ("regionId", "credentialsSecretRef"):
        if key in job.spec:
            spec[key] = job.spec[key]
    return {
        "apiVersion": API_VERSION,
        "kind": JOB_SET_KIND,
        "metadata": {"name": SET_NAME, "namespace": job.namespace},
        "spec": spec,
    }


def _submit(endpoint: str, workspace_id: str, name: str) -> None:
    from rayref.simulator.control import SimulatorControl

    async def submit() -> None:
        async with SimulatorControl(endpoint) as control:
            await control.create_job(workspace_id, name=name, script=BATCH_SCRIPT)

    asyncio.run(submit())


@dataclass
class SetStory:
    """Submits the batch jobs on schedule and reports the set's counts when they change."""

    manifest: Mapping[str, Any]
    endpoint: str
    echo: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    submitted: int = 0
    next_at: float = 0.0
    shown: tuple[Any, ...] = field(default_factory=tuple)
    created: int = 0

    @property
    def namespace(self) -> str:
        return str(self.manifest["metadata"]["namespace"])

    def tick(self, api: Any) -> None:
        now = self.clock()
        if self.submitted < SUBMISSIONS and now >= self.next_at:
            self.submitted += 1
            name = f"{PREFIX}{self.submitted}"
            _submit(self.endpoint, str(self.manifest["spec"]["workspaceId"]), name)
            self.echo(f"  submitted remote job {name}")
            self.next_at = now + SUBMIT_EVERY_SECONDS
        status = self._status(api)
        counts = (status.get("matched"), status.get("created"), status.get("active"))
        if counts != self.shown and status:
            self.shown = counts
            self.created = int(status.get("created") or 0)
            self.echo(
                f"  {JOB_SET_KIND}/{SET_NAME}: matched {counts[0]}, refs {counts[1]}, "
                f"active {counts[2]} (kubectl get rayjobref -l rayref.io/set={SET_NAME})"
            )

    def _status(self, api: Any) -> dict[str, Any]:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, JOB_SET_PLURAL, SET_NAME
            )
        except ApiException:
            return {}
        status = obj.get("status") if isinstance(obj, dict) else None
        return dict(status or {})

    @property
    def done(self) -> bool:
        return self.submitted == SUBMISSIONS and self.created >= SUBMISSIONS
