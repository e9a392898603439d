"""What every sink does, and how one is chosen from the output's extension."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..models import CallRecord, Note, RejectedRecord
from ._plan import Window

__all__ = ["SINK_FORMATS", "Sink", "SinkError", "sink_format"]

#: Output extension -> sink format.
SINK_FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".sqlite": "sqlite", ".sqlite3": "sqlite"}


class SinkError(Exception):
    """An output that cannot be written as asked: another pull's file, a file
    without a checkpoint, a checkpoint that does not match its output."""


def sink_format(path: Path) -> str | None:
    """``"jsonl"``, ``"csv"`` or ``"sqlite"`` for *path*'s extension (any case), else None."""
    return SINK_FORMATS.get(path.suffix.lower())


class Sink(Protocol):
    """Where a pull's records go, one window at a time.

    A window is written between :meth:`begin` and :meth:`commit` and becomes
    visible (and counted as finished) all at once at the commit; :meth:`rollback`
    drops what the open window added. Closing a sink with a window open rolls
    it back.
    """

    path: Path

    def is_done(self, window: Window) -> bool:
        """True when *window* was finished by an earlier run: it is skipped."""

    def begin(self, window: Window) -> None: ...

    def add(self, call: CallRecord, notes: Sequence[Note] | None) -> None:
        """Add one call; *notes* is None when notes are not pulled."""

    def add_reject(self, reject: RejectedRecord) -> None:
        """Keep one record that could not be read, with the open window."""

    def commit(self, window: Window, *, closed: bool) -> bool:
        """Make the window's records durable; True when it is also marked finished.

        *closed* says the window is done for good: it lies far enough in the
        past that no call can still appear in it, and it was read completely
        (no suspected miss left). Only such a window is marked finished and
        skipped by the next run; an append-only file also needs every earlier
        window finished, since it is cut back to its last finished window.
        """

    def rollback(self) -> None: ...

    def close(self) -> None: ...
