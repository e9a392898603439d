"""Prometheus metrics of the lookup (the optional extra ``ccrm-async[metrics]``).

:class:`LookupMetrics` keeps its metrics in a registry of its own (never the
process-wide default one, so two services in one process do not collide):

- ``thulium_lookups_total{result}``: answered lookups by result: ``found``
  (200), ``not_found`` (404), ``invalid`` (400), ``unauthorized`` (401),
  ``forbidden`` (403), ``rate_limited`` (429), ``failed`` (an unexpected
  error answered with the fallback status);
- ``thulium_lookup_duration_seconds``: a histogram of the time to answer;
- ``thulium_directory_contacts`` and ``thulium_directory_numbers``: the
  size of the data being served;
- ``thulium_directory_age_seconds``: seconds since that data was built (a
  refresh that keeps failing shows as a growing age).

prometheus-client is imported only when a :class:`LookupMetrics` is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .directory import ContactDirectory

__all__ = ["RESULTS", "LookupMetrics"]

#: The ``result`` label of each answer status.
RESULTS: dict[int, str] = {
    200: "found",
    404: "not_found",
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    429: "rate_limited",
}
_FAILED = "failed"
#: Histogram buckets, in seconds: a lookup takes well under a millisecond.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LookupMetrics:
    """The lookup's metrics for *directory*; *clock* gives seconds since the
    epoch (for the age of the data). Raises :class:`ImportError` naming the
    extra to install when prometheus-client is missing."""

    def __init__(
        self, directory: ContactDirectory, *, clock: Callable[[], float] = time.time
    ) -> None:
        try:
            import prometheus_client as prometheus
        except ImportError:
            raise ImportError(
                "metrics need prometheus-client: pip install 'ccrm-async[metrics]'"
            ) from None
        self._prometheus = prometheus
        self.registry = prometheus.CollectorRegistry(auto_describe=True)
        self.lookups = prometheus.Counter(
            "thulium_lookups",
            "Lookups answered, by result.",
            ["result"],
            registry=self.registry,
        )
        for result in [*RESULTS.values(), _FAILED]:
            self.lookups.labels(result)  # every result shows, from 0
        self.latency = prometheus.Histogram(
            "thulium_lookup_duration_seconds",
            "Time to answer a lookup, in seconds.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        prometheus.Gauge(
            "thulium_directory_contacts",
            "Contacts in the directory being served.",
            registry=self.registry,
        ).set_function(lambda: directory.stats.contacts)
        prometheus.Gauge(
            "thulium_directory_numbers",
            "Distinct phone numbers in the directory being served.",
            registry=self.registry,
        ).set_function(lambda: directory.stats.numbers)
        prometheus.Gauge(
            "thulium_directory_age_seconds",
            "Seconds since the directory being served was built or refreshed.",
            registry=self.registry,
        ).set_function(lambda: max(0.0, clock() - directory.stats.built_at))

    def observe(self, status: int, seconds: float, *, failed: bool = False) -> None:
        """Count one answer with *status* that took *seconds*."""
        result = _FAILED if failed else RESULTS.get(status, _FAILED)
        self.lookups.labels(result).inc()
        self.latency.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        body: bytes = self._prometheus.generate_latest(self.registry)
        return body, self._prometheus.CONTENT_TYPE_LATEST
