"""Retry decisions as pure functions: the transport's loop only sleeps.

:func:`next_delay` answers "wait this many seconds, then try again" or "stop"
from the policy, the failed attempt's number, the error, the time spent so far
and a random source. Nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..config import RetryPolicy
from ..errors import CCRMError, RateLimitError, ResponseError, ServerError, TransportError

__all__ = ["RetryQuota", "backoff", "is_retryable", "next_delay", "parse_retry_after"]


def is_retryable(error: CCRMError) -> bool:
    """Whether a failed attempt may be tried again (idempotency aside)."""
    if isinstance(error, TransportError | ServerError | RateLimitError):
        return True
    return isinstance(error, ResponseError) and error.transient


def backoff(policy: RetryPolicy, retry_number: int, rng: random.Random) -> float:
    """Full-jitter wait before retry *retry_number* (1 for the first retry):
    uniform in ``[0, min(cap, base * 2**(retry_number - 1))]``."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (retry_number - 1))
    return rng.uniform(0.0, ceiling)


def next_delay(
    policy: RetryPolicy,
    *,
    error: CCRMError,
    attempt: int,
    elapsed: float,
    rng: random.Random,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or ``None`` to give up.

    *attempt* is the number of the attempt that just failed (1-based) and
    *elapsed* the seconds since the first one started. A ``Retry-After`` above
    ``policy.max_retry_after`` gives up at once (the caller raises the error
    with its ``retry_after``).
    """
    if not is_retryable(error) or attempt >= policy.max_attempts:
        return None
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = retry_after
    else:
        delay = backoff(policy, attempt, rng)
    if elapsed + delay > policy.deadline:
        return None
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns ``None`` for a missing or unreadable header; never negative.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


class RetryQuota:
    """A client-wide retry budget (a token bucket without time refill).

    Each retry spends ``cost`` tokens; each success refunds one, up to the
    capacity. When a retry cannot be paid for, the failure is raised at once:
    during an outage the client stops multiplying its own load.
    """

    def __init__(self, capacity: int, cost: int) -> None:
        self.capacity = capacity
        self.cost = cost
        self.available = capacity

    def try_spend(self) -> bool:
        if self.available < self.cost:
            return False
        self.available -= self.cost
        return True

    def refund(self) -> None:
        self.available = min(self.capacity, self.available + 1)
