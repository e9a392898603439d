"""The checkpoint of a pull into a JSONL or CSV file.

A file sink appends whole records to its output and, after each finished
window, saves a small JSON checkpoint beside it (``<output>.checkpoint.json``):
the pull it belongs to, the end of the last finished window, and the output's
length at that moment (and that of its rejects file, ``<output>.rejects.jsonl``).
On a re-run the output is cut back to that length (what an unfinished window
had written is dropped) and the pull goes on with the next window, so each
record ends up in the file exactly once.

A window is finished only when it is closed (it ended an hour or more before
its pull began) and was read completely. A window that is not is still
written, but the checkpoint stays where it was: the next run cuts it off and
fetches it again, with every window after it.

The order of writes keeps the checkpoint from ever being ahead of the data:
the output is flushed and fsynced first; then the checkpoint is written to a
temporary file, fsynced, renamed over the old one (atomic on POSIX), and the
directory is fsynced so that the rename itself survives a power cut. A crash at
any step leaves either the old checkpoint or the new one, never a mix.

:class:`FileCheckpoint` is a pure value; :func:`read_checkpoint` and
:func:`write_checkpoint` are the only I/O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import orjson

from .._core.dates import format_datetime, parse_datetime
from ._base import SinkError
from ._plan import PullQuery, Window, format_duration

__all__ = [
    "CHECKPOINT_SUFFIX",
    "REJECTS_SUFFIX",
    "CheckpointError",
    "FileCheckpoint",
    "checkpoint_path",
    "read_checkpoint",
    "rejects_path",
    "write_checkpoint",
]

#: Appended to the output's name to name its checkpoint.
CHECKPOINT_SUFFIX = ".checkpoint.json"
#: Appended to the output's name to name the file of its rejected records.
REJECTS_SUFFIX = ".rejects.jsonl"
_VERSION = 1


class CheckpointError(SinkError):
    """A checkpoint that cannot be used: unreadable, or of another pull."""


def checkpoint_path(output: Path) -> Path:
    """Where the checkpoint of *output* lives: beside it."""
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


def rejects_path(output: Path) -> Path:
    """Where the records of *output* that could not be read go: beside it."""
    return output.with_name(output.name + REJECTS_SUFFIX)


@attrs.frozen
class FileCheckpoint:
    """How far a pull into a file got.

    ``format`` is ``"jsonl"`` or ``"csv"``; ``date_from``, ``date_to``,
    ``window`` and ``notes`` identify the pull; ``done_until`` is the end of
    the last finished window (None before the first); ``offset`` is the
    output's length in bytes after it, ``rejects_offset`` that of the rejects
    file; ``windows``, ``records``, ``notes_written`` and ``rejected`` count
    what the finished windows wrote.
    """

    format: str
    date_from: str
    date_to: str
    window: str
    notes: bool
    done_until: str | None = None
    offset: int = 0
    windows: int = 0
    records: int = 0
    notes_written: int = 0
    rejects_offset: int = 0
    rejected: int = 0

    @classmethod
    def start(cls, fmt: str, query: PullQuery) -> FileCheckpoint:
        """The checkpoint of a pull that has not finished any window."""
        return cls(
            format=fmt,
            date_from=format_datetime(query.date_from),
            date_to=format_datetime(query.date_to),
            window=format_duration(query.window),
            notes=query.notes,
        )

    def same_pull(self, other: FileCheckpoint) -> bool:
        """True when *other* describes the same pull (progress aside)."""
        fields = ("format", "date_from", "date_to", "window", "notes")
        return all(getattr(self, name) == getattr(other, name) for name in fields)

    def describe(self) -> str:
        """The pull in command-line terms, for messages."""
        notes = " --notes" if self.notes else ""
        dialect = " --csv-dialect " + self.format[4:] if self.format.startswith("csv-") else ""
        return (
            f"--from '{self.date_from}' --to '{self.date_to}' "
            f"--window {self.window}{notes}{dialect}"
        )

    def is_done(self, window: Window) -> bool:
        """True when *window* was finished (windows are pulled oldest first)."""
        return self.done_until is not None and window.end <= parse_datetime(self.done_until)

    def advance(
        self,
        window: Window,
        *,
        offset: int,
        records: int,
        notes: int,
        rejects_offset: int = 0,
        rejected: int = 0,
    ) -> FileCheckpoint:
        """The checkpoint after *window* wrote *records* calls (and *notes*
        notes, and *rejected* rejects), the output grew to *offset* bytes and
        the rejects file to *rejects_offset*."""
        return attrs.evolve(
            self,
            done_until=format_datetime(window.end),
            offset=offset,
            windows=self.windows + 1,
            records=self.records + records,
            notes_written=self.notes_written + notes,
            rejects_offset=rejects_offset,
            rejected=self.rejected + rejected,
        )

    def to_json(self) -> bytes:
        body = {"version": _VERSION, **attrs.asdict(self)}
        return orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> FileCheckpoint:
        """Read :meth:`to_json`'s output; :class:`CheckpointError` for anything else."""
        try:
            body: Any = orjson.loads(data)
            if not isinstance(body, dict) or body.pop("version", None) != _VERSION:
                raise ValueError("unknown version")
            state = cls(**body)
            for offset in (state.offset, state.rejects_offset):
                if not isinstance(offset, int) or offset < 0:
                    raise ValueError("bad offset")
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"the checkpoint cannot be read ({exc})") from None
        return state


# The steps of a checkpoint write, one function each (tests stop the process
# between them to check that every crash point leaves a usable checkpoint).


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _rename(source: Path, target: Path) -> None:
    os.replace(source, target)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(path: Path, state: FileCheckpoint) -> None:
    """Replace the checkpoint at *path* with *state* atomically and durably:
    write a temporary file, fsync it, rename it over *path*, fsync the directory."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write(fd, state.to_json())
        _fsync(fd)
    finally:
        os.close(fd)
    _rename(temporary, path)
    _fsync_dir(path.parent)


def read_checkpoint(path: Path) -> FileCheckpoint | None:
    """The checkpoint at *path*, or None when there is none. A temporary file
    left by a crash mid-write is removed: the checkpoint it would have replaced
    still stands."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return FileCheckpoint.from_json(data)
