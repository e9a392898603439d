"""What every sink does, and how one is chosen from the output's extension."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..models import CallRecord, Note
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

    def commit(self, window: Window, *, closed: bool) -> None:
        """Make the window's records durable together with the checkpoint.

        *closed* says the window lies far enough in the past that no call can
        still appear in it; a store that serves several pulls (SQLite) records
        only closed windows as finished.
        """

    def rollback(self) -> None: ...

    def close(self) -> None: ...
