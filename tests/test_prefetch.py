"""Fetching apart from parsing: the buffer of received bodies stays within its
byte bound while the parser is slow, and records still come out in order, once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

from ccrm_async import ServerError
from ccrm_async import _prefetch as prefetch
from ccrm_async._core.prefetch import may_request
from ccrm_async.pagination import ByteBudget, Page, PageSource, PullStats, paginate

PAGE = 1000  # records a page (the API's page size)


def test_may_request_counts_bodies_in_flight_as_the_largest_seen() -> None:
    def ok(in_flight: int, buffered: int, waiting: int = 0) -> bool:
        return may_request(
            in_flight=in_flight,
            waiting=waiting,
            buffered=buffered,
            largest=100,
            lookahead=4,
            limit=500,
        )

    assert ok(0, 0) and ok(0, 400) and not ok(0, 401)
    assert ok(2, 200) and not ok(2, 201)
    assert not ok(4, 0)  # the lookahead bounds requests whatever the bytes
    # Pages received and waiting count against the lookahead as well.
    assert ok(1, 0, waiting=2) and not ok(1, 0, waiting=3) and not ok(0, 0, waiting=4)
    # A single body larger than the bound still gets through when nothing waits.
    assert may_request(in_flight=0, waiting=0, buffered=0, largest=10**9, lookahead=1, limit=1)


class _Source:
    """Pages of *pages* x 1000 records (ints), each body *size* bytes; counts
    the bytes received and not yet parsed, at every arrival."""

    def __init__(self, pages: int, size: int, *, fail_on: int | None = None) -> None:
        self.pages = pages
        self.size = size
        self.fail_on = fail_on
        self.received = self.parsed = self.peak = 0
        self.requested: list[int] = []
        self.ahead = 0  # pages requested and not yet parsed, at most

    async def fetch(self, number: int) -> bytes:
        self.requested.append(number)
        parsed_pages = self.parsed // self.size
        self.ahead = max(self.ahead, len(self.requested) - parsed_pages)
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


@pytest.mark.parametrize(
    ("size", "limit", "lookahead"),
    [(1000, 5000, 8), (700, 5000, 2), (700, 50_000, 4)],
    ids=["bytes bind", "lookahead binds", "lookahead binds, large buffer"],
)
async def test_the_buffer_never_exceeds_its_bound(size: int, limit: int, lookahead: int) -> None:
    source = _Source(pages=30, size=size)
    out = await _slow_consumer(source, limit=limit, lookahead=lookahead)
    assert out == list(range(30 * PAGE))  # in order, once
    assert source.requested == list(range(1, 31))  # each page requested once, in order
    bound = min(limit, lookahead * size)
    assert source.peak <= bound
    # Pages requested and not yet parsed: the lookahead, plus the page in the parser.
    assert source.ahead <= lookahead + 1
    # ... and fetching ran ahead of the slow parser up to that bound.
    assert source.peak >= bound - size


async def test_a_body_larger_than_the_bound_still_gets_through() -> None:
    source = _Source(pages=4, size=5000)
    assert await _slow_consumer(source, limit=1000, lookahead=8) == list(range(4 * PAGE))
    assert source.peak == 5000  # one body at a time


async def test_a_failed_fetch_ahead_stops_the_pull() -> None:
    source = _Source(pages=30, size=10, fail_on=5)
    with pytest.raises(ServerError):
        await _slow_consumer(source, limit=10**6, lookahead=8)
    assert max(source.requested) <= 5 + 8


async def test_a_pull_gives_the_loop_back_between_buffered_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every body already received, the parser still lets other tasks
    (and a cancellation) in once ``HOLD_LOOP`` seconds went by; at 0, at every
    page."""
    monkeypatch.setattr(prefetch, "HOLD_LOOP", 0.0)
    source = _Source(pages=6, size=10)
    pull = paginate(
        source.source(), key=lambda r: r, stats=PullStats(), lookahead=8, budget=ByteBudget()
    )
    assert await anext(pull) == 0
    for _ in range(20):  # every page answered and buffered (each fetch: one turn)
        await asyncio.sleep(0)
    assert source.received == 6 * 10
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    at_page: list[int] = []
    async for record in pull:
        if record % PAGE == 0:
            at_page.append(turns)
    ticking.cancel()
    assert len(at_page) == 5
    assert all(a < b for a, b in itertools.pairwise(at_page))


async def test_freed_bytes_wake_only_the_pulls_paused_for_room() -> None:
    """A notes fan-out keeps many small pulls open on one budget: freeing bytes
    tops up those the bound paused, not every pull (which made a fan-out of n
    pulls cost n² top-ups)."""
    from ccrm_async._prefetch import Prefetcher

    class Counting(Prefetcher):
        top_ups = 0

        def top_up(self) -> None:
            Counting.top_ups += 1
            super().top_up()

    budget = ByteBudget(limit=100)
    gate = asyncio.Event()

    def fetching(size: int) -> Callable[[int], Awaitable[bytes]]:
        async def fetch(_number: int) -> bytes:
            await gate.wait()
            return bytes(size)

        return fetch

    idle = [Counting(fetching(60), lookahead=1, budget=budget) for _ in range(50)]
    for member in idle:
        member.plan(1)  # one request each, in flight: none paused
    gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    # Every answer arrived: 3000 bytes against a bound of 100. Each member
    # planned one page only, so none waits for room.
    assert budget.used == 50 * 60 and not budget.paused
    busy = Prefetcher(fetching(30), lookahead=4, budget=budget)
    busy.plan(3)  # page 1 goes (nothing of its own buffered), then it waits for room
    for _ in range(3):
        await asyncio.sleep(0)
    assert busy.requested == 1 and list(budget.paused) == [busy]
    Counting.top_ups = 0
    for member in idle:
        await member.take(1)  # frees 60 bytes each: only `busy` is topped up
    assert Counting.top_ups == 50  # each idle member's own, in take()
    assert busy.requested == 3 and not budget.paused
    for member in [*idle, busy]:
        await member.close()
    assert budget.used == 0
