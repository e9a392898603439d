"""Configuration values: frozen, comparable, safe to log and to pickle.

None of these hold a secret; the API key lives in :class:`Secret`, whose
``repr`` is redacted and which refuses to be pickled.
"""

from __future__ import annotations

import attrs

from .errors import ConfigurationError

__all__ = ["RetryPolicy", "Secret", "Timeouts"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigurationError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class Timeouts:
    """Timeouts of one HTTP attempt, in seconds.

    - ``connect`` (10 s): to get a connection from the pool and open it.
    - ``sock_read`` (60 s): the longest silence while reading a response.
    - ``total`` (300 s): one whole attempt, so that a body dripping a byte at a
      time cannot hang a pull. ``None`` disables it.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    sock_read: float = attrs.field(default=60.0, validator=_positive)
    total: float | None = attrs.field(default=300.0, validator=_positive)


@attrs.frozen
class RetryPolicy:
    """When and how long to retry a request. The numbers are the defaults.

    Retried: connection errors, timeouts, 5xx, bodies that are not JSON, and the
    rate-limit 403 (recognised by its message). Never retried: 401, any other
    403, 404, 400/422, ``"success": false``; nor a non-idempotent request (a
    create) once its bytes may have reached the server.

    - ``max_attempts`` (5): attempts per request, the first included.
    - ``backoff_base`` (0.5 s) and ``backoff_cap`` (30 s): the wait before retry
      *n* is uniform in ``[0, min(cap, base * 2**(n-1))]`` ("full jitter").
    - ``deadline`` (120 s): total time budget of one request, waits included.
    - ``max_retry_after`` (60 s): a ``Retry-After`` above this fails at once
      with :class:`~ccrm_async.RateLimitError` instead of sleeping.
    - ``rate_limit_cooldown`` (2 s): after a rate-limit answer, *every* request of
      the client waits this long (or ``Retry-After`` when given and longer).
    - ``ramp_hold`` (10 s): after a rate-limit answer the client's concurrency is
      halved and held there this long before it grows again, by one per streak
      of successes as long as the current limit.
    - ``quota_capacity`` (500) and ``quota_retry_cost`` (5): a client-wide retry
      budget; each retry spends ``quota_retry_cost``, each success refunds 1.
      When it is empty, failures are raised at once instead of retried, so an
      outage cannot turn into a retry storm.
    """

    max_attempts: int = attrs.field(default=5)
    backoff_base: float = attrs.field(default=0.5, validator=_positive)
    backoff_cap: float = attrs.field(default=30.0, validator=_positive)
    deadline: float = attrs.field(default=120.0, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)
    rate_limit_cooldown: float = attrs.field(default=2.0, validator=_positive)
    ramp_hold: float = attrs.field(default=10.0)
    quota_capacity: int = attrs.field(default=500)
    quota_retry_cost: int = attrs.field(default=5)

    @max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ConfigurationError(f"max_attempts must be >= 1, got {value!r}")

    @classmethod
    def no_retries(cls) -> RetryPolicy:
        """A policy that tries each request once."""
        return cls(max_attempts=1)


class Secret:
    """A string that does not show itself: ``repr``, ``str`` and ``format`` print
    ``'***'``, and pickling is refused. ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")
