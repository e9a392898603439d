"""ExportJob, the awaitable handle of one export; JobState, what it and its
receiver share; ExportResult, its file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .._core.export_files import ExportFormat
from .._core.export_lifecycle import ExportStatus, Lifecycle
from ..models.contacts import Organisation, Person
from ..transport import RequestCounters, Transport
from ._files import csv_encoding, iter_organisations, iter_people
from ._store import JobRecord

__all__ = ["ExportJob", "ExportResult", "JobState", "lifecycle_of", "stored"]

T = TypeVar("T")

_YIELD_EVERY = 256  # records parsed between two yields to the event loop


@attrs.frozen
class ExportResult:
    """A downloaded export file.

    ``path`` is where it was saved (mode 0600), ``size`` its length in bytes,
    ``sha256`` the hex digest of those bytes, ``format`` the format detected
    from its content, ``columns`` the columns that were requested and ``kind``
    ``"people"`` or ``"organisations"``.
    """

    job_id: str
    kind: str
    path: Path
    size: int
    sha256: str
    format: ExportFormat
    columns: tuple[str, ...]

    def people(self) -> AsyncIterator[Person]:
        """The file's rows as :class:`~ccrm_async.models.Person` records, streamed."""
        if self.kind != "people":
            raise ValueError(f"this is a {self.kind} export; use organisations()")
        return _records(self.path, self.format, iter_people)

    def organisations(self) -> AsyncIterator[Organisation]:
        """The file's rows as :class:`~ccrm_async.models.Organisation` records, streamed."""
        if self.kind != "organisations":
            raise ValueError(f"this is a {self.kind} export; use people()")
        return _records(self.path, self.format, iter_organisations)


async def _records(
    path: Path,
    fmt: ExportFormat,
    reader: Callable[..., Iterator[T]],
) -> AsyncIterator[T]:
    # The CSV encoding check reads the whole file once: do it off the loop.
    encoding = await asyncio.to_thread(csv_encoding, path) if fmt is ExportFormat.CSV else None
    records = reader(path, fmt, encoding=encoding)
    try:
        for count, record in enumerate(records, 1):
            yield record
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def lifecycle_of(record: JobRecord) -> Lifecycle:
    """The state machine's value of a stored job."""
    return Lifecycle(
        deadline_at=record.deadline_at,
        status=record.status,
        file_id=record.file_id,
        queued=record.queued,
        tries=record.tries,
        finished_at=record.finished_at,
    )


def stored(record: JobRecord, lifecycle: Lifecycle, **changes: object) -> JobRecord:
    """*record* carrying *lifecycle* (and *changes*), to store."""
    return attrs.evolve(
        record,
        status=lifecycle.status,
        file_id=lifecycle.file_id,
        queued=lifecycle.queued,
        tries=lifecycle.tries,
        finished_at=lifecycle.finished_at,
        **changes,  # type: ignore[arg-type]
    )


class JobState:
    """One live job as its receiver keeps it: the stored record, the state
    machine's value, the future its handle awaits, the transport it
    downloads through and what the download reported. The receiver changes it
    through :meth:`apply`; the handle only reads it."""

    def __init__(
        self,
        record: JobRecord,
        *,
        transport: Transport | None,
        future: asyncio.Future[ExportResult],
    ) -> None:
        self.record = record
        self.lifecycle = lifecycle_of(record)
        self.transport = transport
        self.future = future
        future.add_done_callback(_retrieve)
        self.counters = RequestCounters()
        self.progress: list[Callable[[int, int | None], None]] = []
        self.bytes_received = 0
        self.bytes_total: int | None = None
        self.received_at: float | None = None

    @property
    def job_id(self) -> str:
        return self.record.job_id

    def apply(self, lifecycle: Lifecycle, **changes: object) -> JobRecord:
        """Take the machine's next value; returns the record to store (with
        *changes*, such as the result's path and digest)."""
        self.lifecycle = lifecycle
        self.record = stored(self.record, lifecycle, **changes)
        return self.record

    def detach(self) -> None:
        """The handle's end without the job's (its receiver closed): shown
        cancelled here, while the store keeps the job for a restart."""
        self.record = attrs.evolve(self.record, status=ExportStatus.CANCELLED)

    def report(self, received: int, total: int | None) -> None:
        """Download progress: bytes on disk, and the file's size when known."""
        self.bytes_received = received
        self.bytes_total = total
        for callback in self.progress:
            callback(received, total)


class ExportJob:
    """One export in progress; ``await job`` gives its :class:`ExportResult`.

    Returned by :meth:`CCRMClient.export_people` and
    :meth:`CCRMClient.export_organisations`, or by :meth:`ExportReceiver.job`.
    It fails with :class:`~ccrm_async.ExportTimeout` when no usable callback
    arrives before its deadline (1800 s by default),
    :class:`~ccrm_async.ExportCancelled` when cancelled or when its receiver
    closes first, and :class:`~ccrm_async.DownloadError` when the file cannot
    be fetched. A download refused as a forged or stale callback would explain
    (403, 404, 410) does not end it: the job waits for another callback, at
    most 5 downloads in all (see :data:`ccrm_async.exports.MAX_TRIES`).
    """

    def __init__(self, state: JobState, cancel: Callable[[JobState], bool]) -> None:
        self._state = state
        self._cancel = cancel

    def __repr__(self) -> str:
        return f"ExportJob(id={self.id!r}, kind={self.kind!r}, status={self.status.value!r})"

    @property
    def id(self) -> str:
        """The job's id (a uuid): give it to :meth:`ExportReceiver.job` after a restart."""
        return self._state.record.job_id

    @property
    def kind(self) -> str:
        """``"people"`` or ``"organisations"``."""
        return self._state.record.kind

    @property
    def columns(self) -> tuple[str, ...]:
        """The requested columns."""
        return self._state.record.columns

    @property
    def status(self) -> ExportStatus:
        """Where the job stands now."""
        return self._state.record.status

    @property
    def deadline_at(self) -> float:
        """When the job times out without a callback, in seconds since the epoch
        (on the receiver's clock)."""
        return self._state.record.deadline_at

    @property
    def tries(self) -> int:
        """Downloads started for this job so far."""
        return self._state.lifecycle.tries

    @property
    def counters(self) -> RequestCounters:
        """The download's HTTP requests, retries and rate-limit pauses, as
        counted by the transport."""
        return self._state.counters

    @property
    def bytes_received(self) -> int:
        """Bytes of the file downloaded so far."""
        return self._state.bytes_received

    @property
    def bytes_total(self) -> int | None:
        """The file's size when the server announced it."""
        return self._state.bytes_total

    @property
    def received_at(self) -> float | None:
        """When the callback was accepted, on the receiver's monotonic clock."""
        return self._state.received_at

    def done(self) -> bool:
        """True once the job has a result or an error."""
        return self._state.future.done()

    def cancel(self) -> bool:
        """Cancel the job: its token is revoked, a running download stopped and
        its ``.part`` file removed; waiters get :class:`~ccrm_async.ExportCancelled`.
        Returns False when the job was already finished."""
        return self._cancel(self._state)

    def add_progress_callback(self, callback: Callable[[int, int | None], None]) -> None:
        """Call ``callback(bytes_received, bytes_total)`` as the file arrives."""
        self._state.progress.append(callback)

    async def wait(self, timeout: float | None = None) -> ExportResult:  # noqa: ASYNC109
        """The result, waiting at most *timeout* seconds (none by default).

        When *timeout* runs out first, the built-in :class:`TimeoutError` is
        raised and the job goes on: wait again, or :meth:`cancel` it.
        Cancelling the waiting task does not cancel the job.
        """
        if timeout is None:
            return await asyncio.shield(self._state.future)
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._state.future)

    def __await__(self) -> Generator[Any, None, ExportResult]:
        return self.wait().__await__()


def _retrieve(future: asyncio.Future[ExportResult]) -> None:
    # A failed job nobody awaits must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()
