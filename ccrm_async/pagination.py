"""The pagination engine: every paged CCRM endpoint goes through :func:`paginate`.

How a pull works
----------------

The API pages at most 1000 records per answer (``?page=N``, from 1) and states
the total in ``otherData.totalCount``. There is no sort or page-size parameter,
and records can appear or vanish while a pull runs, which shifts page
boundaries (the call history is newest first, so an insertion at the head
pushes every later record one place down).

1. Page 1 is fetched alone: its ``totalCount`` plans ``ceil(total / 1000)`` pages.
   An answer without ``totalCount`` (PHP leaves it out at times) plans nothing:
   pages are then fetched until one comes back short.
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
5. Repair passes. Deletions shift records into pages already fetched, and an
   insertion lets a page answered after it sit before a page answered before
   it: records between them are skipped. Each pass is tallied
   (:mod:`ccrm_async._core.accounting`): when it ends with suspected misses,
   the whole range is read again, its records de-duplicated against all
   those already yielded, until a pass ends with none, at most
   ``MAX_REPAIR_PASSES`` (3) times. Records found by a repair pass are
   yielded after the first pass's, so call order holds within a pass only.
   ``suspected_misses`` is what the last pass left: 0 means complete.
6. Bad records. A page whose envelope is sound is never failed by one of its
   records (:mod:`ccrm_async.parsing`): a record in PHP's spelling is read and
   its bent values counted (``bent``, ``bent_paths``; each field path is
   logged once per pull at WARNING, with no value); a record that cannot be
   read is counted in ``rejected``, logged, and handed to ``on_reject`` once
   (repair passes do not repeat it).

The first error that is not retried cancels every sibling request at once and
is raised to the consumer; closing or cancelling the iteration cancels and
awaits every task it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import attrs

from ._core.accounting import (
    MAX_REPAIR_PASSES,
    BentTally,
    PassTally,
    needs_repair,
    suspected_misses,
)
from .models import RejectedRecord
from .parsing import Page
from .transport import RequestCounters

__all__ = ["OrderedWindow", "Page", "Pull", "PullStats", "RejectHandler", "paginate"]

T = TypeVar("T")
R = TypeVar("R")

PAGE_SIZE = 1000

log = logging.getLogger("ccrm_async.pagination")

#: Called with each record that could not be read, once, in page order.
RejectHandler = Callable[[RejectedRecord], None]


@attrs.define
class PullStats(RequestCounters):
    """What a pull did; read it from :attr:`Pull.stats` during or after iteration.

    - ``records``: records yielded (unique by uuid); ``pages``: pages fetched
      (repair passes included);
    - ``requests``, ``retries``, ``rate_limit_pauses``: as counted by the transport
      (notes requests included for pulls with notes);
    - ``notes``: notes fetched (pulls with notes only);
    - ``total_first`` / ``total_last``: ``totalCount`` of the first and of the
      last answer (None when the API sent none); ``inserted`` / ``deleted``:
      the sums of its rises and drops while the pull ran (the drift, in records);
    - ``duplicates_dropped``: records seen twice within a pass because pages shifted;
    - ``repair_passes``: passes read again to repair suspected misses (at most 3);
      ``repaired``: records that only a repair pass found;
    - ``suspected_misses``: records that may still be missing after the last
      pass (see the module docstring); 0 means the pull is known complete;
    - ``rejected``: records that could not be read (see ``on_reject``);
    - ``bent``: values read from a PHP spelling (a one-element list, a zero
      date, a number as a string, ...); ``bent_paths``: the same per field path.
    """

    records: int = 0
    pages: int = 0
    notes: int = 0
    total_first: int | None = None
    total_last: int | None = None
    inserted: int = 0
    deleted: int = 0
    duplicates_dropped: int = 0
    repair_passes: int = 0
    repaired: int = 0
    suspected_misses: int = 0
    rejected: int = 0
    bent_paths: dict[str, int] = attrs.field(factory=dict)

    @property
    def bent(self) -> int:
        """Values bent to fit, all paths together."""
        return sum(self.bent_paths.values())

    @property
    def drift(self) -> bool:
        """True when the data changed while the pull ran."""
        return bool(self.inserted or self.deleted or self.duplicates_dropped)

    @property
    def complete(self) -> bool:
        """True when the pull is known to hold every record of its range."""
        return self.suspected_misses == 0

    def observe_pass(self, tally: PassTally) -> None:
        """Add a finished pass's totals and drift."""
        if self.total_first is None:
            self.total_first = tally.total_first
        if tally.total_last is not None:
            self.total_last = tally.total_last
        self.inserted += tally.inserted
        self.deleted += tally.deleted
        self.duplicates_dropped += tally.duplicates


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
    on_reject: RejectHandler | None = None,
    max_repair_passes: int = MAX_REPAIR_PASSES,
    on_finish: Callable[[bool], object] | None = None,
) -> AsyncIterator[T]:
    """Yield every record of a paged endpoint once, in page order, then what
    repair passes found.

    *fetch(n)* must return page *n* fully received and parsed (it does its own
    retries). At most *lookahead* pages are in flight or parsed and waiting, so
    memory stays flat however long the pull (but for the set of uuids seen).
    *on_reject* receives each unreadable record once. A pass that ends with
    suspected misses is followed by another, at most *max_repair_passes* (3).
    *on_finish(completed)* is called once the pull ends (for the ``"pull"``
    event); *completed* is False when it failed or was closed early.
    """
    completed = False
    try:
        seen: set[Hashable] = set()
        reading = _PassReader(
            fetch, key, stats, seen, lookahead=max(1, lookahead), page_size=page_size
        )
        reading.on_reject = on_reject
        passes = 0
        while True:
            tally = PassTally()
            run = reading.run(tally, repair=passes > 0)
            try:
                async for record in run:
                    yield record
            finally:
                await run.aclose()  # now, not when collected: its requests stop with us
            stats.observe_pass(tally)
            stats.suspected_misses = suspected_misses(tally)
            if not needs_repair(stats.suspected_misses, passes, limit=max_repair_passes):
                break
            passes += 1
            stats.repair_passes = passes
            log.warning(
                "pass %d ended with %d suspected misses (%d deleted, %d inserted): reading again",
                passes,
                stats.suspected_misses,
                tally.deleted,
                tally.inserted,
            )
        if stats.suspected_misses:
            log.warning(
                "%d suspected misses remain after %d repair passes", stats.suspected_misses, passes
            )
        completed = True
    finally:
        if on_finish is not None:
            on_finish(completed)


class _PassReader(Generic[T]):
    """Reads one pass over the pages; keeps what passes share (the uuids
    yielded, the rejects handed out, the bent paths already logged)."""

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[Page[T]]],
        key: Callable[[T], Hashable],
        stats: PullStats,
        seen: set[Hashable],
        *,
        lookahead: int,
        page_size: int,
    ) -> None:
        self.fetch = fetch
        self.key = key
        self.stats = stats
        self.seen = seen
        self.lookahead = lookahead
        self.page_size = page_size
        self.on_reject: RejectHandler | None = None
        self.rejected: set[str] = set()
        self.bent = BentTally(stats.bent_paths)

    async def run(self, tally: PassTally, *, repair: bool) -> AsyncGenerator[T, None]:
        stats = self.stats
        key = self.key
        seen = self.seen
        # The first pass de-duplicates against what it yields; a repair pass
        # also needs its own set, to tell its overlaps from earlier passes' records.
        in_pass: set[Hashable] = set() if repair else seen
        rejected_in_pass: set[str] = set()
        window: OrderedWindow[Page[T]] = OrderedWindow(self.lookahead)

        async def fetch_page(number: int) -> Page[T]:
            page = await self.fetch(number)
            tally.observe_total(page.total)  # in the order the answers arrived
            return page

        try:
            page = await fetch_page(1)
            planned = 1
            last_requested = 1
            until_short = False
            while True:
                stats.pages += 1
                fresh = []
                duplicates = 0
                for record in page.records:
                    ident = key(record)
                    if ident in in_pass:
                        duplicates += 1
                        continue
                    in_pass.add(ident)
                    if repair:
                        if ident in seen:
                            continue
                        seen.add(ident)
                        stats.repaired += 1
                    fresh.append(record)
                if page.bends:  # counted for the records yielded now, not for repeats
                    yielded = {id(record) for record in fresh}
                    for index, bends in page.bends.items():
                        if id(page.records[index]) in yielded:
                            self._count_bends(bends)
                tally.duplicates += duplicates
                tally.read += len(page.records) - duplicates
                if page.envelope_bends:
                    self._count_bends(page.envelope_bends)
                for reject in page.rejected:
                    if reject.key not in rejected_in_pass:
                        rejected_in_pass.add(reject.key)
                        tally.read += 1
                        self._reject(reject)
                if duplicates or tally.inserted or page.total is None:
                    until_short = True  # the data moved under us: stop only at a short page
                if page.total is not None:
                    planned = max(planned, -(-page.total // self.page_size))
                if until_short and page.number == last_requested and page.count >= self.page_size:
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

    def _count_bends(self, bends: list[tuple[str, str]]) -> None:
        for path, what in bends:
            if self.bent.add(path):
                log.warning(
                    "read %s from a PHP spelling (%s); such values are counted in "
                    "PullStats.bent_paths",
                    path or "a record",
                    what,
                )

    def _reject(self, reject: RejectedRecord) -> None:
        if reject.key in self.rejected:
            return  # handed out by an earlier pass
        self.rejected.add(reject.key)
        self.stats.rejected += 1
        log.warning(
            "rejected a %s on page %d (uuid %s): %s",
            reject.kind,
            reject.page,
            reject.uuid or "none",
            reject.reason,
        )
        if self.on_reject is not None:
            self.on_reject(reject)


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
