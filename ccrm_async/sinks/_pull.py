"""A bulk pull into a sink, window by window.

Windows are pulled one after another, oldest first; inside a window the
client fetches pages (and notes) concurrently. Each window's records are
committed with the sink's checkpoint, so an interrupted pull resumes with the
first unfinished window. A window that fails or is cancelled is rolled back:
the sink holds committed windows only. Cancellation (Ctrl-C) closes the
window's pull first, which cancels and awaits its requests in flight.

A committed window is marked finished only when it is closed (it ended
:data:`SETTLE_TIME`, 1 h, before its pull began) and complete (the engine's
repair passes left no suspected miss). Others are written but left open:
``PullReport.open`` counts them, ``PullReport.incomplete`` those with misses,
and the next run of the same pull fetches them again. Records that cannot be
read go to the sink's rejects with their window (``PullReport.rejected``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Protocol, cast

import attrs

from ..client import CCRMClient
from ..models import CallRecord, Note, RejectedRecord
from ..pagination import Pull, PullStats
from ._base import Sink
from ._plan import PullQuery, Window

__all__ = ["SETTLE_TIME", "PullProgress", "PullReport", "pull_into"]

#: A call with its notes (None when the pull has no notes).
_Item = tuple[CallRecord, list[Note] | None]

#: Windows whose pulls are opened ahead of the one being written: 6. Each
#: requests its pages (and, with notes, its notes) at once, all through the
#: client's one gate; its received bodies share the client's parse buffer
#: (32 MiB), and it holds at most 2,000 parsed calls besides (the page being
#: read, and the notes fan-out's 1,000 calls).
WINDOWS_AHEAD = 6

#: A window counts as closed (no call can still appear in it) once it ended
#: this long before its pull began: 1 hour, for calls still being connected.
SETTLE_TIME = timedelta(hours=1)


class PullProgress(Protocol):
    """Receives progress; the command line draws a bar with it."""

    def start(self, windows: int, skipped: int) -> None:
        """*windows* are about to be pulled, *skipped* were finished before."""

    def window(self, window: Window) -> None:
        """Pulling *window* begins."""

    def records(self, calls: int, notes: int) -> None:
        """*calls* more calls (with *notes* notes) were written to the open window."""

    def window_done(self) -> None: ...


@attrs.define
class PullReport:
    """What a pull did, across its windows.

    ``windows``: planned; ``skipped``: finished by an earlier run; ``finished``:
    pulled and committed now; ``open``: of those, the ones written but not
    marked finished (fetched again by the next run); ``incomplete``: of
    those, the ones whose suspected misses the repair passes could not settle.
    ``records``, ``notes``, ``pages``, ``duplicates_dropped``,
    ``suspected_misses``, ``repair_passes``, ``rejected`` and ``bent`` count
    committed windows;
    ``requests``, ``retries`` and ``rate_limit_pauses`` count every request
    sent, a rolled-back window's included. ``elapsed`` in seconds.
    """

    windows: int = 0
    skipped: int = 0
    finished: int = 0
    open: int = 0
    incomplete: int = 0
    records: int = 0
    notes: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    rate_limit_pauses: int = 0
    duplicates_dropped: int = 0
    suspected_misses: int = 0
    repair_passes: int = 0
    rejected: int = 0
    bent: int = 0
    elapsed: float = 0.0

    def add_requests(self, stats: PullStats) -> None:
        self.requests += stats.requests
        self.retries += stats.retries
        self.rate_limit_pauses += stats.rate_limit_pauses

    def add_window(self, stats: PullStats, records: int, notes: int, *, marked: bool) -> None:
        self.finished += 1
        self.open += 0 if marked else 1
        self.incomplete += 0 if stats.complete else 1
        self.records += records
        self.notes += notes
        self.pages += stats.pages
        self.duplicates_dropped += stats.duplicates_dropped
        self.suspected_misses += stats.suspected_misses
        self.repair_passes += stats.repair_passes
        self.rejected += stats.rejected
        self.bent += stats.bent


async def pull_into(
    crm: CCRMClient,
    sink: Sink,
    query: PullQuery,
    *,
    report: PullReport | None = None,
    progress: PullProgress | None = None,
    now: Callable[[], datetime] = datetime.now,
) -> PullReport:
    """Pull *query* into *sink*, skipping the windows it already holds.

    *now* gives the current time in the account's zone (naive): windows that
    ended :data:`SETTLE_TIME` (1 h) before their pull began are closed. Pass a
    *report* to read the counts even when the pull fails or is cancelled.
    """
    report = report if report is not None else PullReport()
    started = time.monotonic()
    windows = query.windows()
    todo = deque(window for window in windows if not sink.is_done(window))
    report.windows = len(windows)
    report.skipped = len(windows) - len(todo)
    if progress is not None:
        progress.start(len(todo), report.skipped)
    ahead: deque[_WindowPull] = deque()

    def open_ahead() -> None:
        # Only once a window's first answer came back: a bad token or a
        # refused range fails one request, not one per window.
        while todo and len(ahead) < WINDOWS_AHEAD:
            ahead.append(_WindowPull(crm, query, todo.popleft(), now))

    try:
        while todo or ahead:
            current = ahead.popleft() if ahead else _WindowPull(crm, query, todo.popleft(), now)
            try:
                await current.write_into(sink, report, progress, answered=open_ahead)
            finally:
                report.add_requests(current.stats)
    finally:
        # Ctrl-C, a crash: the windows opened ahead were never begun in the
        # sink; cancel their requests and count them.
        while ahead:
            later = ahead.popleft()
            await later.close()
            report.add_requests(later.stats)
        report.elapsed = time.monotonic() - started
    return report


class _WindowPull:
    """One window's pull, opened ahead: its first record is requested at once
    (so its pages are fetched while older windows are written); records go
    to the sink only once it is the oldest window left. Rejects met before
    then wait here, to be written with their window."""

    def __init__(
        self, crm: CCRMClient, query: PullQuery, window: Window, now: Callable[[], datetime]
    ) -> None:
        self.window = window
        self.closed = window.end + SETTLE_TIME < now()
        self._rejects: list[RejectedRecord] = []
        self._sink: Sink | None = None
        self.pull: Pull[_Item]
        if query.notes:
            self.pull = cast(
                "Pull[_Item]",
                crm.call_history_with_notes(window.start, window.end, on_reject=self._reject),
            )
        else:
            calls = crm.call_history(window.start, window.end, on_reject=self._reject)
            self.pull = Pull(_without_notes(calls), calls.stats)
        self.stats = self.pull.stats
        self._first: asyncio.Future[_Item | None] = asyncio.ensure_future(_first(self.pull))

    def _reject(self, reject: RejectedRecord) -> None:
        if self._sink is not None:
            self._sink.add_reject(reject)
        else:
            self._rejects.append(reject)

    async def write_into(
        self,
        sink: Sink,
        report: PullReport,
        progress: PullProgress | None,
        *,
        answered: Callable[[], None],
    ) -> None:
        """Write the window into *sink* and commit it; *answered* is called
        once its first records (or its end) came back."""
        window = self.window
        if progress is not None:
            progress.window(window)
        records = notes = 0
        sink.begin(window)
        try:
            self._sink = sink
            for reject in self._rejects:
                sink.add_reject(reject)
            self._rejects.clear()
            first = await self._first
            answered()
            if first is not None:
                async with self.pull:
                    item: _Item | None = first
                    while item is not None:
                        call, call_notes = item
                        sink.add(call, call_notes)
                        records += 1
                        count = len(call_notes) if call_notes is not None else 0
                        notes += count
                        if progress is not None:
                            progress.records(1, count)
                        item = await _first(self.pull)
            marked = sink.commit(window, closed=self.closed and self.stats.complete)
        except BaseException:
            sink.rollback()
            await self.close()
            raise
        report.add_window(self.stats, records, notes, marked=marked)
        if progress is not None:
            progress.window_done()

    async def close(self) -> None:
        """Cancel what is still in flight and await it."""
        if not self._first.done():
            self._first.cancel()
            await asyncio.gather(self._first, return_exceptions=True)
        elif not self._first.cancelled():
            self._first.exception()  # retrieved: its error, if any, went up already
        await self.pull.aclose()


async def _first(pull: Pull[_Item]) -> _Item | None:
    """The next item of *pull*, None at its end."""
    try:
        return await pull.__anext__()
    except StopAsyncIteration:
        return None


async def _without_notes(calls: Pull[CallRecord]) -> AsyncIterator[tuple[CallRecord, None]]:
    try:
        async for call in calls:
            yield call, None
    finally:
        await calls.aclose()
