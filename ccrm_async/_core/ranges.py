"""HTTP byte ranges, for resuming a download: pure functions."""

from __future__ import annotations

import re

import attrs

__all__ = ["ContentRange", "parse_content_range", "parse_range_request"]

_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
_RANGE_REQUEST = re.compile(r"^bytes=(\d+)-$")


@attrs.frozen
class ContentRange:
    """A ``Content-Range`` header: ``start``-``end`` (inclusive) of ``total``
    bytes; ``start``/``end`` are None for ``bytes */total``, ``total`` None for
    ``/*``."""

    start: int | None
    end: int | None
    total: int | None


def parse_content_range(value: str | None) -> ContentRange | None:
    """``bytes 100-199/1000`` or ``bytes */1000``; None when absent or malformed."""
    if value is None:
        return None
    match = _CONTENT_RANGE.match(value.strip())
    if match is None:
        return None
    start, end, total = match.groups()
    parsed = ContentRange(
        start=int(start) if start is not None else None,
        end=int(end) if end is not None else None,
        total=int(total) if total != "*" else None,
    )
    if parsed.start is not None and parsed.end is not None and parsed.end < parsed.start:
        return None
    return parsed


def parse_range_request(value: str | None) -> int | None:
    """The offset of an open-ended ``Range: bytes=N-``; None for anything else."""
    if value is None:
        return None
    match = _RANGE_REQUEST.match(value.strip())
    return int(match.group(1)) if match else None
