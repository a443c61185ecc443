"""`SimulatorControl`: the async Python client of the simulator's control API (`/_sim/v1/`).

Used by tests, the demo and the benchmarks to shape the simulated world:

    async with SimulatorControl("http://127.0.0.1:8787") as sim:
        job = await sim.create_job("w-d2d82aa09155", name="train", script={"runningSeconds": 30})
        await sim.advance_clock(60)
        print((await sim.get_job_view("w-d2d82aa09155", job.id)).job["status"])

Scripts and fault fields use the camelCase names of docs/simulator.md; keyword arguments
of this client are snake_case and converted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic.alias_generators import to_camel

from rayref.emr.http import HttpUser
from rayref.simulator.scripts import ClusterScript, JobScript

JobAction = Literal["cancel", "fail", "succeed", "timeout"]
ClusterAction = Literal["stop", "start", "error", "oom"]
Script = JobScript | ClusterScript | Mapping[str, Any]


class SimulatorControlError(Exception):
    """The control API refused a request (bad input, unknown object, conflict)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"simulator control API answered {status_code}: {message}")
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class ObjectView:
    """A job or cluster as the control API shows it."""

    id: str
    workspace_id: str
    fields: dict[str, Any]  # exactly what GetRayJob / GetRayCluster shows, without requestId
    changed_at: int  # wall ms of the last visible change
    sim_time: int  # simulated ms when read
    script: dict[str, Any]

    @property
    def job(self) -> dict[str, Any]:
        return self.fields

    @property
    def cluster(self) -> dict[str, Any]:
        return self.fields


@dataclass(frozen=True)
class ClockView:
    sim_time: int  # epoch ms
    wall_time: int  # epoch ms
    speed: float


@dataclass(frozen=True)
class Counts:
    """Requests per operation and outcome since `since` (wall ms)."""

    operations: dict[str, dict[str, int]]
    total: int
    since: int

    def get(self, operation: str, outcome: str = "ok") -> int:
        return self.operations.get(operation, {}).get(outcome, 0)

    def outcome_total(self, outcome: str) -> int:
        return sum(per_op.get(outcome, 0) for per_op in self.operations.values())


@dataclass(frozen=True)
class Change:
    kind: str  # "job" | "cluster"
    workspace_id: str
    id: str
    changed_at: int
    deleted: bool


def _script(script: Script | None) -> dict[str, Any] | None:
    if script is None:
        return None
    if isinstance(script, JobScript | ClusterScript):
        return script.model_dump(by_alias=True, exclude_unset=True)
    return dict(script)


def _camel(values: Mapping[str, Any]) -> dict[str, Any]:
    return {to_camel(key): value for key, value in values.items()}


class SimulatorControl(HttpUser):
    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # trust_env=False: a proxy from the environment must never see loopback traffic
        super().__init__(client, lambda: httpx.AsyncClient(timeout=timeout, trust_env=False))

    def __repr__(self) -> str:
        return f"SimulatorControl({self.base_url!r})"

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        response = await self._http.request(
            method, f"{self.base_url}/_sim/v1{path}", json=body, params=params
        )
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            raise SimulatorControlError(response.status_code, message)
        return response.json()

    # --- general ------------------------------------------------------------------

    async def health(self) -> bool:
        return bool((await self._call("GET", "/health")).get("ok"))

    async def state(self) -> dict[str, Any]:
        """Clock, workspaces with object counts, faults and keys (never secrets)."""
        result: dict[str, Any] = await self._call("GET", "/state")
        return result

    async def reset(
        self, *, world: bool = True, faults: bool = True, counters: bool = True, keys: bool = True
    ) -> None:
        """Back to the scenario: objects and clock, faults, counters, keys (each optional)."""
        await self._call(
            "POST", "/reset", {"world": world, "faults": faults, "counters": counters, "keys": keys}
        )

    async def create_workspace(self, workspace_id: str | None = None) -> str:
        """Create (or touch) a workspace; a fresh random `w-...` id when none is given."""
        result = await self._call("POST", "/workspaces", {"workspaceId": workspace_id})
        return str(result["workspaceId"])

    # --- jobs ---------------------------------------------------------------------

    @staticmethod
    def _object(kind: str, workspace_id: str, data: Mapping[str, Any]) -> ObjectView:
        fields = data[kind]
        id_key = "submissionId" if kind == "job" else "clusterId"
        return ObjectView(
            id=str(fields.get(id_key, "")),
            workspace_id=workspace_id,
            fields=fields,
            changed_at=int(data["changedAt"]),
            sim_time=int(data["simTime"]),
            script=data["script"],
        )

    @staticmethod
    def job_spec(
        *,
        submission_id: str | None = None,
        script: Script | None = None,
        age_seconds: float = 0.0,
        **fields: Any,
    ) -> dict[str, Any]:
        """A job spec for `create_jobs`; `fields` are API fields in camelCase (`name=`...)."""
        spec: dict[str, Any] = {"ageSeconds": age_seconds, "fields": fields}
        if submission_id is not None:
            spec["submissionId"] = submission_id
        if script is not None:
            spec["script"] = _script(script)
        return spec

    async def create_job(
        self,
        workspace_id: str,
        *,
        submission_id: str | None = None,
        script: Script | None = None,
        age_seconds: float = 0.0,
        **fields: Any,
    ) -> ObjectView:
        """Create a job submitted `age_seconds` ago (simulated); API fields as keywords."""
        spec = self.job_spec(
            submission_id=submission_id, script=script, age_seconds=age_seconds, **fields
        )
        return self._object(
            "job", workspace_id, await self._call("POST", f"/workspaces/{workspace_id}/jobs", spec)
        )

    async def create_jobs(
        self, workspace_id: str, specs: Sequence[Mapping[str, Any]]
    ) -> list[ObjectView]:
        """Create many jobs in one request (specs from `job_spec`)."""
        result = await self._call("POST", f"/workspaces/{workspace_id}/jobs", {"jobs": list(specs)})
        return [self._object("job", workspace_id, item) for item in result["jobs"]]

    async def get_job_view(self, workspace_id: str, submission_id: str) -> ObjectView:
        return self._object(
            "job",
            workspace_id,
            await self._call("GET", f"/workspaces/{workspace_id}/jobs/{submission_id}"),
        )

    async def update_job(
        self,
        workspace_id: str,
        submission_id: str,
        *,
        fields: Mapping[str, Any] | None = None,
        clear_fields: Sequence[str] = (),
        script: Script | None = None,
        action: JobAction | None = None,
        message: str | None = None,
    ) -> ObjectView:
        """Override API fields (None hides one), replace the script, or end the job now.

        `action`: "cancel" (Cancelling, then Cancelled), "fail", "succeed", "timeout".
        """
        body: dict[str, Any] = {"fields": dict(fields or {}), "clearFields": list(clear_fields)}
        if script is not None:
            body["script"] = _script(script)
        if action is not None:
            body["action"] = action
        if message is not None:
            body["message"] = message
        return self._object(
            "job",
            workspace_id,
            await self._call("PATCH", f"/workspaces/{workspace_id}/jobs/{submission_id}", body),
        )

    async def delete_job(self, workspace_id: str, submission_id: str) -> None:
        await self._call("DELETE", f"/workspaces/{workspace_id}/jobs/{submission_id}")

    # --- clusters -----------------------------------------------------------------

    async def create_cluster(
        self,
        workspace_id: str,
        *,
        cluster_id: str | None = None,
        script: Script | None = None,
        age_seconds: float = 0.0,
        **fields: Any,
    ) -> ObjectView:
        spec: dict[str, Any] = {"ageSeconds": age_seconds, "fields": fields}
        if cluster_id is not None:
            spec["clusterId"] = cluster_id
        if script is not None:
            spec["script"] = _script(script)
        return self._object(
            "cluster",
            workspace_id,
            await self._call("POST", f"/workspaces/{workspace_id}/clusters", spec),
        )

    async def get_cluster_view(self, workspace_id: str, cluster_id: str) -> ObjectView:
        return self._object(
            "cluster",
            workspace_id,
            await self._call("GET", f"/workspaces/{workspace_id}/clusters/{cluster_id}"),
        )

    async def update_cluster(
        self,
        workspace_id: str,
        cluster_id: str,
        *,
        fields: Mapping[str, Any] | None = None,
        clear_fields: Sequence[str] = (),
        script: Script | None = None,
        action: ClusterAction | None = None,
        message: str | None = None,
        instance: str = "head",
        restart_seconds: float = 10.0,
    ) -> ObjectView:
        """Override fields, replace the script, or act now.

        `action`: "stop" (Stopping, then Stopped), "start" (a new run of a stopped or
        failed cluster), "error" (state Error with `message`), "oom" (`instance`, "head"
        or "worker-N", is OOM-killed and restarts after `restart_seconds`).
        """
        body: dict[str, Any] = {
            "fields": dict(fields or {}),
            "clearFields": list(clear_fields),
            "instance": instance,
            "restartSeconds": restart_seconds,
        }
        if script is not None:
            body["script"] = _script(script)
        if action is not None:
            body["action"] = action
        if message is not None:
            body["message"] = message
        return self._object(
            "cluster",
            workspace_id,
            await self._call("PATCH", f"/workspaces/{workspace_id}/clusters/{cluster_id}", body),
        )

    async def delete_cluster(self, workspace_id: str, cluster_id: str) -> None:
        await self._call("DELETE", f"/workspaces/{workspace_id}/clusters/{cluster_id}")

    # --- clock --------------------------------------------------------------------

    @staticmethod
    def _clock(data: Mapping[str, Any]) -> ClockView:
        return ClockView(int(data["simTime"]), int(data["wallTime"]), float(data["speed"]))

    async def clock(self) -> ClockView:
        return self._clock(await self._call("GET", "/clock"))

    async def advance_clock(self, seconds: float) -> ClockView:
        """Move simulated time forward by `seconds` at once."""
        return self._clock(await self._call("POST", "/clock/advance", {"seconds": seconds}))

    async def set_speed(self, speed: float) -> ClockView:
        """Simulated seconds per wall second from now on (0 freezes the clock)."""
        return self._clock(await self._call("POST", "/clock/speed", {"speed": speed}))

    # --- faults -------------------------------------------------------------------

    async def set_faults(
        self,
        *,
        operation: str | None = None,
        rate: float | None = None,
        burst: float | None = None,
        retry_after_ms: int | None = None,
        throttle_status: Literal[400, 429] = 400,
        server_error_share: float = 0.0,
        server_error_code: Literal["InternalError", "ServiceUnavailable"] = "InternalError",
        latency_seconds: float = 0.0,
        malformed_share: float = 0.0,
        truncated_share: float = 0.0,
        drop_share: float = 0.0,
        log_error_share: float = 0.0,
        log_error_code: str = "1000001",
        expired_url_share: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Replace the fault rule of `operation` (or the global rule when None).

        An operation's own rule takes precedence over the global one. Shares (0..1) are
        spread evenly: 0.25 hits exactly every fourth request.
        """
        rule = _camel(
            {
                "operation": operation,
                "rate": rate,
                "burst": burst,
                "retry_after_ms": retry_after_ms,
                "throttle_status": throttle_status,
                "server_error_share": server_error_share,
                "server_error_code": server_error_code,
                "latency_seconds": latency_seconds,
                "malformed_share": malformed_share,
                "truncated_share": truncated_share,
                "drop_share": drop_share,
                "log_error_share": log_error_share,
                "log_error_code": log_error_code,
                "expired_url_share": expired_url_share,
            }
        )
        result = await self._call("PUT", "/faults", rule)
        faults: list[dict[str, Any]] = result["faults"]
        return faults

    async def clear_faults(self, operation: str | None = None) -> None:
        """Clear one operation's rule, or all of them."""
        params = {"operation": operation} if operation else None
        await self._call("DELETE", "/faults", params=params)

    async def faults(self) -> list[dict[str, Any]]:
        result = await self._call("GET", "/faults")
        faults: list[dict[str, Any]] = result["faults"]
        return faults

    # --- counters -----------------------------------------------------------------

    async def counters(self, workspace_id: str | None = None) -> Counts:
        """Requests per operation and outcome, globally or for one workspace."""
        params = {"workspaceId": workspace_id} if workspace_id else None
        data = await self._call("GET", "/counters", params=params)
        return Counts(data["operations"], int(data["total"]), int(data["since"]))

    async def reset_counters(self) -> None:
        await self._call("DELETE", "/counters")

    # --- keys ---------------------------------------------------------------------

    async def add_key(
        self,
        access_key_id: str,
        access_key_secret: str,
        security_token: str | None = None,
        *,
        token_expires_in_seconds: float | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST",
            "/keys",
            {
                "accessKeyId": access_key_id,
                "accessKeySecret": access_key_secret,
                "securityToken": security_token,
                "tokenExpiresInSeconds": token_expires_in_seconds,
            },
        )
        return result

    async def revoke_key(
        self, access_key_id: str, mode: Literal["deleted", "inactive"] = "deleted"
    ) -> None:
        """Make the key invalid.

        `mode` "deleted" answers InvalidAccessKeyId.NotFound, "inactive" answers
        InvalidAccessKeyId.Inactive.
        """
        await self._call("POST", f"/keys/{access_key_id}/revoke", {"mode": mode})

    async def restore_key(self, access_key_id: str) -> None:
        """Make a revoked key (or an expired STS token) valid again."""
        await self._call("POST", f"/keys/{access_key_id}/restore")

    async def expire_token(self, access_key_id: str) -> None:
        """From now on the key's STS token answers InvalidSecurityToken.Expired."""
        await self._call("POST", f"/keys/{access_key_id}/expire-token")

    # --- freshness ----------------------------------------------------------------

    async def changes(self, since_ms: int = 0) -> list[Change]:
        """Objects whose visible state changed after `since_ms` (wall), deletions included."""
        data = await self._call("GET", "/changes", params={"since": str(since_ms)})
        return [
            Change(
                item["kind"],
                item["workspaceId"],
                item["id"],
                int(item["changedAt"]),
                bool(item["deleted"]),
            )
            for item in data["changes"]
        ]
