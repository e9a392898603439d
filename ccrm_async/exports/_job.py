"""ExportJob, the awaitable handle of one export, and ExportResult, its file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from .._core.export_files import ExportFormat
from ..models.contacts import Organisation, Person
from ._files import csv_encoding, iter_organisations, iter_people
from ._store import ExportStatus, JobRecord

if TYPE_CHECKING:
    from ..transport import Transport
    from ._receiver import ExportReceiver

__all__ = ["ExportJob", "ExportResult"]

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


class ExportJob:
    """One export in progress; ``await job`` gives its :class:`ExportResult`.

    Returned by :meth:`CCRMClient.export_people` and
    :meth:`CCRMClient.export_organisations`, or by :meth:`ExportReceiver.job`.
    It fails with :class:`~ccrm_async.ExportTimeout` when no callback arrives
    before its deadline (1800 s by default), :class:`~ccrm_async.ExportCancelled`
    when cancelled or when its receiver closes first, and
    :class:`~ccrm_async.DownloadError` when the file cannot be fetched.
    """

    def __init__(
        self,
        receiver: ExportReceiver,
        record: JobRecord,
        *,
        transport: Transport | None,
        future: asyncio.Future[ExportResult],
    ) -> None:
        self._receiver = receiver
        self._record = record
        self._transport = transport
        self._future = future
        future.add_done_callback(_retrieve)
        self._progress: list[Callable[[int, int | None], None]] = []
        self.bytes_received = 0
        """Bytes of the file downloaded so far."""
        self.bytes_total: int | None = None
        """The file's size when the server announced it."""
        self.received_at: float | None = None
        """When the callback was accepted, on the receiver's monotonic clock."""

    def __repr__(self) -> str:
        return f"ExportJob(id={self.id!r}, kind={self.kind!r}, status={self.status.value!r})"

    @property
    def id(self) -> str:
        """The job's id (a uuid): give it to :meth:`ExportReceiver.job` after a restart."""
        return self._record.job_id

    @property
    def kind(self) -> str:
        """``"people"`` or ``"organisations"``."""
        return self._record.kind

    @property
    def columns(self) -> tuple[str, ...]:
        """The requested columns."""
        return self._record.columns

    @property
    def status(self) -> ExportStatus:
        """Where the job stands now."""
        return self._record.status

    @property
    def deadline_at(self) -> float:
        """When the job times out without a callback, in seconds since the epoch."""
        return self._record.deadline_at

    def done(self) -> bool:
        """True once the job has a result or an error."""
        return self._future.done()

    def cancel(self) -> bool:
        """Cancel the job: its token is revoked, a running download stopped and
        its ``.part`` file removed; waiters get :class:`~ccrm_async.ExportCancelled`.
        Returns False when the job was already finished."""
        return self._receiver._cancel_job(self)

    def add_progress_callback(self, callback: Callable[[int, int | None], None]) -> None:
        """Call ``callback(bytes_received, bytes_total)`` as the file arrives."""
        self._progress.append(callback)

    async def wait(self, timeout: float | None = None) -> ExportResult:  # noqa: ASYNC109
        """The result, waiting at most *timeout* seconds (none by default).

        When *timeout* runs out first, the built-in :class:`TimeoutError` is
        raised and the job goes on: wait again, or :meth:`cancel` it.
        Cancelling the waiting task does not cancel the job.
        """
        if timeout is None:
            return await asyncio.shield(self._future)
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._future)

    def __await__(self) -> Generator[Any, None, ExportResult]:
        return self.wait().__await__()

    # -- for the receiver --------------------------------------------------------

    def _on_progress(self, received: int, total: int | None) -> None:
        self.bytes_received = received
        self.bytes_total = total
        for callback in self._progress:
            callback(received, total)


def _retrieve(future: asyncio.Future[ExportResult]) -> None:
    # A failed job nobody awaits must not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()
