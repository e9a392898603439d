"""The keys a pull has yielded, held in bounded memory.

Exactly-once output needs every key already yielded (a repair pass reads the
whole range again). Held as a Python set that costs about 130 bytes a key: a
pull of 3 million calls would hold some 400 MB. :class:`SeenKeys` keeps at
most :data:`MEMORY_KEYS` (100,000, about 13 MB) in a set; beyond that it moves
them into a private temporary SQLite database on disk (``sqlite3.connect("")``:
deleted when closed, its page cache 2 MiB), and checks each page's keys
against it in one query. So memory stays flat however long the pull, and the
check stays exact (no hashing, no probabilistic filter): a record is never
dropped as a duplicate it is not. Keys are stored by ``str()`` once moved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Sequence

__all__ = ["MEMORY_KEYS", "SeenKeys"]

#: Keys held in memory at most before they move to disk (about 13 MB of
#: uuids). Past it each key costs about 2.5 µs more (the move, and a query a
#: page): with 50,000, about 6 % of a 100,000-record pull's time went there.
MEMORY_KEYS = 100_000

_BATCH = 500  # keys per query (SQLite allows 32,766 parameters since 3.32)


class SeenKeys:
    """A set of keys that moves to a temporary database past *memory_keys*."""

    def __init__(self, memory_keys: int | None = None) -> None:
        memory_keys = MEMORY_KEYS if memory_keys is None else memory_keys
        if memory_keys < 1:
            raise ValueError(f"memory_keys must be >= 1, got {memory_keys!r}")
        self.memory_keys = memory_keys
        self._memory: set[Hashable] = set()
        self._db: sqlite3.Connection | None = None
        self.on_disk = 0

    def __len__(self) -> int:
        return len(self._memory) + self.on_disk

    def admit(self, keys: Sequence[Hashable]) -> list[bool]:
        """For each of *keys*: True when it is new (and now held), False when
        it was held already (or came earlier in *keys*)."""
        memory = self._memory
        stored = self._stored(keys) if self._db is not None else ()
        fresh = []
        for key in keys:
            if key in memory or (stored and str(key) in stored):
                fresh.append(False)
            else:
                memory.add(key)
                fresh.append(True)
        if len(memory) > self.memory_keys:
            self._spill()
        return fresh

    def _stored(self, keys: Sequence[Hashable]) -> set[str]:
        assert self._db is not None
        names = [str(key) for key in keys]
        found: set[str] = set()
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", batch)  # noqa: S608 - only placeholders
            found.update(row[0] for row in rows)
        return found

    def _spill(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect("", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("PRAGMA cache_size=-2048")
            self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        names = sorted(str(key) for key in self._memory)
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((n,) for n in names))
        self._db.execute("COMMIT")
        self.on_disk += len(names)
        self._memory.clear()

    def close(self) -> None:
        """Free the memory and delete the database."""
        self._memory.clear()
        if self._db is not None:
            self._db.close()
            self._db = None
