"""Bulk pulls into files and databases: JSONL, CSV and SQLite sinks with checkpoints.

>>> query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 31, 23, 59, 59),
...                   notes=True)                                    # doctest: +SKIP
>>> sink = open_sink(Path("calls.sqlite"), query)                    # doctest: +SKIP
>>> try:
...     report = await pull_into(crm, sink, query)
... finally:
...     sink.close()

The range is pulled in date windows (a day by default), one after another;
each window is committed with a checkpoint, so running the same pull again
after a crash or Ctrl-C continues with the first unfinished window and every
record ends up in the output exactly once. See :class:`SqliteSink`,
:class:`JsonlSink` and :class:`CsvSink` for the formats.
"""

from __future__ import annotations

from pathlib import Path

from ._base import SINK_FORMATS, Sink, SinkError, sink_format
from ._checkpoint import (
    CHECKPOINT_SUFFIX,
    REJECTS_SUFFIX,
    CheckpointError,
    FileCheckpoint,
    checkpoint_path,
    read_checkpoint,
    rejects_path,
    write_checkpoint,
)
from ._files import CsvSink, JsonlSink
from ._plan import PullQuery, Window, format_duration, parse_duration, plan_windows
from ._pull import SETTLE_TIME, PullProgress, PullReport, pull_into
from ._records import call_object, csv_columns, csv_row, note_object
from ._sqlite import SqliteSink

__all__ = [
    "CHECKPOINT_SUFFIX",
    "REJECTS_SUFFIX",
    "SETTLE_TIME",
    "SINK_FORMATS",
    "CheckpointError",
    "CsvSink",
    "FileCheckpoint",
    "JsonlSink",
    "PullProgress",
    "PullQuery",
    "PullReport",
    "Sink",
    "SinkError",
    "SqliteSink",
    "Window",
    "call_object",
    "checkpoint_path",
    "csv_columns",
    "csv_row",
    "format_duration",
    "note_object",
    "open_sink",
    "parse_duration",
    "plan_windows",
    "pull_into",
    "read_checkpoint",
    "rejects_path",
    "sink_format",
    "write_checkpoint",
]


def open_sink(path: Path, query: PullQuery, *, csv_dialect: str = "default") -> Sink:
    """The sink for *path*'s extension (``.jsonl``, ``.csv``, ``.sqlite``),
    resumed from its checkpoint when it has one. Raises :class:`SinkError` for
    another extension or an output that belongs to a different pull.
    *csv_dialect* (``"default"`` or ``"excel"``) applies to ``.csv``."""
    fmt = sink_format(path)
    if fmt == "jsonl":
        return JsonlSink(path, query)
    if fmt == "csv":
        return CsvSink(path, query, dialect=csv_dialect)
    if fmt == "sqlite":
        return SqliteSink(path, notes=query.notes)
    known = ", ".join(SINK_FORMATS)
    raise SinkError(f"cannot tell the output format of {path.name!r}; use one of: {known}")
