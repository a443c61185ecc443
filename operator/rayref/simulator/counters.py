"""Requests counted per operation and outcome (and per workspace), for benchmarks and tests."""

from __future__ import annotations

import collections
from typing import Any

OUTCOMES = (
    "ok",
    "not_found",
    "bad_request",
    "invalid_api",
    "auth_error",
    "throttled",
    "server_error",
    "malformed",
    "truncated",
    "dropped",
)


class Counters:
    def __init__(self) -> None:
        self._totals: collections.Counter[tuple[str, str]] = collections.Counter()
        self._by_workspace: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.since_wall_ms = 0

    def count(self, operation: str, outcome: str, workspace_id: str | None) -> None:
        self._totals[(operation, outcome)] += 1
        if workspace_id is not None:
            self._by_workspace[(workspace_id, operation, outcome)] += 1

    def reset(self, wall_ms: int) -> None:
        self._totals.clear()
        self._by_workspace.clear()
        self.since_wall_ms = wall_ms

    def snapshot(self, workspace_id: str | None = None) -> dict[str, Any]:
        """`{"operations": {op: {outcome: n}}, "total": n, "since": wall ms}`."""
        operations: dict[str, dict[str, int]] = {}
        if workspace_id is None:
            items = [(op, outcome, n) for (op, outcome), n in self._totals.items()]
        else:
            items = [
                (op, outcome, n)
                for (ws, op, outcome), n in self._by_workspace.items()
                if ws == workspace_id
            ]
        for op, outcome, n in items:
            operations.setdefault(op, {})[outcome] = n
        return {
            "operations": operations,
            "total": sum(n for _, _, n in items),
            "since": self.since_wall_ms,
        }
