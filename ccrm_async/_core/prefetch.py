"""When the engine may request another page ahead of its parser (pure: no I/O).

Pages are requested ahead of the parser; their bodies wait, received but not
yet parsed, in a buffer. Two bounds hold:

- per pull, pages: the pages requested and not yet taken by the parser (in
  flight, or received and waiting) stay below the pull's *lookahead* (the
  client's ``concurrency + 2``): a parser slower than the network keeps at
  most that many pages ahead, never more (more would only fill memory, not
  speed it up);
- per client, bytes: body sizes are known only once they arrive, so a request
  is started only while the bytes buffered (by every pull of the client, each
  window opened ahead included) plus one body as large as the largest seen so
  far, for each request in flight and the new one, fit in :data:`BUFFER_BYTES`.
  The buffer then never exceeds the bound unless a body is larger than every
  body received before it was requested (call-history pages are within a few
  percent of each other), and one page may always be fetched when the pull
  has nothing buffered or in flight (a single page larger than the bound
  still gets through).
"""

from __future__ import annotations

__all__ = ["BUFFER_BYTES", "may_request", "within_lookahead"]

#: Bodies received and not yet parsed, at most, in bytes: 32 MiB, about 36
#: call-history pages of 1000 records (a page is about 0.9 MB).
BUFFER_BYTES = 32 * 2**20


def within_lookahead(*, in_flight: int, waiting: int, lookahead: int) -> bool:
    """True when the pull has fewer than *lookahead* pages requested and not
    yet taken (*in_flight* plus *waiting* bodies)."""
    return in_flight + waiting < lookahead


def may_request(
    *, in_flight: int, waiting: int, buffered: int, largest: int, lookahead: int, limit: int
) -> bool:
    """True when one more page may be requested: within the pull's *lookahead*,
    and *buffered* bytes plus ``in_flight + 1`` bodies of *largest* bytes
    within *limit* (or nothing buffered and nothing in flight)."""
    if not within_lookahead(in_flight=in_flight, waiting=waiting, lookahead=lookahead):
        return False
    if in_flight == 0 and buffered == 0:
        return True
    return buffered + (in_flight + 1) * largest <= limit
