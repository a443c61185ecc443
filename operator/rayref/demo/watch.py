"""The live view of the demo: one line per ref (and per cluster node) each time it changes.

Like `kubectl get rayref -w`, a row is printed when what it shows changes; the
header is printed once. Reading is a list of both kinds every second, which costs
the apiserver nothing at this size and needs no watch bookkeeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from rayref.api.kinds import GROUP, JOB_KIND, VERSION
from rayref.demo.samples import SampleRef, state_of

COLUMNS = (("KIND/NAME", 38), ("STATUS", 10), ("CLUSTER", 11), ("READY", 6), ("SYNCED", 7))
MESSAGE_WIDTH = 64


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, str, str, str, str, str]  # the columns above, then MESSAGE


def _condition_status(status: Mapping[str, Any], kind: str) -> str:
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return str(condition.get("status", ""))
    return "-"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _instance_rows(ref: SampleRef, status: Mapping[str, Any]) -> list[Row]:
    rows = []
    prefix = f"{ref.remote_id}-"
    for instance in status.get("instances") or []:
        if not isinstance(instance, Mapping):
            continue
        instance_id = str(instance.get("instanceId", "?"))
        label = f"  {instance.get('type', 'node')} {instance_id.removeprefix(prefix)}"
        notes = []
        if instance.get("reason"):
            notes.append(f"last: {instance['reason']}")
        if instance.get("containerExitCode") is not None:
            notes.append(f"exit {instance['containerExitCode']}")
        rows.append(
            Row(
                f"{ref.kind}/{ref.namespace}/{ref.name}/{instance_id}",
                (
                    label,
                    str(instance.get("phase") or "-"),
                    str(instance.get("containerState") or "-"),
                    "-",
                    "-",
                    ", ".join(notes),
                ),
            )
        )
    return rows


def rows_of(ref: SampleRef, obj: Mapping[str, Any] | None) -> list[Row]:
    """The row of one ref (and, for a cluster, one row per node) as the table shows them."""
    status: Mapping[str, Any] = (obj or {}).get("status") or {}
    key = f"{ref.kind}/{ref.namespace}/{ref.name}"
    name = f"{ref.resource}"
    if obj is None:
        return [Row(key, (name, "(absent)", "-", "-", "-", ""))]
    is_job = ref.kind == JOB_KIND
    cells = (
        name,
        state_of(ref.kind, status) or "-",
        str(status.get("clusterState") or "-") if is_job else "-",
        "-" if is_job else str(status.get("ready") or "-"),
        _condition_status(status, "Synced"),
        str(status.get("message") or ""),
    )
    rows = [Row(key, cells)]
    if not is_job:
        rows += _instance_rows(ref, status)
    return rows


def format_row(cells: tuple[str, ...], clock: str) -> str:
    parts = [clock.ljust(9)]
    for (_, width), cell in zip(COLUMNS, cells, strict=False):
        parts.append(_short(cell, width - 1).ljust(width))
    parts.append(_short(cells[-1], MESSAGE_WIDTH))
    return "".join(parts).rstrip()


def header() -> str:
    return format_row((*(name for name, _ in COLUMNS), "MESSAGE"), "TIME")


@dataclass
class LiveTable:
    """Prints the rows that changed since the last call; remembers every state each ref showed."""

    refs: list[SampleRef]
    emit: Callable[[str], None]
    shown: dict[str, tuple[str, ...]] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    header_printed: bool = False

    def update(self, objects: Mapping[tuple[str, str, str], Mapping[str, Any] | None]) -> None:
        clock = time.strftime("%H:%M:%S")
        for ref in self.refs:
            obj = objects.get((ref.kind, ref.namespace, ref.name))
            state = state_of(ref.kind, (obj or {}).get("status") or {})
            seen = self.history.setdefault(f"{ref.kind}/{ref.namespace}/{ref.name}", [])
            if state and (not seen or seen[-1] != state):
                seen.append(state)
            for row in rows_of(ref, obj):
                if self.shown.get(row.key) == row.cells:
                    continue
                if not self.header_printed:
                    self.emit(header())
                    self.header_printed = True
                self.shown[row.key] = row.cells
                self.emit(format_row(row.cells, clock))


def read_refs(
    api: Any, refs: list[SampleRef]
) -> dict[tuple[str, str, str], Mapping[str, Any] | None]:
    """Every sample ref as the apiserver has it now (None for one that is absent)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    found: dict[tuple[str, str, str], Mapping[str, Any] | None] = {}
    for namespace, plural in sorted({(ref.namespace, ref.plural) for ref in refs}):
        listing = cast(
            "dict[str, Any]",
            custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=10
            ),
        )
        for item in listing.get("items", []):
            meta = item.get("metadata", {})
            found[(str(item.get("kind")), str(meta.get("namespace")), str(meta.get("name")))] = item
    return {
        (ref.kind, ref.namespace, ref.name): found.get((ref.kind, ref.namespace, ref.name))
        for ref in refs
    }
