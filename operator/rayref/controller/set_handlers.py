"""kopf glue of the sets: watch events of sets and refs feed `refsets.RefSets`.

Like the refs' handlers these only watch (`on.event`): no finalizer, nothing stored in the
objects; the sets' work starts with the refs' polling (at once, or when a warm standby
becomes leader: `memo["leading"]`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from rayref.api.kinds import GROUP, PLURALS, SET_PLURALS, VERSION
from rayref.controller.runtime import Runtime


def register_sets(registry: kopf.OperatorRegistry, *, index_refs: bool = True) -> None:
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
    if index_refs:  # else the slots' own watches feed the index (controller.handlers)
        for kind, plural in PLURALS.items():
            _register_ref_events(registry, kind, plural)


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


def _register_ref_events(registry: kopf.OperatorRegistry, kind: str, plural: str) -> None:
    @kopf.on.event(GROUP, VERSION, plural, id=f"index-{plural}", registry=registry)
    async def index_ref(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
        runtime: Runtime | None = memo.get("runtime")
        if runtime is not None and runtime.refsets is not None:
            runtime.refsets.observe_ref(kind, event)
