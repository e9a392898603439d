"""The contact directory's SQLite file: its layout, building one, opening one.

One SQLite file (or an in-memory database when no path is given): ``meta``
(schema version, counts, the custom-field names), ``contacts`` (each contact
as JSON) and ``phones`` (``key, kind, slot, sort_key, contact``; its primary
key is the shared-number rule, so a lookup is one index range read, a few
microseconds, and nothing is loaded at start: a restart is instant).

Ownership. Every file this module writes carries ``PRAGMA application_id``
:data:`APPLICATION_ID` in its header (bytes 68-71), so :func:`is_directory_file`
recognises a contact directory from its first 100 bytes without opening it as
a database. :func:`build_file` replaces only such a file (or nothing): an
unrelated SQLite database, a CSV, anything else at the target path is refused
with :class:`DirectoryError` and left byte for byte as it was.

A file is never changed in place. Every build writes a new file next to the
target (mode 0600, since it holds personal data), fsyncs it and renames it
over the target. Readers never see a half-built directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

import attrs
import cattrs
import orjson

from ..errors import CCRMError
from ..models.contacts import Organisation, Person
from .fields import Contact, contact_identifier
from .phones import try_normalize_phone

__all__ = [
    "APPLICATION_ID",
    "LOOKUP",
    "ORGANISATION",
    "PERSON",
    "SCHEMA_VERSION",
    "ContactSources",
    "DirectoryError",
    "DirectoryStats",
    "Snapshot",
    "build_file",
    "build_memory",
    "check_replaceable",
    "decode",
    "file_identity",
    "is_directory_file",
    "open_file",
    "snapshot",
]

#: The version of the SQLite layout; a file of another version is refused.
SCHEMA_VERSION = "1"
#: ``PRAGMA application_id`` of every directory file: ``CCTH`` as a big-endian int.
APPLICATION_ID = int.from_bytes(b"CCTH", "big")
_SQLITE_MAGIC = b"SQLite format 3\x00"

PERSON, ORGANISATION = 0, 1
_BATCH = 2000

_SCHEMA = f"""
PRAGMA application_id = {APPLICATION_ID};
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE contacts (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE phones (
    key TEXT NOT NULL,
    kind INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    sort_key TEXT NOT NULL,
    contact INTEGER NOT NULL,
    PRIMARY KEY (key, kind, slot, sort_key, contact)
) WITHOUT ROWID;
"""
#: Every contact of one key, in the shared-number rule's order.
LOOKUP = (
    "SELECT c.kind, c.record FROM phones AS p JOIN contacts AS c ON c.id = p.contact"
    " WHERE p.key = ? ORDER BY p.kind, p.slot, p.sort_key, p.contact"
)

# Contacts as stored: attrs -> JSON-able dicts and back, defaults left out.
_STORE = cattrs.Converter(omit_if_default=True, detailed_validation=False)

ContactSources = Iterable[Iterable[Contact]]


class DirectoryError(CCRMError):
    """A directory file that cannot be used or replaced, or export files that
    cannot be read or told apart (people or organisations?)."""


@attrs.frozen
class DirectoryStats:
    """What a build put in the directory.

    ``people`` and ``organisations`` are contact counts, ``numbers`` the
    distinct phone keys, ``shared_numbers`` the keys of more than one contact,
    ``skipped_phones`` the stored numbers that are not phone numbers, and
    ``built_at`` the build time in seconds since the epoch.
    """

    people: int = 0
    organisations: int = 0
    numbers: int = 0
    shared_numbers: int = 0
    skipped_phones: int = 0
    built_at: float = 0.0

    @property
    def contacts(self) -> int:
        return self.people + self.organisations


def _encode(contact: Contact) -> bytes:
    return orjson.dumps(_STORE.unstructure(contact), option=orjson.OPT_SORT_KEYS)


def decode(kind: int, record: bytes) -> Contact:
    """A stored contact back as a :class:`Person` or :class:`Organisation`."""
    data = orjson.loads(record)
    if kind == PERSON:
        return _STORE.structure(data, Person)
    return _STORE.structure(data, Organisation)


class _Builder:
    """Writes one directory database from a stream of contacts."""

    def __init__(self, conn: sqlite3.Connection, names: Mapping[str, str]) -> None:
        self.conn = conn
        self.names = dict(names)
        self.next_id = 1
        self.counts = {PERSON: 0, ORGANISATION: 0}
        self.skipped = 0
        self.contacts: list[tuple[int, int, bytes]] = []
        self.phones: list[tuple[str, int, int, str, int]] = []
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(_SCHEMA)

    def add(self, contact: Contact) -> None:
        if isinstance(contact, Person):
            kind = PERSON
        elif isinstance(contact, Organisation):
            kind = ORGANISATION
        else:
            raise TypeError(f"expected Person or Organisation, got {type(contact).__name__}")
        record = _encode(contact)
        sort_key = contact_identifier(contact) or hashlib.sha256(record).hexdigest()
        contact_id = self.next_id
        self.next_id += 1
        self.counts[kind] += 1
        self.contacts.append((contact_id, kind, record))
        seen: set[str] = set()
        for slot, phone in enumerate(contact.phones, 1):
            key = try_normalize_phone(phone.number)
            if key is None:
                self.skipped += 1
            elif key not in seen:
                seen.add(key)
                self.phones.append((key, kind, slot, sort_key, contact_id))
        if len(self.contacts) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self.conn.executemany("INSERT INTO contacts VALUES (?, ?, ?)", self.contacts)
        self.contacts.clear()

    def finish(self) -> DirectoryStats:
        self._flush()
        self.phones.sort()  # insert in key order: a WITHOUT ROWID table fills fastest so
        self.conn.executemany("INSERT INTO phones VALUES (?, ?, ?, ?, ?)", self.phones)
        self.phones.clear()
        numbers, shared = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(n > 1), 0)"
            " FROM (SELECT COUNT(*) AS n FROM phones GROUP BY key)"
        ).fetchone()
        stats = DirectoryStats(
            people=self.counts[PERSON],
            organisations=self.counts[ORGANISATION],
            numbers=numbers,
            shared_numbers=shared,
            skipped_phones=self.skipped,
            built_at=time.time(),
        )
        meta = {
            "schema": SCHEMA_VERSION,
            "stats": orjson.dumps(attrs.asdict(stats)).decode(),
            "custom_field_names": orjson.dumps(self.names).decode(),
        }
        self.conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self.conn.commit()
        return stats


def _fill(
    conn: sqlite3.Connection, contacts: ContactSources, names: Mapping[str, str]
) -> DirectoryStats:
    builder = _Builder(conn, names)
    for source in contacts:
        for contact in source:
            builder.add(contact)
    return builder.finish()


def is_directory_file(path: str | os.PathLike[str]) -> bool:
    """Whether *path* is a SQLite file with this module's ``application_id``.

    Reads the first 100 bytes and nothing else (the file is not opened as a
    database, so nothing about it changes). :class:`OSError` when it cannot
    be read.
    """
    with open(path, "rb") as f:
        header = f.read(100)
    return (
        len(header) == 100
        and header.startswith(_SQLITE_MAGIC)
        and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    )


def check_replaceable(path: Path) -> None:
    """Raise :class:`DirectoryError` unless *path* is missing or a directory
    file (what :func:`build_file` may replace)."""
    try:
        if not path.exists():
            return
        if path.is_dir():
            raise DirectoryError(f"{path} is a directory, not a contact directory file")
        ours = is_directory_file(path)
    except OSError as exc:
        raise DirectoryError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not ours:
        raise DirectoryError(
            f"{path} exists and is not a contact directory file; "
            "it is left as it is: choose another path or move it away"
        )


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def build_file(path: Path, contacts: ContactSources, names: Mapping[str, str]) -> DirectoryStats:
    """Build into a new file beside *path*, then rename it over *path*.

    Refuses (:class:`DirectoryError`, nothing written) when *path* holds
    anything but a directory file; a file-system or SQLite failure is raised
    as :class:`DirectoryError` naming the path.
    """
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".building", dir=path.parent
        )
    except OSError as exc:
        raise DirectoryError(f"cannot write beside {path}: {exc.strerror or exc}") from None
    os.close(fd)  # mkstemp made it 0600; SQLite fills the empty file
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp)
        try:
            stats = _fill(conn, contacts, names)
        finally:
            conn.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check_replaceable(path)  # nothing else appeared there meanwhile
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DirectoryError(f"cannot write {path}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise DirectoryError(f"cannot write {path}: SQLite: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return stats


def build_memory(contacts: ContactSources, names: Mapping[str, str]) -> sqlite3.Connection:
    """A new in-memory directory database from *contacts*."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        _fill(conn, contacts, names)
    except BaseException:
        conn.close()
        raise
    return conn


@attrs.frozen
class Snapshot:
    """One open directory database and what its ``meta`` says."""

    conn: sqlite3.Connection
    stats: DirectoryStats
    names: Mapping[str, str]
    identity: tuple[int, int, int, int] | None  # the file's (dev, inode, mtime, size)


def file_identity(path: Path) -> tuple[int, int, int, int]:
    """``(dev, inode, mtime_ns, size)``: changes when the file is replaced."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def snapshot(
    conn: sqlite3.Connection,
    identity: tuple[int, int, int, int] | None,
    where: str = "the contact directory",
) -> Snapshot:
    """Read ``meta`` of the open *conn* (closed on failure)."""
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        conn.close()
        raise DirectoryError(f"{where} is not a contact directory file") from None
    if meta.get("schema") != SCHEMA_VERSION:
        conn.close()
        raise DirectoryError(
            f"{where}: contact directory schema {meta.get('schema')!r}; this version reads "
            f"{SCHEMA_VERSION!r}: build it again"
        )
    stats = DirectoryStats(**orjson.loads(meta["stats"]))
    names = orjson.loads(meta.get("custom_field_names", "{}"))
    return Snapshot(conn, stats, names, identity)


def open_file(path: Path) -> Snapshot:
    """The directory file at *path*, read-only (:class:`FileNotFoundError` when
    missing, :class:`DirectoryError` when it is not one)."""
    identity = file_identity(path)  # FileNotFoundError when missing
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DirectoryError(f"cannot open the contact directory {path}: {exc}") from None
    return snapshot(conn, identity, str(path))
