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
3. What the callback does to the job is decided by the job's state machine
   (:mod:`ccrm_async._core.export_lifecycle`, which explains why): the first
   valid callback records the file id and starts the download as a tracked
   background task; the answer (200) does not wait for it. The same callback
   again, even concurrently, gets 200 and starts nothing; another file id
   while a download runs is queued (200), or gets 409 when the job has no try
   left. Once the job has succeeded, an identical callback is still answered
   200 for ``replay_window`` seconds so that a sender retrying after a lost
   answer stops; after that, 404.
4. A download the storage refuses with 403, 404 or 410 sends the job back to
   waiting (or on to a queued file); at most
   :data:`~ccrm_async._core.export_lifecycle.MAX_TRIES` (5) downloads per job.

Nothing here answers 5xx: an unexpected error is logged (its type only) and
answered 400. aiohttp's own server log, which would print the start of a
malformed request's target (the token), goes through the Thulium server's
scrubbing logger.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

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
from .._core.export_lifecycle import MAX_TRIES, ExportStatus, Lifecycle, Verdict
from .._serving import ScrubbedServerLog, ServedAsContext, serve
from ..errors import DownloadError, ExportCancelled, ExportError, ExportTimeout
from ..transport import Clock, Transport
from ._download import DEFAULT_MAX_BYTES, REFUSALS, download_export
from ._job import ExportJob, ExportResult, JobState, lifecycle_of, stored
from ._store import JobRecord, JobStore, MemoryJobStore, SQLiteJobStore

__all__ = ["ExportReceiver", "HasTransport"]


class HasTransport(Protocol):
    """What a job needs of a client: its transport (a :class:`CCRMClient` has one)."""

    @property
    def transport(self) -> Transport: ...


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
        self._jobs: dict[str, JobState] = {}
        self._handles: dict[str, ExportJob] = {}
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
            running = await serve(
                app,
                host,
                port,
                shutdown_timeout=1.0,
                # aiohttp logs a malformed request (an 8 KiB request line, say)
                # with the start of its target: the job id and the token.
                logger=ScrubbedServerLog("ccrm_async.exports.http"),
            )
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
        for state in list(self._jobs.values()):
            if state.lifecycle.status is ExportStatus.PENDING:
                self._detach(state, "the export receiver closed")
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
        """Add the callback route to *app*. The path holds the token: serve
        *app* with aiohttp's access log off and its server log scrubbed, as
        :meth:`start` does: ``web.AppRunner(app, access_log=None,
        logger=ccrm_async.thulium.ScrubbedServerLog("ccrm_async.exports.http"))``
        (the same class as the lookup server's)."""
        app.router.add_routes(self.routes())

    # -- jobs -------------------------------------------------------------------------

    @property
    def pending_jobs(self) -> int:
        """Jobs of this receiver that are not finished (waiting or downloading)."""
        return len(self._jobs)

    def now(self) -> float:
        """The receiver's time in seconds since the epoch (its clock's
        :meth:`~ccrm_async.transport.Clock.time`): deadlines are stored in it."""
        return self._clock.time()

    def job(self, job_id: str, *, client: HasTransport | None = None) -> ExportJob:
        """The handle of job *job_id*: the live one, or, after a restart, one
        rebuilt from the store. A rebuilt job that is not finished needs the
        *client* (anything with a ``transport``, such as a
        :class:`~ccrm_async.CCRMClient`) it downloads through, on the job's API
        origin; it keeps its original deadline and downloads at once if its
        callback already arrived. Raises :class:`KeyError` for an unknown job."""
        live = self._handles.get(job_id)
        if live is not None:
            return live
        record = self._store.get(job_id)
        if record is None:
            raise KeyError(job_id)
        future: asyncio.Future[ExportResult] = asyncio.get_running_loop().create_future()
        if record.status.finished:
            state = JobState(record, transport=None, future=future)
            _settle(future, record)
            return ExportJob(state, self._cancel)
        if client is None:
            raise ValueError(f"job {job_id} is not finished: pass client= to download it")
        transport = client.transport
        if str(origin_of(transport.base_url)) != record.origin:
            raise ValueError(f"job {job_id} was requested from another API origin")
        if self._closing:
            raise RuntimeError("the receiver is closed")
        state = JobState(record, transport=transport, future=future)
        job = self._adopt(state)
        if state.lifecycle.status is ExportStatus.DOWNLOADING:
            self._start_download(state)
        else:
            self._wait_for_callback(state)
        return job

    def register(
        self,
        kind: str,
        columns: Sequence[str],
        transport: Transport,
        *,
        timeout: float,
        path: str | os.PathLike[str] | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> tuple[ExportJob, str]:
        """A new pending job downloading through *transport*, and the
        ``pushUrl`` to send CCRM (the only copy of its token). *timeout* is the
        job's deadline, in seconds from now. :func:`start_export` calls this;
        if the export request then fails, it calls :meth:`forget`."""
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
        now = self.now()
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
        state = JobState(record, transport=transport, future=future)
        if progress is not None:
            state.progress.append(progress)
        job = self._adopt(state)
        self._wait_for_callback(state)
        log.debug("export job %s (%s) created", record.job_id, kind)
        return job, push_url(base, self.path, record.job_id, token)

    def forget(self, job: ExportJob) -> None:
        """Forget a job whose export request failed: its token is dead at once."""
        state = self._jobs.get(job.id)
        if state is not None:
            self._detach(state, "the export request failed")
        self._store.delete(job.id)

    def _adopt(self, state: JobState) -> ExportJob:
        job = ExportJob(state, self._cancel)
        self._jobs[state.job_id] = state
        self._handles[state.job_id] = job
        return job

    def _cancel(self, state: JobState) -> bool:
        if state.future.done():
            return False
        task = self._downloads.get(state.job_id)
        lifecycle = state.lifecycle.cancel(self.now())
        self._end(state, lifecycle, ExportCancelled("the export job was cancelled"))
        if task is not None:
            task.cancel()
        return True

    def _end(
        self, state: JobState, lifecycle: Lifecycle, outcome: ExportResult | ExportError
    ) -> None:
        """Store the job's final state and settle its future, once."""
        if state.future.done():
            return
        changes: dict[str, object]
        if isinstance(outcome, ExportError):
            changes = {"error": outcome.message}
        else:
            changes = {
                "path": str(outcome.path),
                "size": outcome.size,
                "sha256": outcome.sha256,
                "format": outcome.format.value,
            }
        self._store.put(state.apply(lifecycle, **changes))
        self._release(state)
        if isinstance(outcome, ExportError):
            state.future.set_exception(outcome)
        else:
            state.future.set_result(outcome)

    def _detach(self, state: JobState, why: str) -> None:
        """End the handle, not the job: the store keeps it as it is (for a
        restart to resume)."""
        if state.future.done():
            return
        state.detach()
        self._release(state)
        state.future.set_exception(ExportCancelled(why))

    def _release(self, state: JobState) -> None:
        self._stop_timer(state.job_id)
        self._jobs.pop(state.job_id, None)
        self._handles.pop(state.job_id, None)

    # -- timers and downloads --------------------------------------------------------------

    def _wait_for_callback(self, state: JobState) -> None:
        """Pending: time out at the deadline (at once if it has passed)."""
        lifecycle = state.lifecycle.expire(self.now())
        if lifecycle.status is ExportStatus.TIMED_OUT:
            self._end(state, lifecycle, _timeout(state))
            return
        remaining = state.lifecycle.deadline_at - self.now()
        task = asyncio.create_task(
            self._deadline(state, remaining), name=f"export-deadline-{state.job_id}"
        )
        self._timers[state.job_id] = task
        self._track(task)

    def _stop_timer(self, job_id: str) -> None:
        timer = self._timers.pop(job_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def _track(self, task: asyncio.Task[None]) -> None:
        # Every task is awaited by close(), cancelled ones included.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deadline(self, state: JobState, seconds: float) -> None:
        await self._clock.sleep(seconds)
        if self._timers.get(state.job_id) is asyncio.current_task():
            self._timers.pop(state.job_id)
        lifecycle = state.lifecycle.expire(self.now())
        if lifecycle.status is ExportStatus.TIMED_OUT and not state.future.done():
            log.info("export job %s: no callback before the deadline; token revoked", state.job_id)
            self._end(state, lifecycle, _timeout(state))

    def _start_download(self, state: JobState) -> None:
        self._stop_timer(state.job_id)
        state.received_at = self._clock.now()
        task = asyncio.create_task(self._download(state), name=f"export-download-{state.job_id}")
        job_id = state.job_id
        self._downloads[job_id] = task
        self._track(task)
        self.downloads_started += 1
        task.add_done_callback(
            lambda done: (
                self._downloads.pop(job_id) if self._downloads.get(job_id) is done else None
            )
        )

    async def _download(self, state: JobState) -> None:
        record = state.record
        transport = state.transport
        file_id = state.lifecycle.file_id
        assert transport is not None and file_id is not None  # live jobs downloading
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
                log.info("export job %s: downloading (try %d)", state.job_id, state.lifecycle.tries)
                done = await download_export(
                    transport,
                    origin_of(record.origin),
                    file_id,
                    part=part,
                    target=target,
                    max_bytes=self.max_bytes,
                    progress=state.report,
                    counters=state.counters,
                )
        except asyncio.CancelledError:
            # Cancelled by close() (the store keeps it for a restart) or by cancel().
            self._detach(state, "the export receiver closed")
            raise
        except DownloadError as exc:
            if exc.reason == "refused" and exc.status in REFUSALS:
                self._refused(state, exc)
            else:
                log.warning("export job %s: download failed: %s", state.job_id, exc.message)
                self._end(state, state.lifecycle.failed(self.now()), exc)
        except Exception as exc:  # a bug must still settle the job
            log.exception("export job %s: download failed", state.job_id)
            error = DownloadError(f"the download failed ({type(exc).__name__})")
            self._end(state, state.lifecycle.failed(self.now()), error)
        else:
            log.info("export job %s: %d bytes saved", state.job_id, done.size)
            result = ExportResult(
                job_id=record.job_id,
                kind=record.kind,
                path=done.path,
                size=done.size,
                sha256=done.sha256,
                format=done.format,
                columns=record.columns,
            )
            self._end(state, state.lifecycle.downloaded(self.now()), result)

    def _refused(self, state: JobState, error: DownloadError) -> None:
        """A download refused as a forged or stale callback would explain."""
        lifecycle = state.lifecycle.refused(self.now(), error.message)
        status = lifecycle.status
        log.warning(
            "export job %s: download refused (HTTP %s); %s",
            state.job_id,
            error.status,
            {
                ExportStatus.DOWNLOADING: "trying the next callback",
                ExportStatus.PENDING: "waiting for another callback",
                ExportStatus.TIMED_OUT: "the deadline has passed",
                ExportStatus.FAILED: f"no try left ({MAX_TRIES})",
            }[status],
        )
        if status is ExportStatus.FAILED:
            final = DownloadError(
                f"{error.message} (after {lifecycle.tries} tries, the most a job makes)",
                status=error.status,
                reason=error.reason,
            )
            self._end(state, lifecycle, final)
        elif status is ExportStatus.TIMED_OUT:
            self._end(state, lifecycle, _timeout(state, lifecycle.refusal))
        else:
            self._store.put(state.apply(lifecycle))
            if status is ExportStatus.DOWNLOADING:
                self._start_download(state)
            else:
                self._wait_for_callback(state)

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
        if not self._lifecycle(job_id).open(self.now(), replay_window=self.replay_window):
            raise web.HTTPNotFound()
        body = await _read_body(request)
        record = self._record(job_id)  # it may have changed while the body arrived
        if record is None:
            raise web.HTTPNotFound()
        lifecycle = self._lifecycle(job_id)
        now = self.now()
        if not lifecycle.open(now, replay_window=self.replay_window):
            raise web.HTTPNotFound()
        try:
            file_id = validate_download_url(parse_callback_body(body), origin_of(record.origin))
        except CallbackRejected as rejected:
            if lifecycle.status is ExportStatus.SUCCEEDED:
                raise web.HTTPNotFound() from None  # a used token
            log.info("export job %s: callback rejected: %s", job_id, rejected.reason)
            return _answer(rejected.status, rejected.reason)
        after, verdict = lifecycle.callback(file_id, now, replay_window=self.replay_window)
        if verdict is Verdict.GONE:
            raise web.HTTPNotFound()
        if verdict is Verdict.CONFLICT:
            log.info("export job %s: callback with another file id refused", job_id)
            return _answer(409, "this job has no download try left for another file")
        if verdict is Verdict.REPEAT:
            log.debug("export job %s: repeated callback ignored", job_id)
            return _answer(200, "OK")
        self._accept(job_id, record, after, verdict)
        return _answer(200, "OK")

    def _record(self, job_id: str) -> JobRecord | None:
        live = self._jobs.get(job_id)
        # A finished job is in the store only: its record answers replays.
        return live.record if live is not None else self._store.get(job_id)

    def _lifecycle(self, job_id: str) -> Lifecycle:
        live = self._jobs.get(job_id)
        if live is not None:
            return live.lifecycle
        record = self._store.get(job_id)
        assert record is not None  # the caller found it
        return lifecycle_of(record)

    def _accept(self, job_id: str, record: JobRecord, after: Lifecycle, verdict: Verdict) -> None:
        state = self._jobs.get(job_id)
        log.info("export job %s: callback accepted (%s)", job_id, verdict.value)
        if state is None or state.future.done():
            # Known only to the store (a restart, or the receiver closing):
            # remember the file (or the queue); the job downloads when resumed.
            self._store.put(stored(record, after))
            return
        self._store.put(state.apply(after))
        if verdict is Verdict.START:
            self._start_download(state)


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


def _timeout(state: JobState, refusal: str | None = None) -> ExportTimeout:
    message = f"no usable export callback for job {state.job_id} before its deadline"
    if refusal is None:
        refusal = state.lifecycle.refusal
    if refusal is not None:
        message += f" (the last download was refused: {refusal})"
    return ExportTimeout(message)


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
