"""When the engine may request another page ahead of its parser (pure: no I/O).

Pages are requested ahead of the parser; their bodies wait, received but not
yet parsed, in a buffer bounded in bytes. Body sizes are known only once they
arrive, so a request is started only while the bytes buffered plus one body
as large as the largest seen so far, for each request in flight and the new
one, fit in the bound. The buffer then never exceeds the bound unless a body
is larger than every body received before it was requested (call-history
pages are within a few percent of each other), and one page may always be
fetched when nothing is buffered or in flight (a single page larger than the
bound still gets through).
"""

from __future__ import annotations

__all__ = ["BUFFER_BYTES", "may_request"]

#: Bodies received and not yet parsed, at most, in bytes: 32 MiB, about 36
#: call-history pages of 1000 records (a page is about 0.9 MB).
BUFFER_BYTES = 32 * 2**20


def may_request(*, in_flight: int, buffered: int, largest: int, lookahead: int, limit: int) -> bool:
    """True when one more page may be requested: fewer than *lookahead* in
    flight, and *buffered* bytes plus ``in_flight + 1`` bodies of *largest*
    bytes within *limit* (or nothing buffered and nothing in flight)."""
    if in_flight >= lookahead:
        return False
    if in_flight == 0 and buffered == 0:
        return True
    return buffered + (in_flight + 1) * largest <= limit
