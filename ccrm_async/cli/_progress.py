"""Progress and the final summary for operators: ``--progress`` and ``--summary``.

``--progress auto|bar|log|none``: ``bar`` draws a bar on stderr, ``log``
writes one line every ``--progress-every`` seconds (10) to stderr, for cron
and log collectors; ``auto`` is the bar on a terminal and ``log`` otherwise.
``--summary text|json``: the one-line summary on stderr, or one JSON object on
stdout whose keys are the counts of the pull's report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, TypeAlias

import attrs

from ..events import Event
from ..sinks import Window
from ..transport import Clock
from ._common import BarProgress, positive_seconds

__all__ = [
    "PROGRESS_MODES",
    "SUMMARY_FORMATS",
    "CommandProgress",
    "LogProgress",
    "QuietProgress",
    "add_progress_options",
    "make_progress",
    "report_object",
    "stop",
]

PROGRESS_MODES = ("auto", "bar", "log", "none")
SUMMARY_FORMATS = ("text", "json")
#: Seconds between two ``--progress log`` lines.
DEFAULT_EVERY = 10.0

#: Report fields whose summary key differs from the field's name.
_KEYS: Mapping[str, str] = {"records": "calls"}


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress``, ``--progress-every`` and ``--summary``."""
    group = parser.add_argument_group("progress and summary")
    group.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="bar: a progress bar on stderr; log: a line every --progress-every seconds "
        "on stderr (for cron); none; auto (default): the bar on a terminal, else log",
    )
    group.add_argument(
        "--progress-every",
        type=positive_seconds,
        default=DEFAULT_EVERY,
        metavar="SECONDS",
        help=f"seconds between two --progress log lines ({DEFAULT_EVERY:g})",
    )
    group.add_argument(
        "--summary",
        choices=SUMMARY_FORMATS,
        default="text",
        help="text (default): one line on stderr; json: one JSON object on stdout",
    )


class QuietProgress:
    """``--progress none``: nothing but what the summary says."""

    def start(self, windows: int, skipped: int) -> None:
        return None

    def window(self, window: Window) -> None:
        return None

    def records(self, calls: int, notes: int) -> None:
        return None

    def window_done(self) -> None:
        return None

    def close(self) -> None:
        return None


class LogProgress:
    """``--progress log``: a line every *every* seconds on *stream*, e.g.
    ``progress: 3 of 31 windows, 12000 calls, 310 notes, 14 requests, 1 retries,
    0 rate-limit pauses, 850 calls/s``.

    Windows, calls and notes come from the pull (the
    :class:`~ccrm_async.sinks.PullProgress` methods); requests, retries and
    rate-limit pauses live from the client's ``on_event`` (pass
    :meth:`on_event` to the client). A line is due when *every* seconds of
    *clock* have passed since the last one; :meth:`run` checks that while the
    pull waits (a long rate-limit pause), the other methods as things happen.
    """

    def __init__(
        self,
        output: Path | None = None,
        *,
        every: float = DEFAULT_EVERY,
        stream: IO[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._output = output
        self._every = every
        self._stream = stream or sys.stderr
        self._clock = clock or Clock()
        self._started = self._clock.now()
        self._last = self._started
        self.windows = 0
        self.done = 0
        self.calls = 0
        self.notes = 0
        self.requests = 0
        self.retries = 0
        self.rate_limit_pauses = 0

    # -- the client's on_event --

    def on_event(self, event: Event) -> None:
        if event.kind == "request":
            self.requests += 1
        elif event.kind == "retry":
            self.retries += 1
        elif event.kind == "rate_limit":
            self.rate_limit_pauses += 1
        self.tick()

    # -- PullProgress --

    def start(self, windows: int, skipped: int) -> None:
        self.windows = windows
        if skipped:
            where = f" in {self._output}" if self._output is not None else " done"
            print(
                f"resuming: {skipped} of {windows + skipped} windows already{where}",
                file=self._stream,
                flush=True,
            )

    def window(self, window: Window) -> None:
        self.tick()

    def records(self, calls: int, notes: int) -> None:
        self.calls += calls
        self.notes += notes
        self.tick()

    def window_done(self) -> None:
        self.done += 1
        self.tick()

    def close(self) -> None:
        return None

    # -- the lines --

    def line(self) -> str:
        seconds = self._clock.now() - self._started
        rate = self.calls / seconds if seconds > 0 else 0.0
        return (
            f"progress: {self.done} of {self.windows} windows, {self.calls} calls, "
            f"{self.notes} notes, {self.requests} requests, {self.retries} retries, "
            f"{self.rate_limit_pauses} rate-limit pauses, {rate:.0f} calls/s"
        )

    def tick(self) -> None:
        """Write a line if one is due."""
        now = self._clock.now()
        if now - self._last >= self._every:
            self._last = now
            print(self.line(), file=self._stream, flush=True)

    async def run(self) -> None:
        """Check for a due line every *every* seconds until cancelled."""
        while True:
            await self._clock.sleep(self._every)
            self.tick()


#: What the commands draw progress with.
CommandProgress: TypeAlias = BarProgress | LogProgress | QuietProgress


def make_progress(
    args: argparse.Namespace,
    output: Path,
    *,
    stream: IO[str] | None = None,
    clock: Clock | None = None,
) -> CommandProgress:
    """The progress that ``--progress`` (and whether *stream* is a terminal) asks for."""
    stream = stream or sys.stderr
    mode = args.progress
    if mode == "auto":
        mode = "bar" if stream.isatty() else "log"
    if mode == "bar":
        return BarProgress(output, stream=stream, enabled=True)
    if mode == "log":
        return LogProgress(output, every=args.progress_every, stream=stream, clock=clock)
    return QuietProgress()


def report_object(report: Any, **extra: object) -> dict[str, object]:
    """*extra* (``state``, ``output``...), then every count of *report* (an attrs
    instance, e.g. :class:`~ccrm_async.sinks.PullReport`) under its field's name
    (``records`` as ``calls``): numbers as they are (seconds rounded to the
    millisecond), collections as their size. ``rejected`` is 0 when the report
    does not count rejects."""
    counts: dict[str, object] = dict(extra)
    for field in attrs.fields(type(report)):
        value = getattr(report, field.name)
        key = _KEYS.get(field.name, field.name)
        if isinstance(value, int):  # bool included
            counts[key] = value
        elif isinstance(value, float):
            counts[key] = round(value, 3)
        elif isinstance(value, list | tuple | set | frozenset | dict):
            counts[key] = len(value)
    counts.setdefault("rejected", 0)
    return counts


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel and await a :meth:`LogProgress.run` task."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
