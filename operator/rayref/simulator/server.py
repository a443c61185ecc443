"""The aiohttp application and the serve loop of `rayref simulate`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aiohttp import web

from rayref.simulator.api import ApiHandler
from rayref.simulator.control_api import ControlApi
from rayref.simulator.object_store import PREFIX as OBJECT_STORE_PREFIX
from rayref.simulator.scenario import Scenario
from rayref.simulator.state import SimulatorState

CONTROL_PREFIX = "/_sim/v1"

log = logging.getLogger(__name__)


class ListenError(OSError):
    """The simulator cannot listen where it was asked to (port taken, unknown host)."""


def build_app(state: SimulatorState) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app.add_subapp(CONTROL_PREFIX, ControlApi(state).app())
    # GetRayLog's download URLs (docs/simulator.md, Logs): not signed the API's way
    app.router.add_route("GET", OBJECT_STORE_PREFIX + "{tail:.*}", state.object_store)
    app.router.add_route("*", "/{tail:.*}", ApiHandler(state))
    return app


async def serve(
    scenario: Scenario,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    speed: float | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT); announce the bound port on stdout."""
    state = SimulatorState(scenario, speed)
    # no access log: it would cost more than answering a GetRayJob
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        # asyncio words a bind error at length; the errno says it in three words
        errno = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else None
        reason = (os.strerror(errno) if errno else exc.strerror or str(exc)).lower()
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    sys.stdout.write(f"rayref-simulator listening on http://{shown_host}:{bound_port}\n")
    sys.stdout.flush()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("simulator stopping")
        await runner.cleanup()
