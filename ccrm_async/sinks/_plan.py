"""The plan of a bulk pull: its range, its date windows and their size (pure).

A long range is pulled one window after another, so that a crash or Ctrl-C
loses at most the window in progress. Windows are aligned to multiples of
their size counted from Monday 2000-01-03 00:00:00 (a day-long window runs
from midnight to midnight, a week from Monday), so pulls of overlapping ranges
share their whole windows, and a resumed pull plans the same windows again.
Bounds are inclusive and to the second, as the API reads ``dateFrom`` and
``dateTo``: a window ends one second before the next one starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import attrs

from .._core.dates import format_datetime

__all__ = [
    "ALIGN_ORIGIN",
    "PullQuery",
    "Window",
    "format_duration",
    "iter_windows",
    "parse_duration",
    "plan_windows",
]

#: Windows are aligned to multiples of their size from this moment (a Monday).
ALIGN_ORIGIN = datetime(2000, 1, 3)

_SECOND = timedelta(seconds=1)

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_PART = re.compile(r"\s*(\d+)\s*([a-z]+)\s*")


@attrs.frozen(order=True)
class Window:
    """One slice of a pull: ``start`` to ``end``, both inclusive, naive account time."""

    start: datetime
    end: datetime

    @property
    def wire(self) -> tuple[str, str]:
        """The two ``YYYY-MM-DD HH:MM:SS`` strings sent as ``dateFrom``/``dateTo``."""
        return format_datetime(self.start), format_datetime(self.end)

    def __str__(self) -> str:
        start, end = self.wire
        return f"{start} .. {end}"


@attrs.frozen
class PullQuery:
    """What a pull asks for: calls from ``date_from`` to ``date_to`` (inclusive,
    naive account time, whole seconds), in windows of ``window`` (1 day), with
    their notes or not (False)."""

    date_from: datetime
    date_to: datetime
    window: timedelta = timedelta(days=1)
    notes: bool = False

    def windows(self) -> list[Window]:
        """The windows to pull, oldest first (see :func:`plan_windows`)."""
        return plan_windows(self.date_from, self.date_to, self.window)


def parse_duration(text: str) -> timedelta:
    """``"1d"``, ``"6h"``, ``"90m"``, ``"1h30m"``, ``"1 day"``, ``"2 weeks"`` as a timedelta.

    Units: s, m (minutes), h, d, w and their long names. A bare number has no
    unit and is refused. Raises :class:`ValueError` with a readable message.
    """
    folded = text.strip().lower()
    position = 0
    seconds = 0
    while position < len(folded):
        match = _PART.match(folded, position)
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(
                f"not a duration: {text!r} (use a number and a unit: 30m, 6h, 1d, 1w, 1h30m)"
            )
        seconds += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not folded:
        raise ValueError("not a duration: an empty string")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """A duration the way :func:`parse_duration` reads it: ``1d``, ``6h``, ``1h30m``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _next_boundary(moment: datetime, size: timedelta) -> datetime:
    steps = (moment - ALIGN_ORIGIN) // size + 1
    return ALIGN_ORIGIN + steps * size


def iter_windows(start: datetime, end: datetime, size: timedelta) -> Iterator[Window]:
    """The windows of ``start`` to ``end`` (inclusive), oldest first; see :func:`plan_windows`."""
    if size < _SECOND or size % _SECOND:
        raise ValueError(f"a window must be a whole number of seconds >= 1, got {size}")
    start = start.replace(microsecond=0)
    end = end.replace(microsecond=0)
    while start <= end:
        stop = min(_next_boundary(start, size) - _SECOND, end)
        yield Window(start, stop)
        start = stop + _SECOND


def plan_windows(start: datetime, end: datetime, size: timedelta) -> list[Window]:
    """Split ``start``..``end`` (inclusive, whole seconds) into aligned windows of *size*.

    The first and last windows are cut to the range; none is empty, none
    overlaps, and together they cover every second of the range once. An
    empty list when ``start > end``.
    """
    return list(iter_windows(start, end, size))
