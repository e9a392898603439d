"""Fetching apart from parsing: the buffer of received bodies stays within its
byte bound while the parser is slow, and records still come out in order, once."""

from __future__ import annotations

import asyncio

import pytest

from ccrm_async import ServerError
from ccrm_async._core.prefetch import may_request
from ccrm_async.pagination import ByteBudget, Page, PageSource, PullStats, paginate

PAGE = 1000  # records a page (the API's page size)


def test_may_request_counts_bodies_in_flight_as_the_largest_seen() -> None:
    def ok(in_flight: int, buffered: int) -> bool:
        return may_request(
            in_flight=in_flight, buffered=buffered, largest=100, lookahead=4, limit=500
        )

    assert ok(0, 0) and ok(0, 400) and not ok(0, 401)
    assert ok(2, 200) and not ok(2, 201)
    assert not ok(4, 0)  # the lookahead bounds requests whatever the bytes
    # A single body larger than the bound still gets through when nothing waits.
    assert may_request(in_flight=0, buffered=0, largest=10**9, lookahead=1, limit=1)


class _Source:
    """Pages of *pages* x 1000 records (ints), each body *size* bytes; counts
    the bytes received and not yet parsed, at every arrival."""

    def __init__(self, pages: int, size: int, *, fail_on: int | None = None) -> None:
        self.pages = pages
        self.size = size
        self.fail_on = fail_on
        self.received = self.parsed = self.peak = 0
        self.requested: list[int] = []

    async def fetch(self, number: int) -> bytes:
        self.requested.append(number)
        await asyncio.sleep(0)
        if number == self.fail_on:
            raise ServerError("boom", status=500)
        self.received += self.size
        self.peak = max(self.peak, self.received - self.parsed)
        return bytes(self.size)

    def parse(self, body: bytes, number: int) -> Page[int]:
        self.parsed += len(body)
        first = (number - 1) * PAGE
        return Page(number, list(range(first, first + PAGE)), self.pages * PAGE)

    async def refetch(self, number: int, _error: Exception) -> Page[int]:
        return self.parse(await self.fetch(number), number)

    def source(self) -> PageSource[int]:
        return PageSource(self.fetch, self.parse, self.refetch)


async def _slow_consumer(source: _Source, *, limit: int, lookahead: int) -> list[int]:
    out: list[int] = []
    pull = paginate(
        source.source(),
        key=lambda r: r,
        stats=PullStats(),
        lookahead=lookahead,
        budget=ByteBudget(limit),
    )
    async for record in pull:
        out.append(record)
        if record % PAGE == 0:  # the consumer works a while on each page
            for _ in range(40):
                await asyncio.sleep(0)
    return out


@pytest.mark.parametrize(("size", "limit", "lookahead"), [(1000, 5000, 8), (700, 5000, 2)])
async def test_the_buffer_never_exceeds_its_bound(size: int, limit: int, lookahead: int) -> None:
    source = _Source(pages=30, size=size)
    out = await _slow_consumer(source, limit=limit, lookahead=lookahead)
    assert out == list(range(30 * PAGE))  # in order, once
    assert source.requested == list(range(1, 31))  # each page requested once, in order
    assert source.peak <= limit
    # ... and fetching ran ahead of the slow parser up to that bound.
    assert source.peak > limit - (lookahead + 1) * size


async def test_a_body_larger_than_the_bound_still_gets_through() -> None:
    source = _Source(pages=4, size=5000)
    assert await _slow_consumer(source, limit=1000, lookahead=8) == list(range(4 * PAGE))
    assert source.peak == 5000  # one body at a time


async def test_a_failed_fetch_ahead_stops_the_pull() -> None:
    source = _Source(pages=30, size=10, fail_on=5)
    with pytest.raises(ServerError):
        await _slow_consumer(source, limit=10**6, lookahead=8)
    assert max(source.requested) <= 5 + 8
