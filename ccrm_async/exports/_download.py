"""Fetching an export file: same session, same egress IP, streamed to disk.

The file is fetched through the client's own :class:`~ccrm_async.transport.Transport`
session, hence its connector, ``local_addr`` and ``proxy``: CCRM serves the file
only to the IP that asked for the export. The URL is rebuilt from the trusted
API origin and the file id, so the ``Authorization`` header only ever goes
there; a redirect is followed only to the same origin (re-checked by
:func:`~ccrm_async._core.callback.redirect_target`), never elsewhere.

The body is streamed to ``<name>.part`` (mode 0600) while its SHA-256 is
computed; it is aborted past ``max_bytes``, checked against
``Content-Length``, fsynced and renamed into place, and the directory fsynced.
Connection errors, timeouts, 5xx, a rate-limit 403 and a cut-off body are
retried with the client's backoff; anything else fails at once. A retry
resumes where the ``.part`` file ends (``Range: bytes=N-``): a 206 starting at
N is appended (the SHA-256 goes on over the same bytes), a 200 starts the file
over, a 206 starting elsewhere starts over with the next attempt, and a 416
whose ``Content-Range`` total equals what is on disk means the file was
complete. On any failure or cancellation the ``.part`` file is removed.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import attrs

from .._core import responses
from .._core.callback import Origin, download_url, redirect_target
from .._core.export_files import ExportFormat, detect_format
from .._core.ranges import parse_content_range
from .._core.retry import backoff
from ..errors import DownloadError, RateLimitError, ServerError
from ..transport import Transport

__all__ = ["DEFAULT_MAX_BYTES", "Downloaded", "download_export"]

log = logging.getLogger("ccrm_async.exports")

#: The default size cap of one export file, in bytes (1 GiB).
DEFAULT_MAX_BYTES = 1 << 30
CHUNK_SIZE = 1 << 18  # 256 KiB per read and write
MAX_REDIRECTS = 3
_SNIFF = 4096
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Progress = Callable[[int, int | None], None]


@attrs.frozen
class Downloaded:
    """A file fetched and in place: ``size`` in bytes, ``sha256`` in hex."""

    path: Path
    size: int
    sha256: str
    format: ExportFormat


@attrs.define
class _Partial:
    """What earlier attempts left in the ``.part`` file, for resuming."""

    size: int = 0
    digest: Any = attrs.field(factory=hashlib.sha256)
    head: bytes = b""
    total: int | None = None  # the file's whole size, once an answer said it

    def reset(self) -> None:
        self.size, self.digest, self.head, self.total = 0, hashlib.sha256(), b"", None


class _Failure(Exception):
    def __init__(self, error: DownloadError, *, retryable: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retryable = retryable


async def download_export(
    transport: Transport,
    origin: Origin,
    file_id: str,
    *,
    part: Path,
    target: Callable[[ExportFormat], Path],
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
    rng: random.Random | None = None,
) -> Downloaded:
    """Fetch file *file_id* from *origin* into ``target(format)``, via *part*.

    Raises :class:`~ccrm_async.DownloadError` when the file cannot be had
    (after retries for transient failures); *part* never outlives the call.
    """
    policy = transport.retry_policy
    rng = rng or random.Random()
    attempt = 0
    final: Path | None = None
    partial = _Partial()
    try:
        while True:
            attempt += 1
            try:
                size, digest, head = await _fetch(
                    transport, origin, file_id, part, max_bytes, progress, partial
                )
                break
            except _Failure as failure:
                if not partial.size:
                    _unlink(part)  # nothing worth resuming from
                if not failure.retryable or attempt >= policy.max_attempts:
                    raise failure.error from None
                delay = backoff(policy, attempt, rng)
                log.debug(
                    "export download: attempt %d failed (%s), retry in %.2fs",
                    attempt,
                    failure.error.message,
                    delay,
                )
                await transport.clock.sleep(delay)
        fmt = detect_format(head)
        destination = target(fmt)
        try:
            os.replace(part, destination)
            final = destination
            await asyncio.to_thread(_fsync_dir, destination.parent)
        except OSError as exc:
            raise DownloadError(
                f"cannot move the export file into place ({exc.strerror})", reason="disk"
            ) from None
    except BaseException:
        _unlink(part)
        if final is not None:  # a failed job leaves no file behind
            _unlink(final)
        raise
    return Downloaded(path=destination, size=size, sha256=digest, format=fmt)


async def _fetch(
    transport: Transport,
    origin: Origin,
    file_id: str,
    part: Path,
    max_bytes: int,
    progress: Progress | None,
    partial: _Partial,
) -> tuple[int, str, bytes]:
    url = download_url(origin, file_id)
    t = transport.timeouts
    # No total: a large file may take long; a stalled one hits sock_read.
    timeout = aiohttp.ClientTimeout(total=None, connect=t.connect, sock_read=t.sock_read)
    try:
        session = transport.session
    except RuntimeError:
        raise _Failure(
            DownloadError("the client is closed", reason="network"), retryable=False
        ) from None
    for _ in range(MAX_REDIRECTS + 1):
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        headers.update(transport.auth_headers())  # *url* is on the API origin, always
        if partial.size:
            headers["Range"] = f"bytes={partial.size}-"
        try:
            async with session.get(
                url,
                headers=headers,
                proxy=transport.proxy,
                allow_redirects=False,
                timeout=timeout,
            ) as resp:
                if resp.status in _REDIRECTS:
                    target = redirect_target(url, resp.headers.get("Location"), origin)
                    if target is None:
                        raise _Failure(
                            DownloadError(
                                "the download was redirected away from the API origin; "
                                "not followed",
                                status=resp.status,
                                reason="redirect",
                            ),
                            retryable=False,
                        )
                    url = target
                    continue
                if resp.status == 416 and partial.size:
                    answered = parse_content_range(resp.headers.get("Content-Range"))
                    if answered is not None and answered.total == partial.size:
                        return await _finish(part, partial)  # it was all there
                    partial.reset()
                    raise _Failure(_restart("the resumed range was refused"), retryable=True)
                if resp.status == 206 and partial.size:
                    answered = parse_content_range(resp.headers.get("Content-Range"))
                    if answered is None or answered.start != partial.size:
                        partial.reset()
                        raise _Failure(_restart("resumed at another offset"), retryable=True)
                    partial.total = answered.total
                    return await _stream(resp, part, max_bytes, progress, partial)
                if resp.status != 200:
                    body = await resp.content.read(4096)
                    raise _status_failure(resp.status, body)
                partial.reset()  # a whole file: (re)start from its first byte
                return await _stream(resp, part, max_bytes, progress, partial)
        except _Failure:
            raise
        except aiohttp.ClientPayloadError:
            raise _Failure(
                DownloadError("export file incomplete: the body was cut off", reason="incomplete"),
                retryable=True,
            ) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _Failure(DownloadError(_reason(exc), reason="network"), retryable=True) from None
    raise _Failure(DownloadError("too many redirects", reason="redirect"), retryable=False)


def _status_failure(status: int, body: bytes) -> _Failure:
    error = responses.error_for_status(status, body)
    if isinstance(error, RateLimitError | ServerError) or status == 429:
        return _Failure(
            DownloadError(f"the server answered {status}", status=status, reason="refused"),
            retryable=True,
        )
    if status == 401:
        reason = "unauthorized (wrong key, IP not allowed, or API disabled)"
    elif status == 403:
        reason = "refused (the file is served only to the IP that requested the export)"
    elif status in (404, 410):
        reason = "not found (the link is wrong or has expired)"
    else:
        reason = f"unexpected status {status}"
    return _Failure(
        DownloadError(f"export download {reason}", status=status, reason="refused"), retryable=False
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect to the API for the download"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "the download timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server disconnected during the download"
    return f"the download failed ({type(exc).__name__})"


async def _stream(
    resp: aiohttp.ClientResponse,
    part: Path,
    max_bytes: int,
    progress: Progress | None,
    partial: _Partial,
) -> tuple[int, str, bytes]:
    """Write the body after what *partial* holds (from byte 0 when it is empty)."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if partial.total is None and encoding in ("", "identity") and resp.content_length is not None:
        # With a content coding, Content-Length counts the coded bytes, not ours.
        partial.total = partial.size + resp.content_length
    expected = partial.total
    if expected is not None and expected > max_bytes:
        raise _Failure(
            DownloadError(
                f"export file too large: {expected} bytes, the limit is {max_bytes}",
                reason="too_large",
            ),
            retryable=False,
        )
    with _open_part(part, append=partial.size > 0) as f:
        async for chunk in resp.content.iter_chunked(CHUNK_SIZE):
            if partial.size + len(chunk) > max_bytes:
                raise _Failure(
                    DownloadError(
                        f"export file too large: more than {max_bytes} bytes, aborted",
                        reason="too_large",
                    ),
                    retryable=False,
                )
            _disk(_write_all, f, chunk)
            # Counted once written: what `partial` says is what the file holds.
            partial.digest.update(chunk)
            partial.size += len(chunk)
            if len(partial.head) < _SNIFF:
                partial.head += chunk[: _SNIFF - len(partial.head)]
            if progress is not None:
                _report(progress, partial.size, expected)
        if expected is not None and partial.size != expected:
            raise _Failure(
                DownloadError(
                    f"export file incomplete: {partial.size} of {expected} bytes",
                    reason="incomplete",
                ),
                retryable=True,
            )
    return await _finish(part, partial)


async def _finish(part: Path, partial: _Partial) -> tuple[int, str, bytes]:
    """fsync the complete ``.part`` file; its size, SHA-256 and first bytes."""
    try:
        fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _disk_failure(exc) from None
    return partial.size, partial.digest.hexdigest(), partial.head


def _restart(why: str) -> DownloadError:
    return DownloadError(f"export download {why}; starting over", reason="incomplete")


def _open_part(part: Path, *, append: bool) -> BinaryIO:
    """*part* opened for writing (emptied, or *append* to it), mode 0600 whatever
    the umask; not through a symlink. Writes are unbuffered: what returned from
    ``write`` is in the file, so a resume starts exactly where it ended."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(part, flags, 0o600)
    except OSError as exc:
        error = DownloadError(f"cannot create the export file ({exc.strerror})", reason="disk")
        raise _Failure(error, retryable=False) from None
    try:
        os.fchmod(fd, 0o600)
        return open(fd, "ab" if append else "wb", buffering=0)
    except OSError as exc:
        os.close(fd)
        raise _disk_failure(exc) from None


def _write_all(f: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = f.write(view)
        if not written:
            raise OSError(errno.EIO, "the file took no bytes")
        view = view[written:]


def _disk(operation: Callable[..., object], *args: object) -> None:
    try:
        operation(*args)
    except OSError as exc:
        raise _disk_failure(exc) from None


def _disk_failure(exc: OSError) -> _Failure:
    return _Failure(
        DownloadError(f"cannot write the export file ({exc.strerror})", reason="disk"),
        retryable=False,
    )


def _report(progress: Progress, size: int, expected: int | None) -> None:
    try:
        progress(size, expected)
    except Exception:  # a progress display must not break the download
        log.debug("export download: the progress callback failed", exc_info=True)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        log.warning("could not remove a partial export file")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
