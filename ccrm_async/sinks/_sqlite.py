"""The SQLite output: tables ``calls`` and ``notes`` keyed by uuid, and the checkpoint.

Each window is one transaction: its calls and notes are upserted by uuid, the
records that could not be read go into ``rejects``, and, when the window is
closed (far enough in the past that no call can still appear in it) and was
read completely, a row saying so goes into ``pull_windows`` in the same
transaction. A crash or Ctrl-C therefore loses only the open window, and a
re-run skips every window recorded as finished. The database can collect any
number of pulls and syncs: upserts keep each call once whatever overlaps.

Schema (columns beyond ``raw`` are copies of its fields, for queries)::

    calls(uuid PRIMARY KEY, call_date, direction, service, status, duration,
          has_notes, from_number, to_number, external_number, destination, raw)
    notes(uuid PRIMARY KEY, call_uuid, created, plain_text, text, raw)
    pull_windows(date_from, date_to, notes, records, finished_at,
                 PRIMARY KEY (date_from, date_to))
    rejects(kind, uuid, page, path, reason, raw, window_from, window_to, rejected_at,
            UNIQUE (kind, uuid))

``rejects.raw`` is the record's JSON as received (keys in their order); a
record rejected again (a re-run) replaces its row; one without a uuid is
replaced with its window. ``call_date`` is NULL for a call the API dated
``0000-00-00 00:00:00``, ``has_notes`` and ``duration`` when it left them empty
(a first-release file, where they were NOT NULL, is rebuilt on opening: see
:func:`_allow_empty_call_fields`).

``raw`` holds the JSONL object of :func:`~ccrm_async.sinks.call_object` (for
``calls``, without its notes). A call pulled again with notes gets exactly
the notes the API lists now.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .._core.dates import format_datetime, parse_datetime
from ..models import CallRecord, Note, RejectedRecord
from ._plan import Window
from ._records import (
    CALL_COLUMNS,
    NOTE_COLUMNS,
    call_object,
    note_object,
    sqlite_call_row,
    sqlite_note_row,
)

__all__ = ["SqliteSink"]

log = logging.getLogger(__name__)

_CALLS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    uuid TEXT PRIMARY KEY,
    call_date TEXT,
    direction TEXT,
    service TEXT,
    status TEXT,
    duration INTEGER,
    has_notes INTEGER,
    from_number TEXT,
    to_number TEXT,
    external_number TEXT,
    destination TEXT,
    raw TEXT NOT NULL
)"""

_SCHEMA = (
    _CALLS_TABLE.format(name="calls")
    + """;
CREATE INDEX IF NOT EXISTS calls_call_date ON calls (call_date);
CREATE TABLE IF NOT EXISTS notes (
    uuid TEXT PRIMARY KEY,
    call_uuid TEXT NOT NULL,
    created TEXT,
    plain_text TEXT,
    text TEXT,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_call_uuid ON notes (call_uuid);
CREATE TABLE IF NOT EXISTS pull_windows (
    date_from TEXT NOT NULL,
    date_to TEXT NOT NULL,
    notes INTEGER NOT NULL,
    records INTEGER NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (date_from, date_to)
);
CREATE TABLE IF NOT EXISTS rejects (
    kind TEXT NOT NULL,
    uuid TEXT,
    page INTEGER NOT NULL,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    window_from TEXT NOT NULL,
    window_to TEXT NOT NULL,
    rejected_at TEXT NOT NULL,
    UNIQUE (kind, uuid)
);
"""
)

#: Columns the first release declared NOT NULL that the API can leave empty.
_NOW_NULLABLE = frozenset({"call_date", "has_notes"})


def _upsert(table: str, columns: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "uuid")
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - fixed names only
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT (uuid) DO UPDATE SET {updates}"
    )


_UPSERT_CALL = _upsert("calls", CALL_COLUMNS)
_UPSERT_NOTE = _upsert("notes", NOTE_COLUMNS)
_DELETE_NOTES = "DELETE FROM notes WHERE call_uuid = ?"
_REJECT_COLUMNS = (
    "kind",
    "uuid",
    "page",
    "path",
    "reason",
    "raw",
    "window_from",
    "window_to",
    "rejected_at",
)
_INSERT_REJECT = (
    f"INSERT INTO rejects ({', '.join(_REJECT_COLUMNS)}) "  # noqa: S608 - fixed names only
    f"VALUES ({', '.join('?' for _ in _REJECT_COLUMNS)}) "
    "ON CONFLICT (kind, uuid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _REJECT_COLUMNS[2:])
)
_FORGET_ANONYMOUS_REJECTS = (
    "DELETE FROM rejects WHERE uuid IS NULL AND window_from = ? AND window_to = ?"
)
_FINISH_WINDOW = (
    "INSERT OR REPLACE INTO pull_windows (date_from, date_to, notes, records, finished_at) "
    "VALUES (?, ?, ?, ?, ?)"
)

#: Rows are sent to SQLite in batches of this many calls.
BATCH_CALLS = 500


def _allow_empty_call_fields(db: sqlite3.Connection, path: Path) -> None:
    """Files written by the first release declare ``calls.call_date`` and
    ``has_notes`` NOT NULL, so a zero-dated call could not be stored: rebuild
    that table without those constraints, inside the caller's transaction
    (all rows copied and counted; its indexes made again). A table that is
    not exactly ours (other columns, or triggers, which a rebuild would drop)
    is left as it is, with a warning."""
    info = db.execute("PRAGMA table_info(calls)").fetchall()  # cid, name, type, notnull, ...
    if not any(row[1] in _NOW_NULLABLE and row[3] for row in info):
        return
    columns = [row[1] for row in info]
    triggers = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'calls'"
    ).fetchone()[0]
    if columns != list(CALL_COLUMNS) or triggers:
        log.warning(
            "%s: table calls was changed by hand (columns or triggers), so it keeps its "
            "NOT NULL call_date and has_notes: a call the API leaves undated fails to insert",
            path,
        )
        return
    indexes = [
        sql
        for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' "
            "AND sql IS NOT NULL"
        )
    ]
    names = ", ".join(columns)
    db.execute(_CALLS_TABLE.format(name="calls_upgraded"))
    db.execute(f"INSERT INTO calls_upgraded ({names}) SELECT {names} FROM calls")  # noqa: S608 - our column names
    copied = db.execute("SELECT count(*) FROM calls_upgraded").fetchone()[0]
    held = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    if copied != held:  # cannot happen: the copy is one statement
        raise sqlite3.DatabaseError(f"{path}: copied {copied} of {held} calls; nothing changed")
    db.execute("DROP TABLE calls")
    db.execute("ALTER TABLE calls_upgraded RENAME TO calls")
    for sql in indexes:
        db.execute(sql)
    log.info("%s: calls.call_date and has_notes may now be empty (%d calls kept)", path, held)


class SqliteSink:
    """Calls (and notes) into a SQLite database; see the module docstring.

    *notes* says whether this pull fetches notes: a window finished without
    notes is pulled again when notes are wanted.
    """

    def __init__(self, path: Path, *, notes: bool = False) -> None:
        self.path = path
        self.notes = notes
        self._db = sqlite3.connect(path, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA busy_timeout = 10000")
            self._db.execute("BEGIN IMMEDIATE")
            _allow_empty_call_fields(self._db, path)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute("COMMIT")
            self._finished = {
                (row[0], row[1]): bool(row[2])
                for row in self._db.execute("SELECT date_from, date_to, notes FROM pull_windows")
            }
        except BaseException:
            self._db.close()
            raise
        self._calls: list[tuple[Any, ...]] = []
        self._notes: list[tuple[Any, ...]] = []
        self._noted_calls: list[tuple[str]] = []
        self._records = 0
        self._window = Window(datetime.min, datetime.min)

    def is_done(self, window: Window) -> bool:
        with_notes = self._finished.get(window.wire)
        return with_notes is not None and (with_notes or not self.notes)

    def last_call_date(self) -> datetime | None:
        """The newest ``call_date`` stored, or None for an empty database."""
        (value,) = self._db.execute("SELECT MAX(call_date) FROM calls").fetchone()
        return parse_datetime(value) if value else None

    def count(self, table: str) -> int:
        """Rows in ``calls``, ``notes`` or ``rejects``."""
        if table not in ("calls", "notes", "rejects"):
            raise ValueError(f"no table {table!r}")
        (value,) = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(value)

    def begin(self, window: Window) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute(_FORGET_ANONYMOUS_REJECTS, window.wire)
        self._window = window
        self._records = 0

    def add_reject(self, reject: RejectedRecord) -> None:
        start, end = self._window.wire
        row = (
            reject.kind,
            reject.uuid,
            reject.page,
            reject.path,
            reject.reason,
            reject.raw_json,
            start,
            end,
            format_datetime(datetime.now()),
        )
        self._db.execute(_INSERT_REJECT, row)

    def add(self, call: CallRecord, notes: Sequence[Note] | None) -> None:
        self._calls.append(sqlite_call_row(call_object(call)))
        if notes is not None:
            self._noted_calls.append((call.uuid,))
            self._notes.extend(sqlite_note_row(note_object(n), call.uuid) for n in notes)
        self._records += 1
        if len(self._calls) >= BATCH_CALLS:
            self._flush()

    def _flush(self) -> None:
        db = self._db
        db.executemany(_UPSERT_CALL, self._calls)
        db.executemany(_DELETE_NOTES, self._noted_calls)
        db.executemany(_UPSERT_NOTE, self._notes)
        self._calls.clear()
        self._noted_calls.clear()
        self._notes.clear()

    def commit(self, window: Window, *, closed: bool) -> bool:
        self._flush()
        if closed:
            start, end = window.wire
            finished_at = format_datetime(datetime.now())
            self._db.execute(
                _FINISH_WINDOW, (start, end, int(self.notes), self._records, finished_at)
            )
        self._db.execute("COMMIT")
        if closed:
            self._finished[window.wire] = self.notes
        return closed

    def rollback(self) -> None:
        self._calls.clear()
        self._noted_calls.clear()
        self._notes.clear()
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            self._db.close()
