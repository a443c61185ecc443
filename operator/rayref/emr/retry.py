"""When to try a failed request again, and after how long."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from rayref.emr.errors import EmrError, ThrottledError


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter.

    Retries throttling, 5xx and connection errors (the error classes marked
    `retryable`); never authentication, access, not-found or invalid responses,
    which another attempt cannot fix. A server's retry-after hint is a lower bound.
    """

    max_attempts: int = 4  # including the first
    base_delay: float = 0.25
    max_delay: float = 20.0
    # A hint longer than this is not waited for: the caller's next poll will do.
    max_retry_after: float = 60.0
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def decide(self, attempt: int, error: BaseException) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up.

        `attempt` counts the attempts made so far (1 after the first failure).
        """
        if attempt >= self.max_attempts:
            return None
        if not isinstance(error, EmrError) or not error.retryable:
            return None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay: float = self.jitter() * ceiling
        if isinstance(error, ThrottledError) and error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            delay = max(delay, error.retry_after)
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)
