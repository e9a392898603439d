import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from ccrm_async import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    RetryPolicy,
    ServerError,
    TransportError,
    ValidationError,
)
from ccrm_async._core.retry import RetryQuota, backoff, next_delay, parse_retry_after

POLICY = RetryPolicy()


def test_defaults_are_the_documented_numbers() -> None:
    assert (POLICY.max_attempts, POLICY.backoff_base, POLICY.backoff_cap) == (5, 0.5, 30.0)
    assert (POLICY.deadline, POLICY.quota_capacity, POLICY.quota_retry_cost) == (120.0, 500, 5)


def test_backoff_shape_with_fixed_rng() -> None:
    """RELIABILITY 4: the wait before retry n lies in [0, min(cap, base * 2**(n-1))]."""
    rng = random.Random(1234)
    for n in range(1, 7):
        ceiling = min(30.0, 0.5 * 2 ** (n - 1))
        waits = [backoff(POLICY, n, rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # full jitter uses the whole range


def test_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    ahead = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(ahead, now) == pytest.approx(7.0, abs=0.1)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_after_is_used_as_the_delay() -> None:
    error = RateLimitError("Request limit has been exceeded")
    delay = next_delay(
        POLICY, error=error, attempt=1, elapsed=0.0, rng=random.Random(0), retry_after=7.0
    )
    assert delay == 7.0


def test_retry_after_above_the_maximum_gives_up() -> None:
    error = RateLimitError("Request limit has been exceeded", retry_after=3600)
    assert (
        next_delay(
            POLICY, error=error, attempt=1, elapsed=0, rng=random.Random(0), retry_after=3600
        )
        is None
    )


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("x", status=401),
        PermissionDeniedError("x", status=403),
        NotFoundError("x", status=404),
        ValidationError("x", status=422),
        ResponseError("success is False"),
    ],
)
def test_never_retried(error: Exception) -> None:
    assert next_delay(POLICY, error=error, attempt=1, elapsed=0, rng=random.Random(0)) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error", [ServerError("x", status=503), TransportError("reset"), RateLimitError("limit")]
)
def test_retried_until_max_attempts(error: Exception) -> None:
    rng = random.Random(0)
    for attempt in range(1, 5):
        assert next_delay(POLICY, error=error, attempt=attempt, elapsed=0, rng=rng) is not None  # type: ignore[arg-type]
    assert next_delay(POLICY, error=error, attempt=5, elapsed=0, rng=rng) is None  # type: ignore[arg-type]


def test_transient_response_error_is_retried() -> None:
    error = ResponseError("body is not JSON")
    error.transient = True
    assert next_delay(POLICY, error=error, attempt=1, elapsed=0, rng=random.Random(0)) is not None


def test_deadline_stops_retries() -> None:
    error = ServerError("x", status=503)
    policy = RetryPolicy(deadline=1.0, backoff_base=10.0, backoff_cap=10.0)
    rng = random.Random(3)
    delays = [next_delay(policy, error=error, attempt=1, elapsed=0.99, rng=rng) for _ in range(50)]
    assert all(d is None or d <= 0.01 for d in delays)


def test_quota_spends_and_refunds() -> None:
    quota = RetryQuota(capacity=10, cost=5)
    assert quota.try_spend() and quota.try_spend()
    assert not quota.try_spend()
    for _ in range(5):
        quota.refund()
    assert quota.try_spend()
    for _ in range(100):
        quota.refund()
    assert quota.available == 10
