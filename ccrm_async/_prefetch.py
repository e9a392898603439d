"""Fetching a pass's pages ahead of its parser, in a buffer bounded in bytes.

:class:`Prefetcher` requests pages 1, 2, 3, ... as soon as the policy of
:mod:`ccrm_async._core.prefetch` allows (fewer than *lookahead* pages in
flight or waiting, the bodies received within the byte bound), each time a request ends
and each time the parser takes a body: the network never waits for the
parser. Requests still pass the client-wide gate (its ``concurrency``). The
parser takes bodies strictly in page order with :meth:`Prefetcher.take`.

The first request that fails for good cancels every sibling at once, and
:meth:`Prefetcher.take` raises its error; :meth:`Prefetcher.close` cancels and
awaits whatever is left.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from ._core.prefetch import BUFFER_BYTES, may_request, within_lookahead

__all__ = ["BUFFER_BYTES", "HOLD_LOOP", "ByteBudget", "Prefetcher"]

#: A parser running through bodies already received gives the event loop back
#: once this many seconds (0.1) went by since it last did: other tasks of the
#: loop wait at most that long plus one page's parse (about 25 ms). Giving it
#: back at every page cost 6 % of a zero-latency pull's throughput.
HOLD_LOOP = 0.1


class ByteBudget:
    """Bytes received and not yet parsed, shared by every pull of a client
    (windows pulled back to back each have a :class:`Prefetcher`): at most
    *limit* (:data:`BUFFER_BYTES`), but for one page per pull when a pull
    has nothing buffered or in flight (so each can always make progress).
    When bytes are freed, the pulls paused for room (and only they: a notes
    fan-out keeps a thousand small pulls open) top up."""

    def __init__(self, limit: int = BUFFER_BYTES) -> None:
        if limit < 1:
            raise ValueError(f"buffer limit must be >= 1 byte, got {limit!r}")
        self.limit = limit
        self.used = 0
        self.peak = 0
        # Insertion-ordered, so the oldest pull paused gets the room first.
        self.paused: dict[Prefetcher, None] = {}

    def take(self, size: int) -> None:
        self.used += size
        self.peak = max(self.peak, self.used)

    def free(self, size: int) -> None:
        self.used -= size
        if self.paused:
            for member in list(self.paused):
                member.top_up()


class Prefetcher:
    """Requests pages *first*, *first* + 1, ... up to :attr:`planned` ahead of
    the parser.

    ``buffered`` is the bytes received and not yet taken, ``peak`` the most it
    ever was; ``arrivals`` lists page numbers in the order their answers
    arrived (the engine reads the totals in that order and pops them).
    """

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[bytes]],
        *,
        lookahead: int,
        budget: ByteBudget | None = None,
        first: int = 1,
    ) -> None:
        if lookahead < 1:
            raise ValueError(f"lookahead must be >= 1, got {lookahead!r}")
        if first < 1:
            raise ValueError(f"first page must be >= 1, got {first!r}")
        self._fetch = fetch
        self.lookahead = lookahead
        self.budget = budget if budget is not None else ByteBudget()
        self.planned = first - 1  # pages before *first* are not this one's to fetch
        self.requested = first - 1
        self.in_flight = 0
        self.buffered = 0
        self.peak = 0
        self.largest = 0
        self.arrivals: deque[int] = deque()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._bodies: dict[int, bytes] = {}
        self._failure: BaseException | None = None
        self._yielded = 0.0  # loop time the parser last gave the loop back

    def plan(self, last: int) -> None:
        """Pages up to *last* are wanted (a plan only grows)."""
        if last > self.planned:
            self.planned = last
            self.top_up()

    def top_up(self) -> None:
        """Request the next pages the policy allows. Stopped by the lookahead,
        it is topped up again by its own answers and takes; stopped by the
        byte bound, it waits among the budget's paused pulls."""
        budget = self.budget
        while self._failure is None and self.requested < self.planned:
            waiting = len(self._bodies)
            if not within_lookahead(
                in_flight=self.in_flight, waiting=waiting, lookahead=self.lookahead
            ):
                break
            if not may_request(
                in_flight=self.in_flight,
                waiting=waiting,
                buffered=budget.used if self.in_flight or self.buffered else 0,
                largest=self.largest,
                lookahead=self.lookahead,
                limit=budget.limit,
            ):
                budget.paused[self] = None
                return
            self.requested += 1
            self.in_flight += 1
            self._tasks[self.requested] = asyncio.ensure_future(self._run(self.requested))
        budget.paused.pop(self, None)

    async def _run(self, number: int) -> None:
        # The coroutine is created here, so a task cancelled before it ran
        # leaves no un-awaited coroutine behind.
        try:
            body = await self._fetch(number)
        except asyncio.CancelledError:
            self.in_flight -= 1
            raise
        except BaseException as error:
            self.in_flight -= 1
            # Cancel the siblings in the same step, not a loop iteration later:
            # no sibling sends another request after a fatal answer.
            if self._failure is None:
                self._failure = error
                current = asyncio.current_task()
                for task in self._tasks.values():
                    if task is not current:
                        task.cancel()
            return
        self.in_flight -= 1
        self._bodies[number] = body
        self.buffered += len(body)
        self.peak = max(self.peak, self.buffered)
        self.budget.take(len(body))
        self.largest = max(self.largest, len(body))
        self.arrivals.append(number)
        self.top_up()

    async def take(self, number: int) -> bytes:
        """The body of page *number* (planned, and the one after the last taken)."""
        if number > self.planned:
            raise ValueError(f"page {number} is not planned (plan ends at {self.planned})")
        task = self._tasks.get(number)
        if task is None:  # not requested yet: with nothing of this pull buffered
            self.top_up()  # or in flight, one request is always allowed
            task = self._tasks[number]
        if not task.done():
            await asyncio.wait((task,))  # cancelled here, close() still cancels it
        else:
            # Received already: still give the loop back now and then
            # (HOLD_LOOP), so a pull whose bodies are all buffered never holds it
            # for long: other tasks run, a cancellation lands.
            now = asyncio.get_running_loop().time()
            if now - self._yielded >= HOLD_LOOP:
                self._yielded = now
                await asyncio.sleep(0)
        if self._failure is not None:
            raise self._failure
        del self._tasks[number]
        body = self._bodies.pop(number)
        self.buffered -= len(body)
        self.budget.free(len(body))  # tops up the pulls paused for room
        self.top_up()  # and this one: a page of its lookahead is free
        return body

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._bodies.clear()
        self.budget.paused.pop(self, None)
        self.budget.free(self.buffered)
        self.buffered = 0
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
