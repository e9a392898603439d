"""Fetching an export file: same session, same egress IP, streamed to disk.

Every request goes through :meth:`Transport.stream
<ccrm_async.transport.Transport.stream>`, the client's one HTTP path: its
connection pool (so its ``local_addr`` and ``proxy``: CCRM serves the file
only to the IP that asked for the export), its request gate, retry policy,
retry quota, counters and error translation. What stays here is the file's
own logic. The URL is rebuilt from the trusted API origin and the file id, so
the ``Authorization`` header only ever goes there; a redirect is followed
only to the same origin (re-checked by
:func:`~ccrm_async._core.callback.redirect_target`), never elsewhere.

The body is streamed to ``<name>.part`` (mode 0600) while its SHA-256 is
computed; it is aborted past ``max_bytes``, checked against
``Content-Length``, fsynced and renamed into place, and the directory fsynced.
Connection errors, timeouts, 5xx, a rate-limit 403 and a cut-off body are
retried by the transport; anything else fails at once. A retry resumes where
the ``.part`` file ends (``Range: bytes=N-``): a 206 starting at N is
appended (the SHA-256 goes on over the same bytes), a 200 starts the file
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from .._core.callback import Origin, download_url, redirect_target
from .._core.export_files import ExportFormat, detect_format
from .._core.ranges import parse_content_range
from ..errors import (
    AuthenticationError,
    CCRMError,
    DownloadError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from ..transport import RequestCounters, StreamedResponse, Transport

__all__ = ["DEFAULT_MAX_BYTES", "REFUSALS", "Downloaded", "download_export"]

log = logging.getLogger("ccrm_async.exports")

#: The default size cap of one export file, in bytes (1 GiB).
DEFAULT_MAX_BYTES = 1 << 30
CHUNK_SIZE = 1 << 18  # 256 KiB per read and write
MAX_REDIRECTS = 3
_SNIFF = 4096
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ACCEPT = frozenset({200, 206, 416}) | _REDIRECTS
_ROUTE = "/api/storage/download/{file id}"  # the real path names the file: not logged

#: Statuses of a refused download that a forged or stale callback explains.
REFUSALS = frozenset({403, 404, 410})

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


@attrs.frozen
class _Redirect:
    url: str


async def download_export(
    transport: Transport,
    origin: Origin,
    file_id: str,
    *,
    part: Path,
    target: Callable[[ExportFormat], Path],
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
    counters: RequestCounters | None = None,
) -> Downloaded:
    """Fetch file *file_id* from *origin* into ``target(format)``, via *part*.

    Raises :class:`~ccrm_async.DownloadError` when the file cannot be had
    (after the transport's retries for transient failures); *part* never
    outlives the call. *counters* counts the requests and retries.
    """
    partial = _Partial()
    final: Path | None = None
    url = download_url(origin, file_id)

    def headers() -> dict[str, str]:
        return {"Range": f"bytes={partial.size}-"} if partial.size else {}

    async def receive(resp: StreamedResponse) -> tuple[int, str, bytes] | _Redirect:
        return await _receive(resp, url, origin, part, max_bytes, progress, partial)

    try:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                got = await transport.stream(
                    url, receive, route=_ROUTE, accept=_ACCEPT, headers=headers, counters=counters
                )
            except CCRMError as exc:
                raise _download_error(exc) from None
            if isinstance(got, _Redirect):
                url = got.url
                continue
            size, digest, head = got
            break
        else:
            raise DownloadError("too many redirects", reason="redirect")
        fmt = detect_format(head)
        destination = target(fmt)
        try:
            os.replace(part, destination)
            final = destination
            await asyncio.to_thread(_fsync_dir, destination.parent)
        except OSError as exc:
            raise DownloadError(
                f"cannot move the export file into place ({exc.strerror}): {destination}",
                reason="disk",
            ) from None
    except BaseException:
        _unlink(part)
        if final is not None:  # a failed job leaves no file behind
            _unlink(final)
        raise
    return Downloaded(path=destination, size=size, sha256=digest, format=fmt)


async def _receive(
    resp: StreamedResponse,
    url: str,
    origin: Origin,
    part: Path,
    max_bytes: int,
    progress: Progress | None,
    partial: _Partial,
) -> tuple[int, str, bytes] | _Redirect:
    """One answer the transport handed over (200, 206, 416 or a redirect)."""
    if resp.status in _REDIRECTS:
        target = redirect_target(url, resp.headers.get("Location"), origin)
        if target is None:
            raise DownloadError(
                "the download was redirected away from the API origin; not followed",
                status=resp.status,
                reason="redirect",
            )
        return _Redirect(target)
    if resp.status == 416 and partial.size:
        answered = parse_content_range(resp.headers.get("Content-Range"))
        if answered is not None and answered.total == partial.size:
            return await _finish(part, partial)  # it was all there
        partial.reset()
        raise _restart("the resumed range was refused")
    if resp.status == 206 and partial.size:
        answered = parse_content_range(resp.headers.get("Content-Range"))
        if answered is None or answered.start != partial.size:
            partial.reset()
            raise _restart("resumed at another offset")
        partial.total = answered.total
        return await _stream(resp, part, max_bytes, progress, partial)
    if resp.status != 200:
        raise DownloadError(
            f"export download: unexpected status {resp.status}",
            status=resp.status,
            reason="refused",
        )
    partial.reset()  # a whole file: (re)start from its first byte
    return await _stream(resp, part, max_bytes, progress, partial)


def _download_error(error: CCRMError) -> DownloadError:
    """The transport's final error as the :class:`DownloadError` it means."""
    if isinstance(error, DownloadError):
        return error
    status = error.status
    if isinstance(error, RateLimitError | ServerError) or status == 429:
        return DownloadError(f"the server answered {status}", status=status, reason="refused")
    if isinstance(error, AuthenticationError):
        reason = "unauthorized (wrong key, IP not allowed, or API disabled)"
    elif isinstance(error, PermissionDeniedError):
        reason = "refused (the file is served only to the IP that requested the export)"
    elif isinstance(error, NotFoundError) or status == 410:
        reason = "not found (the link is wrong or has expired)"
    elif isinstance(error, ResponseError) and error.transient:
        return DownloadError(f"export file incomplete: {error.message}", reason="incomplete")
    elif status is not None:
        reason = f"unexpected status {status}"
    else:
        return DownloadError(f"the download failed: {error.message}", reason="network")
    return DownloadError(f"export download {reason}", status=status, reason="refused")


async def _stream(
    resp: StreamedResponse,
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
        raise DownloadError(
            f"export file too large: {expected} bytes, the limit is {max_bytes}",
            reason="too_large",
        )
    with _open_part(part, append=partial.size > 0) as f:
        async for chunk in resp.chunks(CHUNK_SIZE):
            if partial.size + len(chunk) > max_bytes:
                raise DownloadError(
                    f"export file too large: more than {max_bytes} bytes, aborted",
                    reason="too_large",
                )
            _disk(part, _write_all, f, chunk)
            # Counted once written: what `partial` says is what the file holds.
            partial.digest.update(chunk)
            partial.size += len(chunk)
            if len(partial.head) < _SNIFF:
                partial.head += chunk[: _SNIFF - len(partial.head)]
            if progress is not None:
                _report(progress, partial.size, expected)
        if expected is not None and partial.size != expected:
            raise _incomplete(f"{partial.size} of {expected} bytes")
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
        raise _disk_failure(part, exc) from None
    return partial.size, partial.digest.hexdigest(), partial.head


def _incomplete(what: str) -> ResponseError:
    """A transient failure: the transport retries it (the next attempt resumes)."""
    error = ResponseError(what)
    error.transient = True
    return error


def _restart(why: str) -> ResponseError:
    return _incomplete(f"export download {why}; starting over")


def _open_part(part: Path, *, append: bool) -> BinaryIO:
    """*part* opened for writing (emptied, or *append* to it), mode 0600 whatever
    the umask; not through a symlink. Writes are unbuffered: what returned from
    ``write`` is in the file, so a resume starts exactly where it ended."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(part, flags, 0o600)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the export file ({exc.strerror}): {part}", reason="disk"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        return open(fd, "ab" if append else "wb", buffering=0)
    except OSError as exc:
        os.close(fd)
        raise _disk_failure(part, exc) from None


def _write_all(f: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = f.write(view)
        if not written:
            raise OSError(errno.EIO, "the file took no bytes")
        view = view[written:]


def _disk(part: Path, operation: Callable[..., object], *args: object) -> None:
    try:
        operation(*args)
    except OSError as exc:
        raise _disk_failure(part, exc) from None


def _disk_failure(part: Path, exc: OSError) -> DownloadError:
    return DownloadError(f"cannot write the export file ({exc.strerror}): {part}", reason="disk")


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
        log.warning("could not remove a partial export file: %s", path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
