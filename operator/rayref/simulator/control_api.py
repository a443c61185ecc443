"""The control API under `/_sim/v1/`: no signature, loopback clients only.

Tests, the demo and the benchmarks drive the world through it; see docs/simulator.md
for every route, and `rayref.simulator.control.SimulatorControl` for the client.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from rayref.simulator.faults import OPERATIONS, FaultRule
from rayref.simulator.scenario import KeySpec
from rayref.simulator.specs import ClusterSpec, ClusterUpdate, JobSpec, JobUpdate
from rayref.simulator.state import SimulatorState
from rayref.simulator.world import ClusterRecord, ConflictError, JobRecord

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ResetRequest(_Camel):
    world: bool = True
    faults: bool = True
    counters: bool = True
    keys: bool = True


class AdvanceRequest(_Camel):
    seconds: float = Field(ge=0)


class SpeedRequest(_Camel):
    speed: float = Field(ge=0)


class RevokeRequest(_Camel):
    # "deleted" answers InvalidAccessKeyId.NotFound, "inactive" InvalidAccessKeyId.Inactive
    mode: str = Field("deleted", pattern="^(deleted|inactive)$")


class WorkspaceRequest(_Camel):
    workspace_id: str | None = None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _fail(status: int, message: str) -> web.HTTPException:
    error_class: type[web.HTTPException] = {
        400: web.HTTPBadRequest,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
    }[status]
    return error_class(text=json.dumps({"error": message}), content_type="application/json")


@web.middleware
async def _loopback_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    remote = request.remote or ""
    try:
        loopback = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise _fail(403, "the control API only answers loopback clients")
    try:
        return await handler(request)
    except ValidationError as invalid:
        raise _fail(400, invalid.json()) from None
    except ConflictError as conflict:
        raise _fail(409, str(conflict)) from None
    except ValueError as invalid:
        raise _fail(400, str(invalid)) from None


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except json.JSONDecodeError:
        raise _fail(400, "the body is not JSON") from None


class ControlApi:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_loopback_and_errors])
        r = app.router
        r.add_get("/health", self.health)
        r.add_get("/state", self.overview)
        r.add_post("/reset", self.reset)
        r.add_post("/workspaces", self.create_workspace)
        r.add_post("/workspaces/{ws}/jobs", self.create_jobs)
        r.add_get("/workspaces/{ws}/jobs/{id}", self.get_job)
        r.add_patch("/workspaces/{ws}/jobs/{id}", self.update_job)
        r.add_delete("/workspaces/{ws}/jobs/{id}", self.delete_job)
        r.add_post("/workspaces/{ws}/clusters", self.create_clusters)
        r.add_get("/workspaces/{ws}/clusters/{id}", self.get_cluster)
        r.add_patch("/workspaces/{ws}/clusters/{id}", self.update_cluster)
        r.add_delete("/workspaces/{ws}/clusters/{id}", self.delete_cluster)
        r.add_get("/clock", self.clock)
        r.add_post("/clock/advance", self.advance)
        r.add_post("/clock/speed", self.speed)
        r.add_get("/faults", self.faults)
        r.add_put("/faults", self.set_fault)
        r.add_delete("/faults", self.clear_faults)
        r.add_get("/counters", self.counters)
        r.add_delete("/counters", self.reset_counters)
        r.add_get("/keys", self.keys)
        r.add_post("/keys", self.add_key)
        r.add_post("/keys/{id}/revoke", self.revoke_key)
        r.add_post("/keys/{id}/restore", self.restore_key)
        r.add_post("/keys/{id}/expire-token", self.expire_token)
        r.add_get("/changes", self.changes)
        return app

    # --- general ------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return _json({"ok": True})

    async def overview(self, request: web.Request) -> web.Response:
        world = self.state.world
        return _json(
            {
                "clock": world.clock.describe(),
                "workspaces": {
                    ws.workspace_id: {"jobs": len(ws.jobs), "clusters": len(ws.clusters)}
                    for ws in world.workspaces.values()
                },
                "faults": self.state.faults.describe(),
                "keys": [key.public_view() for key in self.state.keys.values()],
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        wanted = ResetRequest.model_validate(await _body(request))
        if wanted.world:
            self.state.reset_world()
        if wanted.faults:
            self.state.reset_faults()
        if wanted.keys:
            self.state.reset_keys()
        if wanted.counters:
            self.state.counters.reset(self.state.clock.wall_ms())
        return _json({"reset": wanted.model_dump(by_alias=True)})

    async def create_workspace(self, request: web.Request) -> web.Response:
        wanted = WorkspaceRequest.model_validate(await _body(request))
        world = self.state.world
        workspace_id = wanted.workspace_id or world.new_workspace_id()
        world.workspace(workspace_id)
        return _json({"workspaceId": workspace_id}, status=201)

    # --- jobs ---------------------------------------------------------------------

    def _job_view(self, job: JobRecord) -> dict[str, Any]:
        clock = self.state.world.clock
        return {
            "job": job.view(clock.now_ms()),
            "changedAt": job.changed_at(clock),
            "simTime": clock.now_ms(),
            "script": job.script.model_dump(by_alias=True),
        }

    def _job(self, request: web.Request) -> JobRecord:
        ws, job_id = request.match_info["ws"], request.match_info["id"]
        job = self.state.world.job(ws, job_id)
        if job is None:
            raise _fail(404, f"no job {job_id} in workspace {ws}")
        return job

    async def create_jobs(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ws = request.match_info["ws"]
        world = self.state.world
        if isinstance(body, dict) and isinstance(body.get("jobs"), list):
            specs = [JobSpec.model_validate(item) for item in body["jobs"]]
            records = [world.create_job(ws, spec) for spec in specs]
            return _json({"jobs": [self._job_view(job) for job in records]}, status=201)
        record = world.create_job(ws, JobSpec.model_validate(body))
        return _json(self._job_view(record), status=201)

    async def get_job(self, request: web.Request) -> web.Response:
        return _json(self._job_view(self._job(request)))

    async def update_job(self, request: web.Request) -> web.Response:
        job = self._job(request)
        self.state.world.update_job(job, JobUpdate.model_validate(await _body(request)))
        return _json(self._job_view(job))

    async def delete_job(self, request: web.Request) -> web.Response:
        self.state.world.delete_job(self._job(request))
        return _json({"deleted": True})

    # --- clusters -----------------------------------------------------------------

    def _cluster_view(self, cluster: ClusterRecord) -> dict[str, Any]:
        clock = self.state.world.clock
        return {
            "cluster": cluster.view(clock.now_ms()),
            "changedAt": cluster.changed_at(clock),
            "simTime": clock.now_ms(),
            "script": cluster.script.model_dump(by_alias=True),
        }

    def _cluster(self, request: web.Request) -> ClusterRecord:
        ws, cluster_id = request.match_info["ws"], request.match_info["id"]
        cluster = self.state.world.cluster(ws, cluster_id)
        if cluster is None:
            raise _fail(404, f"no cluster {cluster_id} in workspace {ws}")
        return cluster

    async def create_clusters(self, request: web.Request) -> web.Response:
        body = await _body(request)
        ws = request.match_info["ws"]
        world = self.state.world
        if isinstance(body, dict) and isinstance(body.get("clusters"), list):
            specs = [ClusterSpec.model_validate(item) for item in body["clusters"]]
            records = [world.create_cluster(ws, spec) for spec in specs]
            return _json({"clusters": [self._cluster_view(c) for c in records]}, status=201)
        record = world.create_cluster(ws, ClusterSpec.model_validate(body))
        return _json(self._cluster_view(record), status=201)

    async def get_cluster(self, request: web.Request) -> web.Response:
        return _json(self._cluster_view(self._cluster(request)))

    async def update_cluster(self, request: web.Request) -> web.Response:
        cluster = self._cluster(request)
        update = ClusterUpdate.model_validate(await _body(request))
        self.state.world.update_cluster(cluster, update)
        return _json(self._cluster_view(cluster))

    async def delete_cluster(self, request: web.Request) -> web.Response:
        self.state.world.delete_cluster(self._cluster(request))
        return _json({"deleted": True})

    # --- clock --------------------------------------------------------------------

    async def clock(self, request: web.Request) -> web.Response:
        return _json(self.state.world.clock.describe())

    async def advance(self, request: web.Request) -> web.Response:
        wanted = AdvanceRequest.model_validate(await _body(request))
        self.state.world.clock.advance(wanted.seconds)
        return _json(self.state.world.clock.describe())

    async def speed(self, request: web.Request) -> web.Response:
        wanted = SpeedRequest.model_validate(await _body(request))
        self.state.world.clock.set_speed(wanted.speed)
        self.state.speed = wanted.speed
        return _json(self.state.world.clock.describe())

    # --- faults and counters ------------------------------------------------------

    async def faults(self, request: web.Request) -> web.Response:
        return _json({"faults": self.state.faults.describe()})

    async def set_fault(self, request: web.Request) -> web.Response:
        self.state.faults.set(FaultRule.model_validate(await _body(request)))
        return _json({"faults": self.state.faults.describe()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        operation = request.query.get("operation") or None
        if operation is not None and operation not in OPERATIONS:
            raise _fail(400, f"unknown operation {operation}")
        self.state.faults.clear(operation)
        return _json({"faults": self.state.faults.describe()})

    async def counters(self, request: web.Request) -> web.Response:
        workspace_id = request.query.get("workspaceId") or None
        return _json(self.state.counters.snapshot(workspace_id))

    async def reset_counters(self, request: web.Request) -> web.Response:
        self.state.counters.reset(self.state.world.clock.wall_ms())
        return _json(self.state.counters.snapshot())

    # --- keys ---------------------------------------------------------------------

    async def keys(self, request: web.Request) -> web.Response:
        return _json({"keys": [key.public_view() for key in self.state.keys.values()]})

    async def add_key(self, request: web.Request) -> web.Response:
        key = self.state.add_key(KeySpec.model_validate(await _body(request)))
        return _json(key.public_view(), status=201)

    def _key_named(self, request: web.Request) -> Any:
        key_id = request.match_info["id"]
        key = self.state.keys.get(key_id)
        if key is None:
            raise _fail(404, f"no key {key_id}")
        return key

    async def revoke_key(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        key.state = RevokeRequest.model_validate(await _body(request)).mode
        return _json(key.public_view())

    async def restore_key(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        key.state = "active"
        key.token_expired = False
        key.token_expires_at = None
        return _json(key.public_view())

    async def expire_token(self, request: web.Request) -> web.Response:
        key = self._key_named(request)
        if not key.is_sts:
            raise _fail(409, f"key {key.access_key_id} has no security token")
        key.token_expired = True
        return _json(key.public_view())

    # --- freshness ----------------------------------------------------------------

    async def changes(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise _fail(400, "since must be epoch milliseconds") from None
        found = self.state.world.changes(since)
        return _json(
            {
                "now": self.state.world.clock.wall_ms(),
                "changes": [change.as_json() for change in found],
            }
        )
