"""Starting an export (what the client's methods call) and running one end to end."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .._core.export_columns import ExportKind, validate_columns
from .._core.responses import parse_envelope
from ..transport import Clock, Transport
from ._download import DEFAULT_MAX_BYTES
from ._job import ExportJob, ExportResult
from ._receiver import ExportReceiver, HasTransport

__all__ = ["EXPORT_PATHS", "run_export", "start_export"]

#: The API path of each kind of export.
EXPORT_PATHS: dict[str, str] = {
    "people": "/publicApi/people/export",
    "organisations": "/publicApi/organisations/export",
}


def _acknowledged(body: bytes) -> None:
    parse_envelope(body, data_type=None)  # {"success": true, "data": "OK"}


async def start_export(
    transport: Transport,
    kind: ExportKind,
    columns: Iterable[str],
    *,
    receiver: ExportReceiver,
    timeout: float = 1800.0,  # noqa: ASYNC109 - the job's deadline, not this call's
    path: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> ExportJob:
    """Check *columns*, register a job with *receiver* and ask CCRM for the
    file through *transport* (a client's ``transport``: the file is later
    downloaded through it too, from the same egress IP).

    Returns once CCRM has accepted the request; the job completes when its
    callback arrives and the file is downloaded. If the request fails, the job
    is forgotten (its token is dead) and the error is raised.
    """
    checked = validate_columns(kind, columns)
    job, push = receiver.register(
        kind, checked, transport, timeout=timeout, path=path, progress=progress
    )
    try:
        await transport.request(
            "POST",
            EXPORT_PATHS[kind],
            _acknowledged,
            json={"columns": list(checked), "pushUrl": push},
            idempotent=False,  # each request makes the server build a file
        )
    except BaseException:
        receiver.forget(job)
        raise
    return job


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().absolute()


async def run_export(
    client: HasTransport,
    kind: ExportKind,
    columns: Iterable[str],
    *,
    listen: tuple[str, int],
    public_url: str,
    path: str | os.PathLike[str],
    timeout: float = 1800.0,  # noqa: ASYNC109 - the job's deadline, as for start_export
    max_bytes: int = DEFAULT_MAX_BYTES,
    shutdown_timeout: float = 10.0,
    progress: Callable[[int, int | None], None] | None = None,
    on_job: Callable[[ExportJob], object] | None = None,
    clock: Clock | None = None,
) -> ExportResult:
    """One export end to end, as ``ccrm-async export`` runs it.

    Serves a receiver on *listen* (reachable by CCRM at *public_url*), asks
    for the *kind* export of *columns*, waits at most *timeout* seconds
    (1800) for the callback, then downloads the file byte for byte to *path*
    (at most *max_bytes*, 1 GiB). *progress* is called with
    ``(bytes_received, bytes_total)`` as the file arrives. Cancelling the
    calling task (on SIGTERM, say) closes the receiver gracefully: a running
    download gets *shutdown_timeout* seconds (10) before it is cancelled and
    its ``.part`` file removed. *on_job* is called with the job once CCRM
    has accepted the request (the command line reports its waiting from
    there); *clock* is the receiver's (tests pass a fake one).
    """
    destination = _absolute(path)
    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    async with ExportReceiver(
        listen=listen,
        public_url=public_url,
        directory=destination.parent,
        max_bytes=max_bytes,
        shutdown_timeout=shutdown_timeout,
        clock=clock,
    ) as receiver:
        job = await start_export(
            client.transport,
            kind,
            columns,
            receiver=receiver,
            timeout=timeout,
            path=destination,
            progress=progress,
        )
        if on_job is not None:
            on_job(job)
        return await job
