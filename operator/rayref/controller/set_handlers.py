"""kopf glue of the sets: watch events of sets feed `refsets.RefSets` (the refs reach
its index through the operator's own watches: `controller.handlers.follow_refs`).

These only watch (`on.event`): no finalizer, nothing stored in the objects; the sets'
work starts with the refs' polling (at once, or when a warm standby becomes leader:
`memo["leading"]`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from rayref.api.kinds import GROUP, SET_PLURALS, VERSION
from rayref.controller.runtime import Runtime


def register_sets(registry: kopf.OperatorRegistry) -> None:
    @kopf.on.startup(registry=registry)
    async def start_sets(memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is None or runtime.refsets is None:
            return
        leading: asyncio.Event | None = memo.get("leading")
        if leading is None:
            runtime.refsets.start()
        else:
            runtime.background.append(asyncio.create_task(_start_when(leading, runtime)))

    for kind, plural in SET_PLURALS.items():
        _register_set_events(registry, kind, plural)


async def _start_when(leading: asyncio.Event, runtime: Runtime) -> None:
    await leading.wait()
    if runtime.refsets is not None:
        runtime.refsets.start()


def _register_set_events(registry: kopf.OperatorRegistry, kind: str, plural: str) -> None:
    @kopf.on.event(GROUP, VERSION, plural, id=f"observe-{plural}", registry=registry)
    async def observe_set(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is not None and runtime.refsets is not None:
            runtime.refsets.observe_set(kind, event)
