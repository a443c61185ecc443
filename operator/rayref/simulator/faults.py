"""Injected faults: throttling, 5xx answers, latency, broken JSON, dropped connections.

A rule applies to every operation or to one; an operation's own rule replaces the
global one. Shares are spread deterministically (share 0.25 = every fourth request),
so tests and benchmarks see exact counts rather than luck.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

OPERATIONS = (
    "GetRayJob",
    "GetRayCluster",
    "ListRayJob",
    "ListRayCluster",
    "ListRayLogs",
    "GetRayLog",
)


class FaultRule(BaseModel):
    # finite numbers, and numbers only (not true or "2"): an infinite latency or rate
    # would break every answer
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        allow_inf_nan=False,
        strict=True,
    )

    operation: (
        Literal[
            "GetRayJob", "GetRayCluster", "ListRayJob", "ListRayCluster", "ListRayLogs", "GetRayLog"
        ]
        | None
    ) = None
    # token bucket: requests above `rate` per second (after a burst) are throttled
    # at least one request in 1,000 s: a slower bucket would ask to wait for days
    rate: float | None = Field(None, ge=0.001, le=1_000_000)
    burst: float | None = Field(None, ge=1, le=1_000_000)
    # the x-acs-retry-after value; by default the time until the next token
    retry_after_ms: int | None = Field(None, ge=1, le=86_400_000)
    throttle_status: Literal[400, 429] = 400
    server_error_share: float = Field(0.0, ge=0, le=1)
    server_error_code: Literal["InternalError", "ServiceUnavailable"] = "InternalError"
    latency_seconds: float = Field(0.0, ge=0, le=120)
    malformed_share: float = Field(0.0, ge=0, le=1)
    truncated_share: float = Field(0.0, ge=0, le=1)
    drop_share: float = Field(0.0, ge=0, le=1)
    # the log operations only: HTTP 200 with a `code` other than "1000000" (the envelope's
    # failure), and a GetRayLog URL that has already expired when it is handed out
    log_error_share: float = Field(0.0, ge=0, le=1)
    log_error_code: str = Field("1000001", pattern=r"^[0-9A-Za-z._-]{1,64}$")
    expired_url_share: float = Field(0.0, ge=0, le=1)


class _Share:
    """Fires for exactly `share` of the calls, evenly spread."""

    def __init__(self, share: float) -> None:
        self.share = share
        self._acc = 0.0

    def fire(self) -> bool:
        if self.share <= 0:
            return False
        self._acc += self.share
        if self._acc >= 1.0 - 1e-9:
            self._acc -= 1.0
            return True
        return False


class ActiveFault:
    def __init__(self, rule: FaultRule, monotonic: Callable[[], float]) -> None:
        self.rule = rule
        self._monotonic = monotonic
        self._capacity = rule.burst if rule.burst is not None else max(1.0, rule.rate or 1.0)
        self._tokens = self._capacity
        self._last = monotonic()
        self.server_error = _Share(rule.server_error_share)
        self.malformed = _Share(rule.malformed_share)
        self.truncated = _Share(rule.truncated_share)
        self.drop = _Share(rule.drop_share)
        self.log_error = _Share(rule.log_error_share)
        self.expired_url = _Share(rule.expired_url_share)

    def throttle(self) -> int | None:
        """Milliseconds to wait when this request is over the rate, else None."""
        rate = self.rule.rate
        if rate is None:
            return None
        now = self._monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        if self.rule.retry_after_ms is not None:
            return self.rule.retry_after_ms
        return max(1, math.ceil((1.0 - self._tokens) / rate * 1000))


class FaultBook:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._rules: dict[str | None, ActiveFault] = {}

    def set(self, rule: FaultRule) -> None:
        self._rules[rule.operation] = ActiveFault(rule, self._monotonic)

    def clear(self, operation: str | None = None) -> None:
        """Clear one operation's rule, or every rule when no operation is named."""
        if operation is None:
            self._rules.clear()
        else:
            self._rules.pop(operation, None)

    def for_operation(self, operation: str) -> ActiveFault | None:
        if not self._rules:
            return None
        return self._rules.get(operation) or self._rules.get(None)

    def describe(self) -> list[dict[str, object]]:
        return [
            active.rule.model_dump(by_alias=True, exclude_defaults=True)
            | {"operation": active.rule.operation}
            for active in self._rules.values()
        ]
