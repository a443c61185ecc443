"""The probes' endpoints: `/healthz` (liveness) and `/readyz` (readiness).

Liveness says only that the event loop answers: restarting the operator because one
watch cannot list (a namespace whose RBAC is missing, a ref the API server cannot
decode) would stop every other tenant's refs too. Readiness fails while a watch of the
refs is stalled (`kube.watch.WatchHealth`), so a person sees it (the pod is not Ready,
`kubectl describe` names the failing probe) while the operator goes on serving the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from rayref.kube.watch import WATCH_HEALTH, WatchHealth

# The /healthz body; None while the process is still starting (answered 503).
Body = Callable[[], Mapping[str, Any] | None]


def readiness(health: WatchHealth = WATCH_HEALTH) -> web.Response:
    stalled = health.stalled()
    body = {"ready": not stalled, "stalledWatches": stalled}
    return web.Response(
        status=503 if stalled else 200,
        body=json.dumps(body).encode(),
        content_type="application/json",
    )


def add_readiness(app: web.Application, health: WatchHealth = WATCH_HEALTH) -> None:
    async def readyz(_: web.Request) -> web.Response:
        return readiness(health)

    app.router.add_get("/readyz", readyz)


async def serve_health(
    port: int, body: Body, health: WatchHealth = WATCH_HEALTH
) -> web.AppRunner | None:
    """`/healthz` (answers while the event loop runs) and `/readyz` on `port` (0: none)."""
    if not port:
        return None

    async def healthz(_: web.Request) -> web.Response:
        answer = body()
        return web.Response(
            status=503 if answer is None else 200,
            body=json.dumps(answer or {"starting": True}).encode(),
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    add_readiness(app, health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 (the kubelet probes it)
    return runner
