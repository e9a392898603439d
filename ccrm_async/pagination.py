"""The pull engine: every paged CCRM endpoint goes through :func:`paginate`,
every per-call fan-out (notes) through :func:`fan_out`.

Pages
-----

The API pages at most 1000 records per answer (``?page=N``, from 1) and states
the total in ``otherData.totalCount``. There is no sort or page-size parameter,
and records can appear or vanish while a pull runs, which shifts page
boundaries (the call history is newest first, so an insertion at the head
pushes every later record one place down).

1. Page 1 is fetched alone, by the parser itself (no task, no buffer: a pull
   of one page, as most pulls of notes are, is one await): its
   ``totalCount`` plans ``ceil(total / 1000)`` pages.
   An answer without ``totalCount`` (PHP leaves it out at times) plans nothing:
   pages are then fetched until one comes back short.
2. Fetching is apart from parsing (:mod:`ccrm_async._prefetch`). Pages 2 on are
   requested as soon as a request ends or the parser takes a body (at most
   ``lookahead`` in flight or received and waiting, all through the
   client-wide gate), each returning its raw body; one parser takes the
   bodies in page order. A parser slower than the network keeps ``lookahead``
   pages ahead, no more (more would fill memory, not speed it up). Received
   bodies of all the client's pulls share a buffer bounded in bytes
   (:data:`BUFFER_BYTES`, 32 MiB, about 36 pages): while it is full, fetching
   pauses. So the network never waits for the parser, and the parser waits
   only for the page it needs next. A
   page's records are yielded only once the whole page was received and
   parsed: a retried page can never yield twice. Totals are counted in the
   order the answers arrived (each once its page is parsed). A body cut off
   so that it cannot be decoded is requested again if the retry policy
   allows a retry (counted as one). A parser whose next body is already
   buffered still gives the event loop back once 0.1 s went by since it last
   did (``HOLD_LOOP``), so a pull never holds it for longer than that and one
   page's parse (about 25 ms). (Giving it back at every page cost 6 % of a
   zero-latency pull's throughput.)
3. Records are de-duplicated by ``uuid``. An insertion at the head makes the
   tail of page *n* reappear at the top of page *n+1*: those are dropped and
   counted. The uuids yielded are held in bounded memory
   (:class:`ccrm_async._seen.SeenKeys`): up to 100,000 in a set (about 13 MB),
   the rest in a private temporary SQLite database on disk, checked a page
   at a time. Why not keep only the last few pages' uuids: a duplicate comes
   from a page shifted by the records inserted (or, pages answered out of
   order, deleted) between the reads of two pages, so within one pass the
   last ``1 + drift / 1000`` pages would do; but a repair pass reads the
   whole range again and must tell every record yielded by an earlier pass
   from a new one, anywhere in the range, and the drift is known only
   through totals, which miss an insertion and a deletion that cancel out.
   A bounded window would trade exactly-once for memory; the disk keeps
   both, for about 2.5 µs a record past the first 100,000 (the temporary file
   grows about 60 bytes a record and is deleted when the pull ends).
4. Drift: when a later page reports a larger total, or duplicates appear, the
   plan is no longer trusted and the engine keeps fetching pages past the plan
   until one comes back short (fewer than 1000 records). A short page inside
   the plan does not end the pull.
5. Repair passes. Deletions shift records into pages already fetched, and an
   insertion lets a page answered after it sit before a page answered before
   it: records between them are skipped. Each pass is tallied
   (:mod:`ccrm_async._core.accounting`): when it ends with suspected misses,
   the whole range is read again, its records de-duplicated against all
   those already yielded (the same bounded store), until a pass ends with none, at most
   ``MAX_REPAIR_PASSES`` (3) times. Records found by a repair pass are
   yielded after the first pass's, so call order holds within a pass only.
   ``suspected_misses`` is what the last pass left: 0 means complete.
6. Bad records. A page whose envelope is sound is never failed by one of its
   records (:mod:`ccrm_async.parsing`): a record in PHP's spelling is read and
   its bent values counted (``bent``, ``bent_paths``; each field path is
   logged once per pull at WARNING, with no value); a record that cannot be
   read is counted in ``rejected``, logged, and handed to ``on_reject`` once
   (repair passes do not repeat it).

Notes
-----

:func:`fan_out` gives each call its notes, in call order: a notes request is
sent for each call whose note flag is set or unknown as soon as the call is
parsed, concurrently with the other notes requests and with the next pages,
at most ``window`` (1000) calls waiting for their notes at once. A feeder
task reads the calls and sends their notes requests whether or not the
consumer is asking, so notes keep coming while the consumer writes, and
while a window opened ahead waits for its turn: without it, the gate
emptied at the end of every window. Every request, pages and notes, passes
the one client-wide gate (``concurrency``).

Windows
-------

A bulk pull (``calls pull``, :func:`ccrm_async.sinks.pull_into`) reads its
range window by window, each window a pull of this engine. Windows go back to
back: once a window's first answer came back, the next six
(``WINDOWS_AHEAD``) are opened, so their pages (and their notes) are
requested while the current window is still in flight or being written; all
share the client's gate and its parse buffer (one :class:`ByteBudget`), so
windows opened ahead take only the slots and the bytes the current one
leaves. Besides the buffer's bytes, a window opened ahead holds parsed
records: the page its parser is on (at most 1000 calls) and, with notes,
at most ``window`` (1000) calls waiting for or holding their notes; so seven
windows hold at most 14,000 parsed calls beyond the buffer. Records reach
the sink one window at a time, oldest first, and each window is committed
with its checkpoint before the next is begun: a window answered early waits,
so an interrupted pull loses at most the windows not yet committed, and
resuming reads each record once. An error in a window opened ahead stops
that window's own requests at once but is raised only at its turn: every
older window is written and committed first. The scheduling of windows
lives beside the sinks (it is bound to their checkpoints); the path of a
record still goes down once: command, sink, engine, transport, converter.

Errors
------

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
from ._prefetch import BUFFER_BYTES, ByteBudget, Prefetcher
from ._seen import SeenKeys
from .errors import ResponseError
from .models import RejectedRecord
from .parsing import Page
from .transport import RequestCounters

__all__ = [
    "BUFFER_BYTES",
    "ByteBudget",
    "OrderedWindow",
    "Page",
    "PageSource",
    "Pull",
    "PullStats",
    "RejectHandler",
    "fan_out",
    "paginate",
]

T = TypeVar("T")
R = TypeVar("R")
D = TypeVar("D")

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

    def abort(self, error: BaseException) -> None:
        """Fail with *error* (``next`` raises it), cancelling every task."""
        if self._failure is None:
            self._failure = error
        for task in self._tasks:
            task.cancel()

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
        if not head.done():
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


@attrs.frozen
class PageSource(Generic[T]):
    """Where a pull's pages come from.

    - ``fetch(n)``: the raw body of page *n* (the transport's retries done);
    - ``parse(body, n)``: that body as a :class:`Page` (pure CPU);
    - ``refetch(n, error)``: page *n* again after *error*, a body that could
      not be decoded at all (a cut-off answer), parsed inside the transport's
      retry loop; raises *error* when the retry policy allows no retry.
    """

    fetch: Callable[[int], Awaitable[bytes]]
    parse: Callable[[bytes, int], Page[T]]
    refetch: Callable[[int, ResponseError], Awaitable[Page[T]]]


async def paginate(
    source: PageSource[T],
    *,
    key: Callable[[T], Hashable],
    stats: PullStats,
    lookahead: int,
    page_size: int = PAGE_SIZE,
    on_reject: RejectHandler | None = None,
    max_repair_passes: int = MAX_REPAIR_PASSES,
    budget: ByteBudget | None = None,
    on_finish: Callable[[bool], object] | None = None,
) -> AsyncIterator[T]:
    """Yield every record of a paged endpoint once, in page order, then what
    repair passes found.

    Pages come from *source*: at most *lookahead* in flight or received and
    waiting, their bodies waiting for the parser in a buffer of at most ``budget.limit``
    bytes (a :class:`ByteBudget`, shared by the pulls of one client;
    :data:`BUFFER_BYTES`, 32 MiB, by default), and the uuids yielded beyond 100,000 are
    kept on disk, so memory stays flat however long the pull.
    *on_reject* receives each unreadable record once. A pass that ends with
    suspected misses is followed by another, at most *max_repair_passes* (3).
    *on_finish(completed)* is called once the pull ends (for the ``"pull"``
    event); *completed* is False when it failed or was closed early.
    """
    seen = SeenKeys()
    reading = _PassReader(
        source,
        key,
        stats,
        seen,
        lookahead=max(1, lookahead),
        page_size=page_size,
        budget=budget if budget is not None else ByteBudget(),
    )
    reading.on_reject = on_reject
    completed = False
    try:
        passes = 0
        while True:
            tally = PassTally()
            run = reading.run(tally, repair=passes > 0)
            try:
                async for batch in run:  # a page's new records at a time
                    for record in batch:
                        stats.records += 1
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
        seen.close()  # its temporary database too
        if on_finish is not None:
            on_finish(completed)


async def fan_out(
    items: AsyncIterator[T],
    detail: Callable[[T], Awaitable[list[D]]],
    *,
    wanted: Callable[[T], bool],
    size: int,
) -> AsyncGenerator[tuple[T, list[D]], None]:
    """Each of *items* with ``await detail(item)`` (``[]`` when not *wanted*),
    in the items' order.

    A feeder task reads *items* and starts their details while fewer than
    *size* items wait, whether or not the consumer is asking: the details'
    requests keep running while the consumer writes, or while it is busy
    with another pull (a window opened ahead). They run concurrently with
    each other and with the items' own pages, all through the client's gate.
    The first detail that fails for good, or an error reading *items*,
    cancels the others and is raised at once; closing the iteration cancels
    and awaits them, and closes *items*."""
    pending: OrderedWindow[tuple[T, list[D]]] = OrderedWindow(size)
    room = asyncio.Event()  # set when the consumer takes an item
    added = asyncio.Event()  # set when the feeder adds one, or ends

    async def with_detail(item: T) -> tuple[T, list[D]]:
        return item, await detail(item)

    async def feed() -> None:
        try:
            async for item in items:
                while pending.full:
                    room.clear()
                    await room.wait()
                if wanted(item):
                    pending.submit(with_detail, item)
                else:
                    pending.submit_result((item, []))
                added.set()
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            pending.abort(error)  # the consumer's next() raises it at once
            raise
        finally:
            added.set()

    feeder = asyncio.ensure_future(feed())
    try:
        while True:
            if len(pending):
                pair = await pending.next()
                room.set()
                yield pair
            elif feeder.done():
                feeder.result()  # an error of *items* with nothing waiting: raised here
                return
            else:
                added.clear()
                await added.wait()
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await pending.close()
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


class _PassReader(Generic[T]):
    """Reads one pass over the pages; keeps what passes share (the uuids
    yielded, the rejects handed out, the bent paths already logged)."""

    def __init__(
        self,
        source: PageSource[T],
        key: Callable[[T], Hashable],
        stats: PullStats,
        seen: SeenKeys,
        *,
        lookahead: int,
        page_size: int,
        budget: ByteBudget,
    ) -> None:
        self.source = source
        self.budget = budget
        self.key = key
        self.stats = stats
        self.seen = seen
        self.lookahead = lookahead
        self.page_size = page_size
        self.on_reject: RejectHandler | None = None
        self.rejected: set[str] = set()
        self.bent = BentTally(stats.bent_paths)

    async def run(self, tally: PassTally, *, repair: bool) -> AsyncGenerator[list[T], None]:
        """One pass: each page's records not yielded before, a page at a time."""
        stats = self.stats
        key = self.key
        seen = self.seen
        source = self.source
        # The first pass de-duplicates against what it yields; a repair pass
        # also needs its own set, to tell its overlaps from earlier passes' records.
        in_pass = SeenKeys() if repair else seen
        rejected_in_pass: set[str] = set()
        # Page 1 is fetched alone, here (it plans the rest): most pulls of
        # notes are that one request, with no task or buffer of their own.
        ahead = Prefetcher(source.fetch, lookahead=self.lookahead, budget=self.budget, first=2)
        totals: dict[int, int | None] = {}
        try:
            number = 1
            until_short = False
            while True:
                if number == 1:
                    body = await source.fetch(1)
                    ahead.largest = len(body)  # what the bound expects of the next pages
                    page = await self._read(body, 1)
                    tally.observe_total(page.total)  # the first answer, whatever follows
                else:
                    page = await self._read(await ahead.take(number), number)
                    # Totals count in the order the answers arrived, each once its
                    # page is parsed: every page before this one is.
                    totals[number] = page.total
                    arrivals = ahead.arrivals
                    while arrivals and arrivals[0] in totals:
                        tally.observe_total(totals.pop(arrivals.popleft()))
                stats.pages += 1
                records = page.records
                new = in_pass.admit([key(record) for record in records])
                fresh = [record for record, is_new in zip(records, new, strict=True) if is_new]
                duplicates = len(records) - len(fresh)
                if repair and fresh:  # yielded only when no earlier pass did
                    unseen = seen.admit([key(record) for record in fresh])
                    fresh = [record for record, is_new in zip(fresh, unseen, strict=True) if is_new]
                    stats.repaired += len(fresh)
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
                planned = ahead.planned
                if page.total is not None:
                    planned = max(planned, -(-page.total // self.page_size))
                if until_short and number == ahead.planned and page.count >= self.page_size:
                    planned = max(planned, number + 1)
                # Plan what comes next before handing records out, so the network
                # works while the consumer does.
                ahead.plan(planned)
                if fresh:
                    yield fresh
                if number >= ahead.planned:
                    break
                number += 1
        finally:
            await ahead.close()
            if in_pass is not seen:
                in_pass.close()

    async def _read(self, body: bytes, number: int) -> Page[T]:
        """Page *number* from its *body*, parsed whole; a body that could not
        be decoded at all (cut off) is requested again, parsed inside the
        transport's retries."""
        try:
            return self.source.parse(body, number)
        except ResponseError as error:
            if not error.transient:
                raise
            failed = error
        return await self.source.refetch(number, failed)

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
