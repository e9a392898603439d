"""Where export jobs are remembered: in memory, or in a SQLite file that survives
a restart, so that a callback arriving after the service came back up still
completes its job (see :meth:`ExportReceiver.job`).

A record never holds the callback token, only its SHA-256 digest; the file is
created with mode 0600 all the same, since it names export files.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

import attrs
import orjson

from .._core.export_lifecycle import ExportStatus

__all__ = ["ExportStatus", "JobRecord", "JobStore", "MemoryJobStore", "SQLiteJobStore"]


@attrs.frozen
class JobRecord:
    """One export job as stored. Times are seconds since the epoch.

    ``origin`` is the trusted API origin the download must come from;
    ``tries`` the downloads started for it (see
    :data:`~ccrm_async._core.export_lifecycle.MAX_TRIES`) and ``queued`` the
    file ids of callbacks accepted while a download ran;
    ``path`` the file the export is (or will be) saved as, ``None`` to name
    it after the job in the receiver's directory.
    """

    job_id: str
    kind: str
    columns: tuple[str, ...]
    token_digest: str = attrs.field(repr=False)
    origin: str
    created_at: float
    deadline_at: float
    status: ExportStatus = ExportStatus.PENDING
    path: str | None = None
    file_id: str | None = None
    size: int | None = None
    sha256: str | None = None
    format: str | None = None
    error: str | None = None
    finished_at: float | None = None
    tries: int = 0
    queued: tuple[str, ...] = ()


class JobStore(Protocol):
    """The few operations the receiver needs; implement them to keep jobs elsewhere."""

    def put(self, record: JobRecord) -> None:
        """Insert or replace the record of ``record.job_id``."""

    def get(self, job_id: str) -> JobRecord | None:
        """The record, or ``None``."""

    def delete(self, job_id: str) -> None:
        """Forget the job (an export request that failed)."""

    def unfinished(self) -> list[JobRecord]:
        """Records still pending or downloading."""

    def close(self) -> None:
        """Release the storage."""


class MemoryJobStore:
    """Jobs kept in a dict: the default; lost when the process ends."""

    def __init__(self) -> None:
        self._records: dict[str, JobRecord] = {}

    def put(self, record: JobRecord) -> None:
        self._records[record.job_id] = record

    def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def delete(self, job_id: str) -> None:
        self._records.pop(job_id, None)

    def unfinished(self) -> list[JobRecord]:
        return [r for r in self._records.values() if not r.status.finished]

    def close(self) -> None:
        """Nothing to release."""


_FIELDS = [a.name for a in attrs.fields(JobRecord)]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS export_jobs (
    job_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    columns TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at REAL NOT NULL,
    deadline_at REAL NOT NULL,
    status TEXT NOT NULL,
    path TEXT,
    file_id TEXT,
    size INTEGER,
    sha256 TEXT,
    format TEXT,
    error TEXT,
    finished_at REAL,
    tries INTEGER NOT NULL DEFAULT 0,
    queued TEXT NOT NULL DEFAULT '[]'
)
"""

# Columns added after the first release, for stores written by an older version.
_ADDED = {"tries": "INTEGER NOT NULL DEFAULT 0", "queued": "TEXT NOT NULL DEFAULT '[]'"}


class SQLiteJobStore:
    """Jobs kept in a SQLite file (created with mode 0600), one row per job.

    Each call is one short transaction on the caller's thread; the receiver
    makes a handful per job, so this does not need a thread of its own.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        self._db.execute(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(export_jobs)")}
        for name, kind in _ADDED.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE export_jobs ADD COLUMN {name} {kind}")

    def __repr__(self) -> str:
        return f"SQLiteJobStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the job store is closed")
        return self._db

    def put(self, record: JobRecord) -> None:
        values = [getattr(record, name) for name in _FIELDS]
        values[_FIELDS.index("columns")] = orjson.dumps(list(record.columns)).decode()
        values[_FIELDS.index("queued")] = orjson.dumps(list(record.queued)).decode()
        values[_FIELDS.index("status")] = record.status.value
        placeholders = ", ".join("?" for _ in _FIELDS)
        with self._lock:
            self._conn().execute(
                f"INSERT OR REPLACE INTO export_jobs ({', '.join(_FIELDS)}) "  # noqa: S608 - fixed names
                f"VALUES ({placeholders})",
                values,
            )

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    f"SELECT {', '.join(_FIELDS)} FROM export_jobs WHERE job_id = ?",  # noqa: S608
                    (job_id,),
                )
                .fetchone()
            )
        return _record(row) if row is not None else None

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM export_jobs WHERE job_id = ?", (job_id,))

    def unfinished(self) -> list[JobRecord]:
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    f"SELECT {', '.join(_FIELDS)} FROM export_jobs "  # noqa: S608
                    "WHERE status IN ('pending', 'downloading') ORDER BY created_at"
                )
                .fetchall()
            )
        return [_record(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()


def _record(row: tuple[object, ...]) -> JobRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    values["columns"] = tuple(orjson.loads(str(values["columns"])))
    values["queued"] = tuple(orjson.loads(str(values["queued"])))
    values["status"] = ExportStatus(str(values["status"]))
    return JobRecord(**values)  # type: ignore[arg-type]
