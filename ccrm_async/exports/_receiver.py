"""ExportReceiver: the ``pushUrl`` endpoint, inside the caller's event loop.

How a callback is answered (the order matters; see RELIABILITY.md 16-26):

1. The path must be ``{path}/{job id}/{token}`` of a job this receiver knows
   (live, or in its store after a restart), with the token's digest matching
   in constant time, and the job not cancelled, timed out or failed. Anything
   else raises :class:`aiohttp.web.HTTPNotFound` *before the body is read*: the
   same 404 as any unknown path, and the token is never logged.
2. The body is read up to 4 KiB (a larger ``Content-Length`` is refused at
   once with 413, a longer stream as soon as it passes the cap), then must be
   a JSON object whose ``url`` is a download URL on the trusted API origin
   (400 otherwise; the job stays pending).
3. The first valid callback records the file id and starts the download as a
   tracked background task; the answer (200) does not wait for it. The same
   callback again, even concurrently, gets 200 and starts nothing; another
   file id for the same job gets 409. Once the job has succeeded, an identical
   callback is still answered 200 for ``replay_window`` seconds so that a
   sender retrying after a lost answer stops; after that, 404.

Nothing here answers 5xx: an unexpected error is logged (its type only) and
answered 400.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import orjson
from aiohttp import web

from .._core.callback import (
    MAX_CALLBACK_BODY,
    CallbackRejected,
    check_public_url,
    check_route_path,
    new_job_id,
    new_token,
    origin_of,
    parse_callback_body,
    plausible_ids,
    push_url,
    token_digest,
    token_matches,
    validate_download_url,
)
from .._core.export_files import ExportFormat
from .._serving import ServedAsContext, serve
from ..errors import DownloadError, ExportCancelled, ExportError, ExportTimeout
from ..transport import Clock, Transport
from ._download import DEFAULT_MAX_BYTES, download_export
from ._job import ExportJob, ExportResult
from ._store import ExportStatus, JobRecord, JobStore, MemoryJobStore, SQLiteJobStore

if TYPE_CHECKING:
    from ..client import CCRMClient

__all__ = ["ExportReceiver"]

log = logging.getLogger("ccrm_async.exports")

_BODY_TIMEOUT = 10.0  # seconds to receive a callback body


class ExportReceiver(ServedAsContext):
    """Receives CCRM's export callbacks and completes the matching :class:`ExportJob`.

    ``async with ExportReceiver(listen=("0.0.0.0", 8080), public_url="https://hooks.example.com")``
    serves in the running event loop; or pass ``listen=None`` and
    :meth:`mount` it into your own :class:`aiohttp.web.Application`. One receiver
    serves any number of jobs and clients.

    - ``listen`` (``("127.0.0.1", 0)``): host and port to serve on; port 0 picks a
      free one (see :attr:`url`); ``None`` to mount instead.
    - ``public_url``: how CCRM reaches this receiver (behind a proxy, say); the
      ``pushUrl`` is ``{public_url}{path}/{job id}/{token}``. Default: :attr:`url`.
    - ``path`` (``"/ccrm-export"``): the route prefix.
    - ``directory``: where files are saved (created with mode 0700); default
      ``<tmp>/ccrm-exports-<uid>``. Each file is ``ccrm-<kind>-<job id>.<format>``
      unless the export named a path.
    - ``store``: a :class:`JobStore`, or a file path for a :class:`SQLiteJobStore`
      so that jobs survive a restart; default in memory.
    - ``max_bytes`` (1 GiB): the size cap of one file.
    - ``max_downloads`` (4): downloads running at once; the others queue.
    - ``shutdown_timeout`` (10 s): on close, how long running downloads may take
      to finish before they are cancelled.
    - ``replay_window`` (600 s): how long a repeat of a successful callback is
      still answered 200.
    """

    def __init__(
        self,
        *,
        listen: tuple[str, int] | None = ("127.0.0.1", 0),
        public_url: str | None = None,
        path: str = "/ccrm-export",
        directory: str | os.PathLike[str] | None = None,
        store: JobStore | str | os.PathLike[str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_downloads: int = 4,
        shutdown_timeout: float = 10.0,
        replay_window: float = 600.0,
        clock: Clock | None = None,
    ) -> None:
        if max_bytes < 1 or max_downloads < 1:
            raise ValueError("max_bytes and max_downloads must be >= 1")
        if shutdown_timeout < 0 or replay_window < 0:
            raise ValueError("shutdown_timeout and replay_window must be >= 0")
        self._listen = listen
        self._public_url = check_public_url(public_url) if public_url is not None else None
        self.path = check_route_path(path)
        self._directory = Path(directory) if directory is not None else None
        self._owns_store = not hasattr(store, "put")
        if store is None:
            self._store: JobStore = MemoryJobStore()
        elif isinstance(store, str | os.PathLike):
            self._store = SQLiteJobStore(store)
        else:
            self._store = store
        self.max_bytes = max_bytes
        self.shutdown_timeout = shutdown_timeout
        self.replay_window = replay_window
        self._clock = clock or Clock()
        self._slots = asyncio.Semaphore(max_downloads)
        self._jobs: dict[str, ExportJob] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._downloads: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._url: str | None = None
        self._started = False
        self._closing = False
        self.downloads_started = 0
        """Downloads started since the receiver was created (for tests and stats)."""

    def __repr__(self) -> str:
        where = self._url or ("mounted" if self._listen is None else "not started")
        return f"ExportReceiver({where}, jobs={len(self._jobs)})"

    # -- life cycle ---------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """Where this receiver listens (``http://host:port``), once started."""
        return self._url

    @property
    def public_url(self) -> str:
        """The base of every ``pushUrl``."""
        if self._public_url is not None:
            return self._public_url
        if self._url is not None:
            return self._url
        raise RuntimeError("public_url is required when the receiver is mounted")

    @property
    def directory(self) -> Path:
        """Where export files are saved; created (mode 0700) on first use."""
        if self._directory is not None:
            return _private_dir(self._directory, shared=False)
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return _private_dir(Path(tempfile.gettempdir()) / f"ccrm-exports-{uid}", shared=True)

    @property
    def background_tasks(self) -> frozenset[asyncio.Task[None]]:
        """The download tasks running now."""
        return frozenset(self._downloads.values())

    async def start(self) -> None:
        """Start serving (or, with ``listen=None``, start accepting mounted callbacks)."""
        if self._started:
            return
        if self._closing:
            raise RuntimeError("the receiver is closed")
        if self._listen is not None:
            host, port = self._listen
            app = web.Application()
            self.mount(app)
            running = await serve(app, host, port, shutdown_timeout=1.0)
            self._runner, self._site = running.runner, running.site
            self._url = running.url
        self._started = True

    async def close(self) -> None:
        """Stop: refuse new connections at once, fail waiting jobs with
        :class:`~ccrm_async.ExportCancelled`, give running downloads
        ``shutdown_timeout`` seconds, then cancel them (their ``.part`` files
        are removed). Pending jobs stay in a persistent store for a restart."""
        if self._closing:
            return
        self._closing = True
        if self._site is not None:
            await self._site.stop()  # the listening socket is closed here
        for job in list(self._jobs.values()):
            if job.status is ExportStatus.PENDING:
                self._finish(job, ExportCancelled("the export receiver closed"), persist=None)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        downloads = list(self._downloads.values())
        if downloads:
            _, late = await asyncio.wait(downloads, timeout=self.shutdown_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in list(self._timers.values()):
            task.cancel()
        self._timers.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_store:
            self._store.close()

    # -- routes ---------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The callback route, for ``app.add_routes(receiver.routes())``."""
        return [web.route("*", f"{self.path}/{{job_id}}/{{token}}", self._handle)]

    def mount(self, app: web.Application) -> None:
        """Add the callback route to *app*. Serve *app* with its access log off
        (or without the request path), since the path holds the token."""
        app.router.add_routes(self.routes())

    # -- jobs -------------------------------------------------------------------------

    def job(self, job_id: str, *, client: CCRMClient | None = None) -> ExportJob:
        """The handle of job *job_id*: the live one, or, after a restart, one
        rebuilt from the store. A rebuilt job that is not finished needs the
        *client* it downloads through (same API origin as the job's); it keeps
        its original deadline and downloads at once if its callback already
        arrived. Raises :class:`KeyError` for an unknown job."""
        live = self._jobs.get(job_id)
        if live is not None:
            return live
        record = self._store.get(job_id)
        if record is None:
            raise KeyError(job_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ExportResult] = loop.create_future()
        if record.status.finished:
            job = ExportJob(self, record, transport=None, future=future)
            _settle(future, record)
            return job
        if client is None:
            raise ValueError(f"job {job_id} is not finished: pass client= to download it")
        if str(origin_of(client.base_url)) != record.origin:
            raise ValueError(f"job {job_id} was requested from another API origin")
        if self._closing:
            raise RuntimeError("the receiver is closed")
        job = ExportJob(self, record, transport=client.transport, future=future)
        self._jobs[job_id] = job
        if record.status is ExportStatus.DOWNLOADING and record.file_id is not None:
            job.received_at = self._clock.now()
            self._start_download(job, record.file_id)
        else:
            remaining = record.deadline_at - time.time()
            if remaining <= 0:
                self._finish(job, _timeout(job), persist=ExportStatus.TIMED_OUT)
            else:
                self._start_timer(job, remaining)
        return job

    def _create_job(
        self,
        kind: str,
        columns: Sequence[str],
        transport: Transport,
        *,
        timeout: float,
        path: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> tuple[ExportJob, str]:
        """A new pending job and the ``pushUrl`` to send (the only copy of its token)."""
        if not self._started or self._closing:
            raise RuntimeError("the export receiver is not running (use 'async with')")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        base = self.public_url
        target: str | None = None
        if path is not None:
            resolved = Path(path).expanduser().resolve()
            if not resolved.parent.is_dir():
                raise ValueError(f"no such directory: {resolved.parent}")
            target = str(resolved)
        else:
            self.directory  # noqa: B018 - create it now, not at download time
        token = new_token()
        now = time.time()
        record = JobRecord(
            job_id=new_job_id(),
            kind=kind,
            columns=tuple(columns),
            token_digest=token_digest(token),
            origin=str(origin_of(transport.base_url)),
            created_at=now,
            deadline_at=now + timeout,
            path=target,
        )
        self._store.put(record)
        future: asyncio.Future[ExportResult] = asyncio.get_running_loop().create_future()
        job = ExportJob(self, record, transport=transport, future=future)
        if progress is not None:
            job.add_progress_callback(progress)
        self._jobs[record.job_id] = job
        self._start_timer(job, timeout)
        log.debug("export job %s (%s) created", record.job_id, kind)
        return job, push_url(base, self.path, record.job_id, token)

    def _discard(self, job: ExportJob) -> None:
        """Forget a job whose export request failed: its token is dead at once."""
        self._finish(job, ExportCancelled("the export request failed"), persist=None)
        self._store.delete(job.id)

    def _cancel_job(self, job: ExportJob) -> bool:
        if job.done():
            return False
        task = self._downloads.get(job.id)
        self._finish(
            job, ExportCancelled("the export job was cancelled"), persist=ExportStatus.CANCELLED
        )
        if task is not None:
            task.cancel()
        return True

    def _update(self, job: ExportJob, **changes: object) -> JobRecord:
        record = attrs.evolve(job._record, **changes)  # type: ignore[arg-type]
        job._record = record
        self._store.put(record)
        return record

    def _finish(
        self,
        job: ExportJob,
        outcome: ExportResult | ExportError,
        *,
        persist: ExportStatus | None,
    ) -> None:
        """Settle *job* once. *persist* is the status to store; ``None`` leaves the
        stored record as it is (the receiver closing: a restart may resume it)."""
        if job._future.done():
            return
        timer = self._timers.pop(job.id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self._jobs.pop(job.id, None)
        if persist is not None:
            changes: dict[str, object] = {"status": persist, "finished_at": time.time()}
            if isinstance(outcome, ExportError):
                changes["error"] = outcome.message
            else:
                changes.update(
                    path=str(outcome.path),
                    size=outcome.size,
                    sha256=outcome.sha256,
                    format=outcome.format.value,
                )
            self._update(job, **changes)
        elif isinstance(outcome, ExportError):
            job._record = attrs.evolve(job._record, status=ExportStatus.CANCELLED)
        if isinstance(outcome, ExportError):
            job._future.set_exception(outcome)
        else:
            job._future.set_result(outcome)

    # -- timers and downloads --------------------------------------------------------------

    def _start_timer(self, job: ExportJob, seconds: float) -> None:
        task = asyncio.create_task(self._deadline(job, seconds), name=f"export-deadline-{job.id}")
        self._timers[job.id] = task
        self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        # Every task is awaited by close(), cancelled ones included.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deadline(self, job: ExportJob, seconds: float) -> None:
        await self._clock.sleep(seconds)
        if job.status is ExportStatus.PENDING and not job.done():
            self._timers.pop(job.id, None)
            log.info("export job %s: no callback before the deadline; token revoked", job.id)
            self._finish(job, _timeout(job), persist=ExportStatus.TIMED_OUT)

    def _start_download(self, job: ExportJob, file_id: str) -> None:
        task = asyncio.create_task(self._download(job, file_id), name=f"export-download-{job.id}")
        self._downloads[job.id] = task
        self._track(task)
        self.downloads_started += 1
        task.add_done_callback(lambda _: self._downloads.pop(job.id, None))

    async def _download(self, job: ExportJob, file_id: str) -> None:
        record = job._record
        transport = job._transport
        assert transport is not None  # live jobs always have one
        target: Callable[[ExportFormat], Path]
        if record.path is not None:
            final = Path(record.path)
            part = final.with_name(final.name + ".part")
            target = lambda _: final  # noqa: E731
        else:
            directory = self.directory
            stem = f"ccrm-{record.kind}-{record.job_id}"
            part = directory / f"{stem}.part"
            target = lambda fmt: directory / f"{stem}.{fmt.value}"  # noqa: E731

        try:
            async with self._slots:
                log.info("export job %s: downloading", job.id)
                done = await download_export(
                    transport,
                    origin_of(record.origin),
                    file_id,
                    part=part,
                    target=target,
                    max_bytes=self.max_bytes,
                    progress=job._on_progress,
                )
        except asyncio.CancelledError:
            # Cancelled by close() (the store keeps it for a restart) or by cancel().
            self._finish(job, ExportCancelled("the export receiver closed"), persist=None)
            raise
        except DownloadError as exc:
            log.warning("export job %s: download failed: %s", job.id, exc.message)
            self._finish(job, exc, persist=ExportStatus.FAILED)
        except Exception as exc:  # a bug must still settle the job
            log.exception("export job %s: download failed", job.id)
            error = DownloadError(f"the download failed ({type(exc).__name__})")
            self._finish(job, error, persist=ExportStatus.FAILED)
        else:
            log.info("export job %s: %d bytes saved", job.id, done.size)
            result = ExportResult(
                job_id=record.job_id,
                kind=record.kind,
                path=done.path,
                size=done.size,
                sha256=done.sha256,
                format=done.format,
                columns=record.columns,
            )
            self._finish(job, result, persist=ExportStatus.SUCCEEDED)

    # -- the callback ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._callback(request)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except CallbackRejected as rejected:
            return _answer(rejected.status, rejected.reason)
        except OSError:  # the sender went away mid-body
            log.debug("export callback: connection lost while reading the body")
            return _answer(400, "bad request")
        except Exception as exc:  # never a 5xx
            log.warning("export callback: unexpected %s; answered 400", type(exc).__name__)
            return _answer(400, "bad request")

    async def _callback(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info.get("job_id", "")
        token = request.match_info.get("token", "")
        if request.method != "POST" or not plausible_ids(job_id, token):
            raise web.HTTPNotFound()
        record = self._record(job_id)
        if not token_matches(token, record.token_digest if record is not None else None):
            raise web.HTTPNotFound()
        assert record is not None
        if not self._may_call_back(record):
            raise web.HTTPNotFound()
        body = await _read_body(request)
        record = self._record(job_id)  # it may have changed while the body arrived
        if record is None or not self._may_call_back(record):
            raise web.HTTPNotFound()
        try:
            file_id = validate_download_url(parse_callback_body(body), origin_of(record.origin))
        except CallbackRejected as rejected:
            if record.status is ExportStatus.SUCCEEDED:
                raise web.HTTPNotFound() from None  # a used token
            log.info("export job %s: callback rejected: %s", job_id, rejected.reason)
            return _answer(rejected.status, rejected.reason)
        if record.file_id is None:
            self._accept(job_id, record, file_id)
            return _answer(200, "OK")
        if record.file_id == file_id:
            log.debug("export job %s: repeated callback ignored", job_id)
            return _answer(200, "OK")
        if record.status is ExportStatus.SUCCEEDED:
            raise web.HTTPNotFound()
        log.info("export job %s: callback with another file id refused", job_id)
        return _answer(409, "this job already has a file")

    def _record(self, job_id: str) -> JobRecord | None:
        live = self._jobs.get(job_id)
        # A finished job is in the store only: its record answers replays.
        return live._record if live is not None else self._store.get(job_id)

    def _may_call_back(self, record: JobRecord) -> bool:
        now = time.time()
        if record.status is ExportStatus.PENDING:
            return record.deadline_at > now
        if record.status is ExportStatus.DOWNLOADING:
            return True
        if record.status is ExportStatus.SUCCEEDED:
            return record.finished_at is not None and now - record.finished_at <= self.replay_window
        return False

    def _accept(self, job_id: str, record: JobRecord, file_id: str) -> None:
        job = self._jobs.get(job_id)
        log.info("export job %s: callback accepted", job_id)
        if job is None or job.done():
            # Known only to the store (a restart, or the receiver closing):
            # remember the file; the job downloads when it is resumed.
            self._store.put(attrs.evolve(record, status=ExportStatus.DOWNLOADING, file_id=file_id))
            return
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()
        self._update(job, status=ExportStatus.DOWNLOADING, file_id=file_id)
        job.received_at = self._clock.now()
        self._start_download(job, file_id)


# -- helpers ------------------------------------------------------------------------------


async def _read_body(request: web.Request) -> bytes:
    """The body, at most :data:`MAX_CALLBACK_BODY` bytes; more is a 413 without
    reading the rest (a declared ``Content-Length`` is checked before any read)."""
    length = request.content_length
    if length is not None and length > MAX_CALLBACK_BODY:
        raise CallbackRejected("body too large", status=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(_BODY_TIMEOUT):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > MAX_CALLBACK_BODY:
                    raise CallbackRejected("body too large", status=413)
                chunks.append(chunk)
    except TimeoutError:
        raise CallbackRejected("body too slow") from None
    return b"".join(chunks)


def _answer(status: int, message: str) -> web.Response:
    response = web.Response(
        status=status,
        body=orjson.dumps({"success": 200 <= status < 300, "message": message}),
        content_type="application/json",
    )
    if status == 413:
        response.force_close()  # do not read the rest of an oversized body
    return response


def _timeout(job: ExportJob) -> ExportTimeout:
    return ExportTimeout(f"no export callback for job {job.id} before its deadline")


def _settle(future: asyncio.Future[ExportResult], record: JobRecord) -> None:
    message = record.error or "the export job did not succeed"
    if record.status is ExportStatus.SUCCEEDED and record.path and record.size is not None:
        future.set_result(
            ExportResult(
                job_id=record.job_id,
                kind=record.kind,
                path=Path(record.path),
                size=record.size,
                sha256=record.sha256 or "",
                format=ExportFormat(record.format or "csv"),
                columns=record.columns,
            )
        )
    elif record.status is ExportStatus.TIMED_OUT:
        future.set_exception(ExportTimeout(message))
    elif record.status is ExportStatus.CANCELLED:
        future.set_exception(ExportCancelled(message))
    else:
        future.set_exception(DownloadError(message))


def _private_dir(path: Path, *, shared: bool) -> Path:
    """*path*, created with mode 0700 when missing. In a *shared* place (the
    system's temporary directory) it must be a real directory of ours, not a
    symlink or another user's."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path) if shared else os.stat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(f"not a directory: {path}")
    if shared and hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ValueError(f"directory belongs to another user: {path}")
    return path
