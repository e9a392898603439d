"""Events for ``on_event``: what a client does, as small typed values.

``CCRMClient(on_event=callback)`` (and ``IntumClient``) calls *callback* with
one of these for every attempt, retry, rate-limit pause, page and finished
pull. Each has a ``kind`` string to switch on::

    request     one HTTP attempt ended: method, route, status (None when no
                answer came), attempt (1-based), elapsed (seconds), error
    retry       a failed attempt will be tried again after delay seconds
    rate_limit  the API's rate-limit answer: every request of the client waits
                cooldown seconds, then at most concurrency run at once
    page        a page of a paged endpoint was received and parsed
    pull        a pull ended (done, failed or closed): its PullStats

Events carry routes (``/publicApi/callHistory``), never query values, request
bodies or response data, so they can be exported as metrics labels as they
are. The callback runs synchronously in the event loop, so it should be quick
(count, append to a queue); an exception it raises is logged (at WARNING, on
the ``ccrm_async`` logger) and never breaks the request that triggered it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

if TYPE_CHECKING:
    from .pagination import PullStats

__all__ = [
    "Event",
    "EventCallback",
    "PageEvent",
    "PullEvent",
    "RateLimitEvent",
    "RequestEvent",
    "RetryEvent",
    "emit",
]

log = logging.getLogger("ccrm_async")


@attrs.frozen
class RequestEvent:
    """One HTTP attempt ended.

    ``status`` is the HTTP status, or ``None`` when no answer came (``error``
    then says why); ``attempt`` counts from 1; ``elapsed`` is the attempt's
    duration in seconds (waiting for a slot excluded); ``error`` is the error
    class name when the attempt failed (``"ServerError"``), else ``None``.
    """

    method: str
    route: str
    status: int | None
    attempt: int
    elapsed: float
    error: str | None = None
    kind: Literal["request"] = attrs.field(default="request", init=False)


@attrs.frozen
class RetryEvent:
    """Attempt ``attempt`` failed with ``reason``; the next starts in ``delay`` seconds."""

    method: str
    route: str
    attempt: int
    delay: float
    reason: str
    kind: Literal["retry"] = attrs.field(default="retry", init=False)


@attrs.frozen
class RateLimitEvent:
    """A rate-limit answer: the whole client pauses ``cooldown`` seconds, then
    runs at most ``concurrency`` requests at once (halved, growing back later)."""

    method: str
    route: str
    cooldown: float
    concurrency: int
    kind: Literal["rate_limit"] = attrs.field(default="rate_limit", init=False)


@attrs.frozen
class PageEvent:
    """Page ``number`` (from 1) of ``route`` arrived with ``records`` records;
    ``total`` is the total the API stated, ``None`` when it states none."""

    route: str
    number: int
    records: int
    total: int | None
    kind: Literal["page"] = attrs.field(default="page", init=False)


@attrs.frozen
class PullEvent:
    """A pull of ``route`` ended; ``stats`` is a copy of its final
    :class:`~ccrm_async.PullStats`. ``completed`` is False when it failed or
    was closed before its last record."""

    route: str
    stats: PullStats
    completed: bool
    kind: Literal["pull"] = attrs.field(default="pull", init=False)


Event: TypeAlias = RequestEvent | RetryEvent | RateLimitEvent | PageEvent | PullEvent
EventCallback: TypeAlias = Callable[[Event], object]


def emit(callback: EventCallback | None, event: Event) -> None:
    """Hand *event* to *callback*; an exception it raises is logged, not raised."""
    if callback is None:
        return
    try:
        callback(event)
    except Exception as exc:
        log.warning(
            "on_event callback raised %s on a %r event; ignored", type(exc).__name__, event.kind
        )
        log.debug("the on_event callback's traceback", exc_info=True)
