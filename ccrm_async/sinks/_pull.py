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

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from ..client import CCRMClient
from ..pagination import PullStats
from ._base import Sink
from ._plan import PullQuery, Window

__all__ = ["SETTLE_TIME", "PullProgress", "PullReport", "pull_into"]

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
    todo = [window for window in windows if not sink.is_done(window)]
    report.windows = len(windows)
    report.skipped = len(windows) - len(todo)
    if progress is not None:
        progress.start(len(todo), report.skipped)
    try:
        for window in todo:
            await _pull_window(crm, sink, query, window, report, progress, now)
    finally:
        report.elapsed = time.monotonic() - started
    return report


async def _pull_window(
    crm: CCRMClient,
    sink: Sink,
    query: PullQuery,
    window: Window,
    report: PullReport,
    progress: PullProgress | None,
    now: Callable[[], datetime],
) -> None:
    closed = window.end + SETTLE_TIME < now()
    if progress is not None:
        progress.window(window)
    records = notes = 0
    stats = PullStats()
    sink.begin(window)
    try:
        if query.notes:
            with_notes = crm.call_history_with_notes(
                window.start, window.end, on_reject=sink.add_reject
            )
            stats = with_notes.stats
            async with with_notes:
                async for call, call_notes in with_notes:
                    sink.add(call, call_notes)
                    records += 1
                    notes += len(call_notes)
                    if progress is not None:
                        progress.records(1, len(call_notes))
        else:
            calls = crm.call_history(window.start, window.end, on_reject=sink.add_reject)
            stats = calls.stats
            async with calls:
                async for call in calls:
                    sink.add(call, None)
                    records += 1
                    if progress is not None:
                        progress.records(1, 0)
        marked = sink.commit(window, closed=closed and stats.complete)
    except BaseException:
        sink.rollback()
        raise
    finally:
        report.add_requests(stats)
    report.add_window(stats, records, notes, marked=marked)
    if progress is not None:
        progress.window_done()
