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

Where the jobs live: reading export files in :mod:`.files`, the SQLite file
(its layout, atomic builds, refusing to replace a file it did not write) in
:mod:`.store`, exporting from CCRM in :mod:`.refresh`; this module answers
lookups and swaps builds. After a build the directory swaps its read-only
connection; another process serving the same file picks up the new one within
``watch_interval`` seconds (1). A refresh builds in a worker thread; lookups go
on from the old data until the swap.

Use a directory from one thread (an event loop's); only builds run elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..exports import ExportResult
from ..models.contacts import Organisation, Person
from .fields import Contact
from .files import ExportFileSource, file_sources, result_contacts
from .phones import normalize_phone
from .refresh import RefreshOptions, export_contacts
from .store import (
    LOOKUP,
    ContactSources,
    DirectoryError,
    DirectoryStats,
    Snapshot,
    build_file,
    build_memory,
    decode,
    file_identity,
    open_file,
    snapshot,
)

if TYPE_CHECKING:
    from ..client import CCRMClient
    from ..exports import ExportReceiver

__all__ = ["ContactDirectory"]

log = logging.getLogger("ccrm_async.thulium")


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
            self._current = snapshot(build_memory([], {}), None)
        else:
            if not self.path.exists():
                build_file(self.path, [], {})
            self._current = open_file(self.path)

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
            [result_contacts(r) for r in results],
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
    ) -> list[ExportFileSource]:
        """Lazy contact streams of export files, for :meth:`replace_from`
        (see :func:`~ccrm_async.thulium.files.file_sources`)."""
        return file_sources(paths, people=people, organisations=organisations)

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
            if file_identity(self.path) == self._current.identity:
                return
            snapshot = open_file(self.path)
        except (OSError, DirectoryError) as exc:
            log.warning("contact directory file not reloaded: %s", type(exc).__name__)
            return
        self._swap(snapshot)
        log.info("contact directory reloaded: %d contacts", snapshot.stats.contacts)

    def lookup_key(self, key: str) -> Contact | None:
        """The contact of the canonical *key* (``+48600100200``) by the
        shared-number rule, or ``None``."""
        row = self._conn().execute(LOOKUP + " LIMIT 1", (key,)).fetchone()
        return None if row is None else decode(row[0], row[1])

    def lookup(self, phone: str) -> Contact | None:
        """The contact of *phone* in any accepted form, or ``None``; raises
        :class:`~ccrm_async.thulium.PhoneNumberError` when it is not a number."""
        return self.lookup_key(normalize_phone(phone))

    def matches(self, phone: str) -> list[Contact]:
        """Every contact with *phone*, in the shared-number rule's order."""
        rows = self._conn().execute(LOOKUP, (normalize_phone(phone),)).fetchall()
        return [decode(kind, record) for kind, record in rows]

    def contacts(self) -> Iterator[Contact]:
        """Every contact, in build order (of the build current when iteration
        starts; a swap during the iteration ends it with :class:`sqlite3.Error`)."""
        conn = self._current.conn
        for kind, record in conn.execute("SELECT kind, record FROM contacts ORDER BY id"):
            yield decode(kind, record)

    # -- building and refreshing -----------------------------------------------

    def _swap(self, snapshot: Snapshot) -> None:
        old, self._current = self._current, snapshot
        if old.conn is not snapshot.conn:
            old.conn.close()

    def _make(self, sources: ContactSources, names: Mapping[str, str]) -> Snapshot:
        """Build a new database from *sources* (any thread) without swapping."""
        if self.path is None:
            return snapshot(build_memory(sources, names), None)
        build_file(self.path, sources, names)
        return open_file(self.path)

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
        options: RefreshOptions | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        watch_interval: float | None = 1.0,
    ) -> ContactDirectory:
        """A new directory exported from CCRM with *options* (see
        :class:`~ccrm_async.thulium.RefreshOptions`), saved at *path* (refused
        when that holds anything but a directory file) or in memory."""
        directory = cls.__new__(cls)
        directory._setup(path, watch_interval)
        directory._current = await directory._export_and_make(
            crm, receiver, options or RefreshOptions()
        )
        return directory

    async def refresh(
        self,
        crm: CCRMClient,
        receiver: ExportReceiver,
        options: RefreshOptions | None = None,
    ) -> DirectoryStats:
        """Export people and organisations from CCRM, rebuild, swap.

        *options* (:class:`~ccrm_async.thulium.RefreshOptions`; default: the
        default columns, no sensitive data, 1800 s per export) say what is
        exported. Both exports run at once, and the build runs in a worker
        thread; lookups keep answering from the current data until the swap.
        On any failure the current data stays in use and the error is raised;
        two refreshes never overlap.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            snapshot = await self._export_and_make(crm, receiver, options or RefreshOptions())
            self._swap(snapshot)
            return self.stats

    async def _export_and_make(
        self, crm: CCRMClient, receiver: ExportReceiver, options: RefreshOptions
    ) -> Snapshot:
        started = time.monotonic()
        results, names = await export_contacts(crm, receiver, options)
        try:
            sources = [result_contacts(r) for r in results]
            snapshot = await asyncio.to_thread(self._make, sources, names)
        finally:
            if not options.keep_files:
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
        options: RefreshOptions | None = None,
        *,
        first_after: float | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        """Call :meth:`refresh` with *options* every *every* seconds, forever
        (cancel the task to stop). The first refresh runs after *first_after*
        seconds (default *every*; 0 for at once). A failed refresh is logged
        (its error type and message, never contact data) and the old data
        stays; the next one runs on schedule."""
        if every <= 0:
            raise ValueError("every must be > 0 seconds")
        await sleep(every if first_after is None else first_after)
        while True:
            try:
                await self.refresh(crm, receiver, options)
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
