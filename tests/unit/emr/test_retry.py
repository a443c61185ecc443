"""RetryPolicy.decide: which failures are tried again, and when."""

from __future__ import annotations

import pytest

from rayref.emr.errors import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    CredentialsError,
    EmrConnectionError,
    EmrError,
    InvalidResponseError,
    NotFoundError,
    ServerError,
    ThrottledError,
)
from rayref.emr.retry import RetryPolicy

MAX = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=8.0, jitter=lambda: 1.0)
NONE = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=8.0, jitter=lambda: 0.0)


@pytest.mark.parametrize(
    "error",
    [ServerError("x"), EmrConnectionError("x"), ThrottledError("x")],
    ids=lambda e: type(e).__name__,
)
def test_transient_errors_are_retried_with_capped_exponential_backoff(error: EmrError) -> None:
    assert [MAX.decide(n, error) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, None]


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("x"),
        AccessDeniedError("x"),
        NotFoundError("x"),
        InvalidResponseError("x"),
        BadRequestError("x"),
        CredentialsError("x"),
        ValueError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    assert MAX.decide(1, error) is None


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0)
    for attempt in range(1, 10):
        for _ in range(50):
            delay = policy.decide(attempt, ServerError("x"))
            assert delay is not None
            assert 0.0 <= delay <= min(3.0, 0.5 * 2 ** (attempt - 1))
    assert NONE.decide(3, ServerError("x")) == 0.0


def test_retry_after_is_a_lower_bound() -> None:
    assert NONE.decide(1, ThrottledError("x", retry_after=2.5)) == 2.5
    assert MAX.decide(3, ThrottledError("x", retry_after=0.5)) == 4.0


def test_too_long_a_retry_after_gives_up() -> None:
    policy = RetryPolicy(max_retry_after=10.0)
    assert policy.decide(1, ThrottledError("x", retry_after=30.0)) is None


def test_single_attempt_policy_never_retries() -> None:
    assert RetryPolicy(max_attempts=1).decide(1, ServerError("x")) is None
