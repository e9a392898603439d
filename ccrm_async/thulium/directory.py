"""ContactDirectory: phone number -> CCRM contact, kept in SQLite.

Built from CCRM export files, :class:`~ccrm_async.exports.ExportResult` s or
plain iterables of :class:`~ccrm_async.models.Person` and
:class:`~ccrm_async.models.Organisation`; refreshed from CCRM itself with
:meth:`ContactDirectory.refresh` (both exports through an
:class:`~ccrm_async.exports.ExportReceiver`).

Keys. Every phone of every contact is indexed under its canonical key
(:func:`~ccrm_async.thulium.phones.normalize_phone`); a stored number that is
not a phone number (an extension note, a typo) is counted in
``stats.skipped_phones`` and not indexed.

Shared numbers. When several contacts have the same number, the answer is the
first by this rule, the same on every build and every machine:

1. a person before an organisation (a caller is a person; an organisation's
   switchboard number often appears on its people too);
2. the number in an earlier phone slot (``phone1`` before ``phone2``: the
   contact's main number);
3. the smaller sort key: the contact's own id when the export had a ``uuid``
   (or ``id``) column, else the SHA-256 of the contact's content, so the
   answer does not depend on the order of files or rows.

:meth:`ContactDirectory.matches` lists every contact of a number in that order.

Storage. One SQLite file (or an in-memory database when no path is given):
``meta`` (schema version, counts, the custom-field names), ``contacts`` (each
contact as JSON) and ``phones`` (``key, kind, slot, sort_key, contact``; its
primary key is the rule above, so a lookup is one index range read, a few
microseconds, and nothing is loaded at start: a restart is instant).

A file is never changed in place. Every build writes a new file next to the
target (mode 0600, since it holds personal data), fsyncs it and renames it
over the target; the directory then swaps its read-only connection. Readers
never see a half-built directory, and another process serving the same file
picks up the new one within ``watch_interval`` seconds (1). A refresh builds
in a worker thread; lookups go on from the old data until the swap.

Use a directory from one thread (an event loop's); only builds run elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote

import attrs
import cattrs
import orjson

from .._core.export_columns import CUSTOM_FIELD_PREFIX
from .._core.export_files import organisation_from_row, person_from_row
from ..errors import CCRMError
from ..exports import ExportResult, read_rows
from ..models.contacts import Organisation, Person
from .fields import Contact, contact_identifier
from .phones import normalize_phone, try_normalize_phone

if TYPE_CHECKING:
    from ..client import CCRMClient
    from ..exports import ExportJob, ExportReceiver

__all__ = [
    "ORGANISATION_REFRESH_COLUMNS",
    "PEOPLE_REFRESH_COLUMNS",
    "SCHEMA_VERSION",
    "SENSITIVE_PEOPLE_COLUMNS",
    "ContactDirectory",
    "DirectoryError",
    "DirectoryStats",
    "detect_kind",
]

log = logging.getLogger("ccrm_async.thulium")

#: The version of the SQLite layout; a file of another version is refused.
SCHEMA_VERSION = "1"

_CONTACT_SLOTS = tuple(
    f"{kind}{n}{suffix}"
    for kind in ("phone", "email")
    for n in (1, 2, 3)
    for suffix in ("", "Name")
)
#: People columns :meth:`ContactDirectory.refresh` exports by default (no PESEL,
#: no identity document: what is not exported cannot leak).
PEOPLE_REFRESH_COLUMNS: tuple[str, ...] = (
    "firstName",
    "middleName",
    "lastName",
    "description",
    *_CONTACT_SLOTS,
    "addresses",
)
#: Added to the people columns with ``include_sensitive=True``.
SENSITIVE_PEOPLE_COLUMNS: tuple[str, ...] = ("pesel", "idDocType", "idDocNumber", "idDocIssuer")
#: Organisation columns :meth:`ContactDirectory.refresh` exports by default.
ORGANISATION_REFRESH_COLUMNS: tuple[str, ...] = (
    "name",
    "description",
    *_CONTACT_SLOTS,
    "nip",
    "regon",
    "addresses",
)

_PERSON, _ORGANISATION = 0, 1
_KINDS: dict[str, int] = {"people": _PERSON, "organisations": _ORGANISATION}
_PEOPLE_ONLY = frozenset(
    {"firstName", "middleName", "lastName", "pesel", "idDocType", "idDocNumber", "idDocIssuer"}
    | {"organisations"}
)
_ORGANISATIONS_ONLY = frozenset({"name", "nip", "regon", "registry", "people"})
_BATCH = 2000

_SCHEMA = """
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
_LOOKUP = (
    "SELECT c.kind, c.record FROM phones AS p JOIN contacts AS c ON c.id = p.contact"
    " WHERE p.key = ? ORDER BY p.kind, p.slot, p.sort_key, p.contact"
)

# Contacts as stored: attrs -> JSON-able dicts and back, defaults left out.
_STORE = cattrs.Converter(omit_if_default=True, detailed_validation=False)


class DirectoryError(CCRMError):
    """A directory file that cannot be used, or export files that cannot be
    told apart (people or organisations?)."""


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


def detect_kind(headers: Iterable[str]) -> Literal["people", "organisations"]:
    """``"people"`` or ``"organisations"`` from an export file's column headers.

    Counts the headers only one kind has (``firstName``, ``lastName``,
    ``pesel``, ``idDoc*``, ``organisations.*`` for people; ``name``, ``nip``,
    ``regon``, ``registry``, ``people.*`` for organisations); raises
    :class:`DirectoryError` when neither wins (e.g. only phones and e-mails).
    """
    roots = {str(h).strip().split(".", 1)[0] for h in headers}
    people = len(roots & _PEOPLE_ONLY)
    organisations = len(roots & _ORGANISATIONS_ONLY)
    if people > organisations:
        return "people"
    if organisations > people:
        return "organisations"
    raise DirectoryError(
        "cannot tell whether the file holds people or organisations from its columns;"
        " name it as people or organisations explicitly"
    )


def _first_headers(path: str | os.PathLike[str]) -> list[str] | None:
    rows = read_rows(path)
    try:
        first = next(iter(rows), None)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    return None if first is None else [str(h) for h, _ in first]


def _file_contacts(
    path: str | os.PathLike[str], kind: Literal["people", "organisations"] | None
) -> Iterator[Contact]:
    if kind is None:
        headers = _first_headers(path)
        if headers is None:
            return  # no rows: nothing to index, whatever the kind
        try:
            kind = detect_kind(headers)
        except DirectoryError as exc:
            raise DirectoryError(f"{Path(path).name}: {exc.message}") from None
    convert = person_from_row if kind == "people" else organisation_from_row
    for row in read_rows(path):
        yield convert(row)


def _result_contacts(result: ExportResult) -> Iterator[Contact]:
    convert = person_from_row if result.kind == "people" else organisation_from_row
    for row in read_rows(result.path, result.format):
        yield convert(row)


# -- building ------------------------------------------------------------------


def _encode(contact: Contact) -> bytes:
    return orjson.dumps(_STORE.unstructure(contact), option=orjson.OPT_SORT_KEYS)


def _decode(kind: int, record: bytes) -> Contact:
    data = orjson.loads(record)
    if kind == _PERSON:
        return _STORE.structure(data, Person)
    return _STORE.structure(data, Organisation)


class _Builder:
    """Writes one directory database from a stream of contacts."""

    def __init__(self, conn: sqlite3.Connection, names: Mapping[str, str]) -> None:
        self.conn = conn
        self.names = dict(names)
        self.next_id = 1
        self.counts = {_PERSON: 0, _ORGANISATION: 0}
        self.skipped = 0
        self.contacts: list[tuple[int, int, bytes]] = []
        self.phones: list[tuple[str, int, int, str, int]] = []
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.executescript(_SCHEMA)

    def add(self, contact: Contact) -> None:
        if isinstance(contact, Person):
            kind = _PERSON
        elif isinstance(contact, Organisation):
            kind = _ORGANISATION
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
            people=self.counts[_PERSON],
            organisations=self.counts[_ORGANISATION],
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
    conn: sqlite3.Connection, contacts: Iterable[Iterable[Contact]], names: Mapping[str, str]
) -> DirectoryStats:
    builder = _Builder(conn, names)
    for source in contacts:
        for contact in source:
            builder.add(contact)
    return builder.finish()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system can
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _build_file(
    path: Path, contacts: Iterable[Iterable[Contact]], names: Mapping[str, str]
) -> DirectoryStats:
    """Build into a new file beside *path*, then rename it over *path*."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".building", dir=path.parent)
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
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return stats


def _build_memory(
    contacts: Iterable[Iterable[Contact]], names: Mapping[str, str]
) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        _fill(conn, contacts, names)
    except BaseException:
        conn.close()
        raise
    return conn


# -- reading -------------------------------------------------------------------


@attrs.frozen
class _Snapshot:
    """One open directory database and what its ``meta`` says."""

    conn: sqlite3.Connection
    stats: DirectoryStats
    names: Mapping[str, str]
    identity: tuple[int, int, int, int] | None  # the file's (dev, inode, mtime, size)


def _file_identity(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _snapshot(conn: sqlite3.Connection, identity: tuple[int, int, int, int] | None) -> _Snapshot:
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError:
        conn.close()
        raise DirectoryError("not a contact directory file") from None
    if meta.get("schema") != SCHEMA_VERSION:
        conn.close()
        raise DirectoryError(
            f"contact directory schema {meta.get('schema')!r}; this version reads "
            f"{SCHEMA_VERSION!r}: build it again"
        )
    stats = DirectoryStats(**orjson.loads(meta["stats"]))
    names = orjson.loads(meta.get("custom_field_names", "{}"))
    return _Snapshot(conn, stats, names, identity)


def _open_file(path: Path) -> _Snapshot:
    identity = _file_identity(path)  # FileNotFoundError when missing
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DirectoryError(f"cannot open the contact directory: {exc}") from None
    return _snapshot(conn, identity)


ContactSources = Iterable[Iterable[Contact]]


class ContactDirectory:
    """Phone number -> CCRM contact (see the module docstring for the rules).

    ``ContactDirectory()`` is empty and in memory; ``ContactDirectory(path)``
    opens the file at *path*, or creates an empty one there. Usually you use a
    class method: :meth:`open` (an existing file: instant), :meth:`build`,
    :meth:`from_files` or :meth:`from_results`. *watch_interval* (1 s) is how
    often, at most, a lookup checks whether the file was replaced by another
    process (``None``: never).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        watch_interval: float | None = 1.0,
    ) -> None:
        self._setup(path, watch_interval)
        if self.path is None:
            self._current = _snapshot(_build_memory([], {}), None)
        else:
            if not self.path.exists():
                _build_file(self.path, [], {})
            self._current = _open_file(self.path)

    def _setup(self, path: str | os.PathLike[str] | None, watch_interval: float | None) -> None:
        self.path = Path(path) if path is not None else None
        self.watch_interval = watch_interval
        self._next_check = 0.0
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        s = self.stats
        return f"ContactDirectory({where}, people={s.people}, organisations={s.organisations})"

    # -- constructors ----------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, watch_interval: float | None = 1.0
    ) -> ContactDirectory:
        """The directory saved at *path*; :class:`FileNotFoundError` when there is
        none, :class:`DirectoryError` when the file is not one."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no contact directory at {path}")
        return cls(path, watch_interval=watch_interval)

    @classmethod
    def build(
        cls,
        *,
        people: Iterable[Person] = (),
        organisations: Iterable[Organisation] = (),
        path: str | os.PathLike[str] | None = None,
        custom_field_names: Mapping[str, str] | None = None,
    ) -> ContactDirectory:
        """A directory of *people* and *organisations*, saved at *path* (replacing
        what is there) or in memory. *custom_field_names* maps custom-field
        uuids to names (the uuid is shown where a name is missing)."""
        return cls.build_from(
            [people, organisations], path=path, custom_field_names=custom_field_names
        )

    @classmethod
    def from_files(
        cls,
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        people: Iterable[str | os.PathLike[str]] = (),
        organisations: Iterable[str | os.PathLike[str]] = (),
        path: str | os.PathLike[str] | None = None,
        custom_field_names: Mapping[str, str] | None = None,
    ) -> ContactDirectory:
        """A directory from CCRM export files (CSV with ``;`` or ``,``, BOM or
        cp1250, XLSX, JSON: whatever :mod:`ccrm_async.exports` reads).

        Files in *paths* are told apart by their column headers
        (:func:`detect_kind`); files in *people* and *organisations* are taken
        as named. See :meth:`build` for *path* and *custom_field_names*.
        """
        return cls.build_from(
            cls.file_sources(paths, people=people, organisations=organisations),
            path=path,
            custom_field_names=custom_field_names,
        )

    @classmethod
    def from_results(
        cls,
        results: Iterable[ExportResult],
        *,
        path: str | os.PathLike[str] | None = None,
        custom_field_names: Mapping[str, str] | None = None,
    ) -> ContactDirectory:
        """A directory from downloaded exports (each result's ``kind`` says which)."""
        return cls.build_from(
            [_result_contacts(r) for r in results],
            path=path,
            custom_field_names=custom_field_names,
        )

    @classmethod
    def build_from(
        cls,
        sources: ContactSources,
        *,
        path: str | os.PathLike[str] | None = None,
        custom_field_names: Mapping[str, str] | None = None,
        watch_interval: float | None = 1.0,
    ) -> ContactDirectory:
        """A directory from iterables of people and organisations, mixed freely
        (see :meth:`build`)."""
        directory = cls.__new__(cls)
        directory._setup(path, watch_interval)
        directory._current = directory._make(sources, custom_field_names or {})
        return directory

    @staticmethod
    def file_sources(
        paths: Iterable[str | os.PathLike[str]] = (),
        *,
        people: Iterable[str | os.PathLike[str]] = (),
        organisations: Iterable[str | os.PathLike[str]] = (),
    ) -> list[Iterator[Contact]]:
        """Lazy contact streams of export files, for :meth:`replace_from`."""
        named: list[tuple[str | os.PathLike[str], Literal["people", "organisations"] | None]] = [
            *((p, None) for p in _paths(paths)),
            *((p, "people") for p in _paths(people)),
            *((p, "organisations") for p in _paths(organisations)),
        ]
        for p, _ in named:
            if not Path(p).is_file():
                raise FileNotFoundError(f"no such export file: {p}")
        return [_file_contacts(p, kind) for p, kind in named]

    # -- reading ---------------------------------------------------------------

    @property
    def stats(self) -> DirectoryStats:
        """Counts of the current build."""
        return self._current.stats

    @property
    def custom_field_names(self) -> Mapping[str, str]:
        """Custom-field uuid -> name, as given to the current build."""
        return self._current.names

    def __len__(self) -> int:
        return self.stats.contacts

    def _conn(self) -> sqlite3.Connection:
        if self.watch_interval is not None and self.path is not None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + self.watch_interval
                self._follow_file()
        return self._current.conn

    def _follow_file(self) -> None:
        assert self.path is not None
        try:
            if _file_identity(self.path) == self._current.identity:
                return
            snapshot = _open_file(self.path)
        except (OSError, DirectoryError) as exc:
            log.warning("contact directory file not reloaded: %s", type(exc).__name__)
            return
        self._swap(snapshot)
        log.info("contact directory reloaded: %d contacts", snapshot.stats.contacts)

    def lookup_key(self, key: str) -> Contact | None:
        """The contact of the canonical *key* (``+48600100200``) by the
        shared-number rule, or ``None``."""
        row = self._conn().execute(_LOOKUP + " LIMIT 1", (key,)).fetchone()
        return None if row is None else _decode(row[0], row[1])

    def lookup(self, phone: str) -> Contact | None:
        """The contact of *phone* in any accepted form, or ``None``; raises
        :class:`~ccrm_async.thulium.PhoneNumberError` when it is not a number."""
        return self.lookup_key(normalize_phone(phone))

    def matches(self, phone: str) -> list[Contact]:
        """Every contact with *phone*, in the shared-number rule's order."""
        rows = self._conn().execute(_LOOKUP, (normalize_phone(phone),)).fetchall()
        return [_decode(kind, record) for kind, record in rows]

    def contacts(self) -> Iterator[Contact]:
        """Every contact, in build order (of the build current when iteration
        starts; a swap during the iteration ends it with :class:`sqlite3.Error`)."""
        conn = self._current.conn
        for kind, record in conn.execute("SELECT kind, record FROM contacts ORDER BY id"):
            yield _decode(kind, record)

    # -- building and refreshing -----------------------------------------------

    def _swap(self, snapshot: _Snapshot) -> None:
        old, self._current = self._current, snapshot
        if old.conn is not snapshot.conn:
            old.conn.close()

    def _make(self, sources: ContactSources, names: Mapping[str, str]) -> _Snapshot:
        """Build a new database from *sources* (any thread) without swapping."""
        if self.path is None:
            return _snapshot(_build_memory(sources, names), None)
        _build_file(self.path, sources, names)
        return _open_file(self.path)

    def replace(
        self,
        *,
        people: Iterable[Person] = (),
        organisations: Iterable[Organisation] = (),
        names: Mapping[str, str] | None = None,
    ) -> DirectoryStats:
        """Rebuild from *people* and *organisations* and swap (blocking)."""
        return self.replace_from([people, organisations], names=names)

    def replace_from(
        self, sources: ContactSources, *, names: Mapping[str, str] | None = None
    ) -> DirectoryStats:
        """Rebuild from contact streams and swap (blocking). On any error the
        current data stays in use and the error is raised."""
        self._swap(self._make(sources, names or {}))
        return self.stats

    async def replace_from_async(
        self, sources: ContactSources, *, names: Mapping[str, str] | None = None
    ) -> DirectoryStats:
        """:meth:`replace_from`, built in a worker thread; lookups go on meanwhile."""
        snapshot = await asyncio.to_thread(self._make, sources, names or {})
        self._swap(snapshot)
        return self.stats

    @classmethod
    async def from_ccrm(
        cls,
        crm: CCRMClient,
        receiver: ExportReceiver,
        *,
        path: str | os.PathLike[str] | None = None,
        watch_interval: float | None = 1.0,
        **options: Any,
    ) -> ContactDirectory:
        """A new directory exported from CCRM, saved at *path* (replacing what
        is there, once built) or in memory. *options* are :meth:`refresh`'s."""
        directory = cls.__new__(cls)
        directory._setup(path, watch_interval)
        directory._current = await directory._export_and_make(crm, receiver, **options)
        return directory

    async def refresh(
        self,
        crm: CCRMClient,
        receiver: ExportReceiver,
        *,
        people_columns: Sequence[str] | None = None,
        organisation_columns: Sequence[str] | None = None,
        include_sensitive: bool = False,
        custom_field_names: Mapping[str, str] | None = None,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the export jobs' deadline
        keep_files: bool = False,
    ) -> DirectoryStats:
        """Export people and organisations from CCRM, rebuild, swap.

        - *people_columns* / *organisation_columns*: default
          :data:`PEOPLE_REFRESH_COLUMNS` (plus :data:`SENSITIVE_PEOPLE_COLUMNS`
          with *include_sensitive*) and :data:`ORGANISATION_REFRESH_COLUMNS`,
          each with a ``customFields.<uuid>`` column for every custom field of
          that contact type;
        - *custom_field_names*: uuid -> name, over the names CCRM lists
          (``crm.custom_fields.list``, which also gives the custom columns);
        - *timeout* (1800 s): each export's deadline;
        - *keep_files* (False): the downloaded exports are deleted once built.

        Both exports run at once, and the build runs in a worker thread;
        lookups keep answering from the current data until the swap. On any
        failure the current data stays in use and the error is raised; two
        refreshes never overlap.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            snapshot = await self._export_and_make(
                crm,
                receiver,
                people_columns=people_columns,
                organisation_columns=organisation_columns,
                include_sensitive=include_sensitive,
                custom_field_names=custom_field_names,
                timeout=timeout,
                keep_files=keep_files,
            )
            self._swap(snapshot)
            return self.stats

    async def _export_and_make(
        self,
        crm: CCRMClient,
        receiver: ExportReceiver,
        *,
        people_columns: Sequence[str] | None = None,
        organisation_columns: Sequence[str] | None = None,
        include_sensitive: bool = False,
        custom_field_names: Mapping[str, str] | None = None,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the export jobs' deadline
        keep_files: bool = False,
    ) -> _Snapshot:
        started = time.monotonic()
        names, person_fields, organisation_fields = await _custom_fields(crm, custom_field_names)
        if people_columns is None:
            people_columns = [
                *PEOPLE_REFRESH_COLUMNS,
                *(SENSITIVE_PEOPLE_COLUMNS if include_sensitive else ()),
                *(CUSTOM_FIELD_PREFIX + uuid for uuid in person_fields),
            ]
        if organisation_columns is None:
            organisation_columns = [
                *ORGANISATION_REFRESH_COLUMNS,
                *(CUSTOM_FIELD_PREFIX + uuid for uuid in organisation_fields),
            ]
        results = await _export_both(crm, receiver, people_columns, organisation_columns, timeout)
        try:
            sources = [_result_contacts(r) for r in results]
            snapshot = await asyncio.to_thread(self._make, sources, names)
        finally:
            if not keep_files:
                for result in results:
                    result.path.unlink(missing_ok=True)
        stats = snapshot.stats
        log.info(
            "contact directory built from CCRM: %d people, %d organisations, %d numbers in %.1f s",
            stats.people,
            stats.organisations,
            stats.numbers,
            time.monotonic() - started,
        )
        return snapshot

    async def refresh_every(
        self,
        every: float,
        crm: CCRMClient,
        receiver: ExportReceiver,
        *,
        first_after: float | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        **options: Any,
    ) -> None:
        """Call :meth:`refresh` every *every* seconds, forever (cancel the task to
        stop). The first refresh runs after *first_after* seconds (default
        *every*; 0 for at once). A failed refresh is logged (its error type and
        message, never contact data) and the old data stays; the next one runs
        on schedule. *options* go to :meth:`refresh`."""
        if every <= 0:
            raise ValueError("every must be > 0 seconds")
        await sleep(every if first_after is None else first_after)
        while True:
            try:
                await self.refresh(crm, receiver, **options)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("contact directory refresh failed (%s): %s", type(exc).__name__, exc)
            await sleep(every)

    def close(self) -> None:
        """Close the database connection."""
        self._current.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _paths(
    value: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
) -> list[str | os.PathLike[str]]:
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


async def _custom_fields(
    crm: CCRMClient, given: Mapping[str, str] | None
) -> tuple[dict[str, str], list[str], list[str]]:
    """uuid -> name, and the custom-field uuids of people and of organisations."""
    person = await crm.custom_fields.list("person")
    organisation = await crm.custom_fields.list("organisation")
    names = {f.uuid: f.name for f in [*person, *organisation] if f.name}
    if given is not None:
        names.update(given)
    return names, _uuids(person), _uuids(organisation)


def _uuids(fields: Collection[Any]) -> list[str]:
    return list(dict.fromkeys(f.uuid for f in fields))


async def _export_both(
    crm: CCRMClient,
    receiver: ExportReceiver,
    people_columns: Sequence[str],
    organisation_columns: Sequence[str],
    timeout: float,  # noqa: ASYNC109 - the export jobs' deadline
) -> list[ExportResult]:
    jobs: list[ExportJob] = []
    try:
        jobs.append(await crm.export_people(people_columns, receiver=receiver, timeout=timeout))
        jobs.append(
            await crm.export_organisations(organisation_columns, receiver=receiver, timeout=timeout)
        )
        return list(await asyncio.gather(*(job.wait() for job in jobs)))
    except BaseException:
        # Fail fast: stop the other job, and remove a file that already arrived
        # (awaiting a finished job does not suspend, even while cancelled).
        for job in jobs:
            if job.cancel():
                continue
            with contextlib.suppress(Exception):
                (await job.wait()).path.unlink(missing_ok=True)
        raise
