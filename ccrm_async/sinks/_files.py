"""JSONL and CSV outputs: whole records appended, a checkpoint per finished window.

See :mod:`ccrm_async.sinks._checkpoint` for the resume rule. Records are
encoded in memory and appended in chunks of whole records with plain
``os.write`` calls on the file's descriptor (no buffered writer that could flush
half a record); at the end of a window the output is fsynced, then the
checkpoint saved. A window that does not finish is cut off again: at once on an
error or Ctrl-C, or on the next run after a crash.

A window that is written but not finished (still open, or with misses the
repair passes could not settle) leaves the checkpoint where it was; so does
every window after it in the same run. The next run cuts the file back to the
checkpoint and fetches them again: each call ends up once.

Records that could not be read go to ``<output>.rejects.jsonl``, one JSON
object per line (``uuid``, ``page``, ``reason``, ``raw`` as received, and
``kind``, ``path``), appended and cut back with the output.
"""

from __future__ import annotations

import abc
import csv
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from ..models import CallRecord, Note, RejectedRecord
from ._base import SinkError
from ._checkpoint import (
    FileCheckpoint,
    checkpoint_path,
    read_checkpoint,
    rejects_path,
    write_checkpoint,
)
from ._plan import PullQuery, Window
from ._records import call_object, csv_columns, csv_row

__all__ = ["CSV_DIALECTS", "CsvSink", "JsonlSink", "reject_line"]

if sys.platform != "win32":
    import fcntl

    def _lock(fd: int, path: Path) -> None:
        """Keep a second pull from writing the same output at the same time."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SinkError(f"another pull is writing {path}") from None

else:  # pragma: no cover

    def _lock(fd: int, path: Path) -> None:
        return None


#: Encoded records are appended once this many bytes are waiting (256 KiB).
CHUNK_BYTES = 256 * 1024


class _FileSink(abc.ABC):
    format = ""

    def __init__(self, path: Path, query: PullQuery) -> None:
        self.path = path
        self.checkpoint_path = checkpoint_path(path)
        self.rejects_path = rejects_path(path)
        self.notes = query.notes
        existed = path.exists()
        self._rejects_fd = -1
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd, path)
            self.state, self._created = self._resume(FileCheckpoint.start(self.format, query))
        except BaseException:
            os.close(self._fd)
            if not existed:
                path.unlink(missing_ok=True)
            raise
        self._buffer = bytearray()
        self._rejects = bytearray()
        self._records = 0
        self._notes = 0
        self._rejected = 0
        self._open = False
        # Where this run's last commit left the files (a rollback goes back
        # there), and whether a window was left unfinished (the checkpoint then
        # stays put for the rest of the run).
        self._committed = self._position
        self._rejects_position = self._rejects_committed = self.state.rejects_offset
        self._windows_written = 0
        self._held_back = False

    def _resume(self, fresh: FileCheckpoint) -> tuple[FileCheckpoint, bool]:
        """The checkpoint to go on from, and whether this run starts the pull."""
        saved = read_checkpoint(self.checkpoint_path)
        size = os.fstat(self._fd).st_size
        rejects_size = self.rejects_path.stat().st_size if self.rejects_path.exists() else 0
        if saved is None:
            if size > 0:
                raise SinkError(
                    f"{self.path} exists and has no checkpoint of a pull; "
                    "remove it or choose another --out"
                )
            if rejects_size > 0:
                raise SinkError(
                    f"{self.rejects_path} exists and has no checkpoint of a pull; "
                    "remove it or choose another --out"
                )
            # An output with data but no checkpoint is never one of ours, and is
            # never overwritten.
            write_checkpoint(self.checkpoint_path, fresh)
            self._cut(0)
            return fresh, True
        if not saved.same_pull(fresh):
            raise SinkError(
                f"{self.path} holds another pull ({saved.describe()}); re-run that command "
                f"to finish it, or remove {self.path} and {self.checkpoint_path.name}"
            )
        if size < saved.offset:
            raise SinkError(
                f"{self.path} is shorter than its checkpoint says ({size} < {saved.offset} "
                f"bytes); remove it and {self.checkpoint_path.name} to start over"
            )
        if rejects_size < saved.rejects_offset:
            raise SinkError(
                f"{self.rejects_path} is shorter than its checkpoint says ({rejects_size} < "
                f"{saved.rejects_offset} bytes); remove the output, {self.rejects_path.name} "
                f"and {self.checkpoint_path.name} to start over"
            )
        # Drop what an unfinished window wrote after the last checkpoint.
        self._cut(saved.offset)
        if rejects_size > saved.rejects_offset:
            os.truncate(self.rejects_path, saved.rejects_offset)
        return saved, False

    def _cut(self, offset: int) -> None:
        """Truncate the output to *offset* bytes and write on from there."""
        os.ftruncate(self._fd, offset)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self._position = offset

    def _header(self) -> bytes:
        return b""

    @abc.abstractmethod
    def _encode(self, call: CallRecord, notes: Sequence[Note] | None) -> bytes:
        """One call (and its notes) as the bytes of one record of the file."""

    def is_done(self, window: Window) -> bool:
        return self.state.is_done(window)

    def begin(self, window: Window) -> None:
        self._open = True

    def add(self, call: CallRecord, notes: Sequence[Note] | None) -> None:
        self._buffer += self._encode(call, notes)
        self._records += 1
        self._notes += len(notes) if notes else 0
        if len(self._buffer) >= CHUNK_BYTES:
            self._flush()

    def add_reject(self, reject: RejectedRecord) -> None:
        self._rejects += reject_line(reject)
        self._rejected += 1

    def _flush(self) -> None:
        if self._position == 0:
            self._buffer[:0] = self._header()
        self._position += _append(self._fd, self._buffer)

    def _flush_rejects(self) -> None:
        if not self._rejects:
            return
        if self._rejects_fd < 0:
            self._rejects_fd = os.open(self.rejects_path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.lseek(self._rejects_fd, self._rejects_position, os.SEEK_SET)
        self._rejects_position += _append(self._rejects_fd, self._rejects)
        os.fsync(self._rejects_fd)

    def commit(self, window: Window, *, closed: bool) -> bool:
        self._flush()
        os.fsync(self._fd)
        self._flush_rejects()
        self._committed = self._position
        self._rejects_committed = self._rejects_position
        self._windows_written += 1
        finished = closed and not self._held_back
        if finished:
            state = self.state.advance(
                window,
                offset=self._position,
                records=self._records,
                notes=self._notes,
                rejects_offset=self._rejects_position,
                rejected=self._rejected,
            )
            write_checkpoint(self.checkpoint_path, state)
            self.state = state
        else:
            self._held_back = True
        self._records = self._notes = self._rejected = 0
        self._open = False
        return finished

    def rollback(self) -> None:
        self._buffer.clear()
        self._rejects.clear()
        self._records = self._notes = self._rejected = 0
        self._cut(self._committed)
        self._rejects_position = self._rejects_committed
        if self._rejects_fd >= 0:
            os.ftruncate(self._rejects_fd, self._rejects_committed)
        self._open = False

    def close(self) -> None:
        """Close the output (rolling back an open window). A pull that this run
        started and that wrote no window leaves no files behind."""
        if self._fd < 0:
            return
        try:
            if self._open:
                self.rollback()
        finally:
            os.close(self._fd)
            self._fd = -1
            if self._rejects_fd >= 0:
                os.close(self._rejects_fd)
                self._rejects_fd = -1
        if self._created and self._windows_written == 0:
            self.checkpoint_path.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            self.rejects_path.unlink(missing_ok=True)


def _append(fd: int, buffer: bytearray) -> int:
    """Write all of *buffer* at *fd*'s position and clear it; the bytes written."""
    written_total = 0
    view = memoryview(buffer)
    try:
        while view:
            written = os.write(fd, view)
            written_total += written
            view = view[written:]
    finally:
        view.release()
    buffer.clear()
    return written_total


def reject_line(reject: RejectedRecord) -> bytes:
    """One line of a rejects file: ``uuid``, ``page``, ``reason``, ``raw`` (the
    record as received), ``kind`` and ``path``."""
    body = {
        "uuid": reject.uuid,
        "page": reject.page,
        "reason": reject.reason,
        "raw": reject.raw,
        "kind": reject.kind,
        "path": reject.path,
    }
    return orjson.dumps(body) + b"\n"


class JsonlSink(_FileSink):
    """One JSON object per line and call (see :func:`~ccrm_async.sinks.call_object`)."""

    format = "jsonl"

    def _encode(self, call: CallRecord, notes: Sequence[Note] | None) -> bytes:
        return orjson.dumps(call_object(call, notes)) + b"\n"


#: CSV dialects: ``default`` is comma-separated UTF-8; ``excel`` is what Excel in
#: a Polish (or any comma-decimal) locale opens as columns, and CCRM's own
#: exports use: semicolons, and a UTF-8 byte-order mark first.
CSV_DIALECTS = ("default", "excel")


class CsvSink(_FileSink):
    """One row per call, a header row, UTF-8 (see :func:`~ccrm_async.sinks.csv_columns`).

    ``dialect="excel"`` separates with ``;`` and starts the file with a BOM.
    The dialect is part of the checkpoint: a pull is resumed only in its own.
    """

    format = "csv"

    def __init__(self, path: Path, query: PullQuery, *, dialect: str = "default") -> None:
        if dialect not in CSV_DIALECTS:
            raise ValueError(f"unknown CSV dialect {dialect!r}; known: {', '.join(CSV_DIALECTS)}")
        self._dialect = dialect
        if dialect != "default":
            self.format = f"csv-{dialect}"
        super().__init__(path, query)
        self._text = io.StringIO()
        self._writer = csv.writer(self._text, delimiter=";" if dialect == "excel" else ",")

    def _line(self, cells: list[str]) -> bytes:
        self._text.seek(0)
        self._text.truncate()
        self._writer.writerow(cells)
        return self._text.getvalue().encode("utf-8")

    def _header(self) -> bytes:
        bom = "\ufeff".encode() if self._dialect == "excel" else b""
        return bom + self._line(csv_columns(notes=self.notes))

    def _encode(self, call: CallRecord, notes: Sequence[Note] | None) -> bytes:
        return self._line(csv_row(call_object(call, notes), notes=self.notes))
