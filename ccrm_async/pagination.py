"""The pagination engine: every paged CCRM endpoint goes through :func:`paginate`.

How a pull works
----------------

The API pages at most 1000 records per answer (``?page=N``, from 1) and states
the total in ``otherData.totalCount``. There is no sort or page-size parameter,
and records can appear or vanish while a pull runs, which shifts page
boundaries (the call history is newest first, so an insertion at the head
pushes every later record one place down).

1. Page 1 is fetched alone: its ``totalCount`` plans ``ceil(total / 1000)`` pages.
2. The rest are fetched concurrently through an :class:`OrderedWindow`: a
   bounded number of page tasks (``lookahead``) run at once; each task fetches
   *and parses* its page, so while one page is decoded the next requests are
   already waiting on the network. Results come out in page order, and a
   page's records are yielded only once the whole page was received and
   parsed: a retried page can never yield twice.
3. Records are de-duplicated by ``uuid``. An insertion at the head makes the
   tail of page *n* reappear at the top of page *n+1*: those are dropped and
   counted.
4. Drift: when a later page reports a larger total, or duplicates appear, the
   plan is no longer trusted and the engine keeps fetching pages past the plan
   until one comes back short (fewer than 1000 records). A short page inside
   the plan does not end the pull.
5. Deletions shift records the other way, into pages already fetched; those
   can be missed without any sign but a smaller total. Every drop of the
   total between two answers is added up and reported as
   ``suspected_misses`` (together with any gap between the last total, less
   the insertions, and the records yielded), so nothing passes silently.
   Records inserted while the pull runs are newer than it: they may or may
   not be yielded, and a later pull of the range picks them up.

The first error that is not retried cancels every sibling request at once and
is raised to the consumer; closing or cancelling the iteration cancels and
awaits every task it started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import attrs

from .transport import RequestCounters

__all__ = ["OrderedWindow", "Page", "Pull", "PullStats", "paginate"]

T = TypeVar("T")
R = TypeVar("R")

PAGE_SIZE = 1000


@attrs.frozen
class Page(Generic[T]):
    """One parsed page: its records and the total the server stated with it."""

    number: int
    records: list[T]
    total: int


@attrs.define
class PullStats(RequestCounters):
    """What a pull did; read it from :attr:`Pull.stats` during or after iteration.

    - ``records``: records yielded (unique by uuid); ``pages``: pages fetched;
    - ``requests``, ``retries``, ``rate_limit_pauses``: as counted by the transport
      (notes requests included for pulls with notes);
    - ``notes``: notes fetched (pulls with notes only);
    - ``total_first`` / ``total_last``: ``totalCount`` of the first and of the
      last answer; ``inserted`` / ``deleted``: the sums of its rises and drops
      while the pull ran (the drift, in records);
    - ``duplicates_dropped``: records seen twice because pages shifted;
    - ``suspected_misses``: records that may have been missed (see the
      module docstring); 0 means the pull is known complete.
    """

    records: int = 0
    pages: int = 0
    notes: int = 0
    total_first: int | None = None
    total_last: int | None = None
    inserted: int = 0
    deleted: int = 0
    duplicates_dropped: int = 0
    suspected_misses: int = 0

    @property
    def drift(self) -> bool:
        """True when the data changed while the pull ran."""
        return bool(self.inserted or self.deleted or self.duplicates_dropped)

    def observe_total(self, total: int) -> None:
        if self.total_first is None:
            self.total_first = total
        elif self.total_last is not None:
            if total > self.total_last:
                self.inserted += total - self.total_last
            elif total < self.total_last:
                self.deleted += self.total_last - total
        self.total_last = total

    def finish(self) -> None:
        # Records inserted during the pull may land before the pages already
        # read; they are newer than the pull and not counted as missed.
        gap = (self.total_last or 0) - self.inserted - self.records
        self.suspected_misses = max(self.deleted, gap, 0)


class OrderedWindow(Generic[R]):
    """Run coroutines concurrently, at most ``size`` at a time, results in order.

    ``submit`` starts a task; ``next`` waits for the oldest one. The first task
    that fails cancels all the others at once (so a fatal 401 stops every
    sibling request immediately), and ``next`` raises that error. ``close``
    cancels and awaits whatever is left.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"window size must be >= 1, got {size!r}")
        self.size = size
        self._tasks: deque[asyncio.Future[R]] = deque()
        self._failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def full(self) -> bool:
        return len(self._tasks) >= self.size

    def submit(self, work: Callable[..., Awaitable[R]], *args: Any) -> None:
        """Start ``work(*args)`` as a task; its result comes out after those before it."""
        if self._failure is not None:
            raise self._failure
        self._tasks.append(asyncio.ensure_future(self._guard(work, args)))

    async def _guard(self, work: Callable[..., Awaitable[R]], args: tuple[Any, ...]) -> R:
        # Cancel the siblings in the same step the error happens, not a loop
        # iteration later from a done callback: no sibling gets to send another
        # request after a fatal answer. (The work's coroutine is created here, so
        # a task cancelled before it ever ran leaves no un-awaited coroutine.)
        try:
            return await work(*args)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._failure is None:
                self._failure = error
                current = asyncio.current_task()
                for other in self._tasks:
                    if other is not current:
                        other.cancel()
            raise

    def submit_result(self, value: R) -> None:
        """Queue a value that needs no work, in order with the tasks."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.set_result(value)
        self._tasks.append(future)

    def head_done(self) -> bool:
        """True when ``next`` would return without waiting."""
        return bool(self._tasks) and self._tasks[0].done()

    async def next(self) -> R:
        head = self._tasks[0]
        await asyncio.wait((head,))
        if self._failure is not None:
            raise self._failure
        self._tasks.popleft()
        return head.result()

    async def close(self) -> None:
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def paginate(
    fetch: Callable[[int], Awaitable[Page[T]]],
    *,
    key: Callable[[T], Hashable],
    stats: PullStats,
    lookahead: int,
    page_size: int = PAGE_SIZE,
) -> AsyncIterator[T]:
    """Yield every record of a paged endpoint once, in page order.

    *fetch(n)* must return page *n* fully received and parsed (it does its own
    retries). At most *lookahead* pages are in flight or parsed and waiting, so
    memory stays flat however long the pull.
    """
    seen: set[Hashable] = set()
    window: OrderedWindow[Page[T]] = OrderedWindow(max(1, lookahead))

    async def fetch_page(number: int) -> Page[T]:
        page = await fetch(number)
        stats.observe_total(page.total)  # in the order the answers arrived
        return page

    try:
        page = await fetch_page(1)
        planned = 1
        last_requested = 1
        until_short = False
        while True:
            stats.pages += 1
            fresh = []
            for record in page.records:
                ident = key(record)
                if ident in seen:
                    stats.duplicates_dropped += 1
                else:
                    seen.add(ident)
                    fresh.append(record)
            if len(fresh) < len(page.records) or stats.inserted:
                until_short = True  # the data moved under us: stop only at a short page
            planned = max(planned, -(-page.total // page_size))
            if until_short and page.number == last_requested and len(page.records) >= page_size:
                planned = max(planned, last_requested + 1)
            # Request what comes next before handing records out, so the network
            # works while the consumer does.
            while not window.full and last_requested < planned:
                last_requested += 1
                window.submit(fetch_page, last_requested)
            for record in fresh:
                stats.records += 1
                yield record
            if not len(window):
                break
            page = await window.next()
    finally:
        await window.close()
        stats.finish()


class Pull(Generic[T]):
    """An async iterator over a pull's records, with its :attr:`stats`.

    Use it with ``async for``; break out or let it be cancelled freely, and
    close it with ``await pull.aclose()`` or ``async with`` to cancel what is
    still in flight at once.
    """

    def __init__(self, iterator: AsyncIterator[T], stats: PullStats) -> None:
        self._iterator = iterator
        self.stats = stats

    def __aiter__(self) -> AsyncIterator[T]:
        # ``async for`` drives the generator itself: no extra frame per record.
        return self._iterator

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(RuntimeError):
                await aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
