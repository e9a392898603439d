"""``ccrm-async export people|organisations``: one contact export to a file.

Serves a callback receiver on ``--listen`` (which CCRM must reach at
``--public-url``), asks for the export, waits for the callback and downloads
the file, byte for byte, to ``--out`` through the same connection pool (so from
the same egress IP) as the export request.

``--out`` is checked before the API is asked for anything (see
:mod:`ccrm_async.exports._output`); while it waits for the callback, the
command says so on stderr, with the public URL's origin (never the token).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson
from yarl import URL

from .._core.export_columns import ORGANISATION_COLUMNS, PEOPLE_COLUMNS
from ..errors import ExportTimeout
from ..exports import DEFAULT_MAX_BYTES, ExportJob, ExportResult, ExportStatus, run_export
from ..exports._output import OutputRefused, check_output, record_output
from ..transport import Clock
from ._common import (
    CommandError,
    UsageError,
    add_connection_options,
    add_debug_option,
    listen_address,
    make_client,
    positive_int,
    positive_seconds,
)
from ._progress import add_progress_options

__all__ = ["WAIT_REPORT_INTERVAL", "WaitReport", "parse_columns", "register"]

#: Seconds between two "still waiting" lines when stderr is not a terminal.
WAIT_REPORT_INTERVAL = 30.0

_KINDS = {"people": PEOPLE_COLUMNS, "organisations": ORGANISATION_COLUMNS}


def parse_columns(text: str) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]``; at least one column, none empty."""
    columns = [c.strip() for c in text.split(",")]
    if not columns or any(not c for c in columns):
        raise argparse.ArgumentTypeError(
            "expected comma-separated column names, e.g. firstName,phone1"
        )
    return columns


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="export people or organisations to a file (through the pushUrl callback)",
        description="Ask CCRM for a contact export, receive its callback and download the file.",
    )
    add_debug_option(export)
    kinds = export.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, columns in _KINDS.items():
        parser = kinds.add_parser(
            kind,
            help=f"export {kind}",
            description=f"Export {kind}. Columns: {', '.join(columns)}, customFields.<uuid>.",
        )
        parser.add_argument(
            "--columns",
            type=parse_columns,
            required=True,
            metavar="A,B,C",
            help="the columns to export, comma-separated (checked before anything is sent)",
        )
        parser.add_argument(
            "--listen",
            type=listen_address,
            required=True,
            metavar="HOST:PORT",
            help="where the callback receiver listens",
        )
        parser.add_argument(
            "--public-url",
            required=True,
            metavar="URL",
            help="the address CCRM reaches the receiver at (the pushUrl's base)",
        )
        parser.add_argument(
            "--out",
            type=Path,
            required=True,
            metavar="PATH",
            help="where the downloaded file goes, byte for byte (mode 0600); its directory "
            "must exist. An existing file is never replaced, except an earlier export's "
            "with --overwrite",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="replace --out if it is the output of an earlier export "
            "(recorded in PATH.ccrm-export.json)",
        )
        parser.add_argument(
            "--timeout",
            type=positive_seconds,
            default=1800.0,
            metavar="SECONDS",
            help="how long to wait for the callback (1800)",
        )
        parser.add_argument(
            "--max-mib",
            type=positive_int,
            default=DEFAULT_MAX_BYTES // 2**20,
            metavar="MIB",
            help=f"the largest file accepted, in MiB ({DEFAULT_MAX_BYTES // 2**20})",
        )
        add_connection_options(parser)
        add_progress_options(parser)
        add_debug_option(parser)
        parser.set_defaults(run=_run_export)


class _Progress:
    """Bytes received on stderr: a bar (*mode* ``"bar"``), a line every *every*
    seconds (``"log"``), or nothing (``"none"``)."""

    def __init__(self, stream: IO[str], mode: str = "bar", every: float = 10.0) -> None:
        self._stream = stream
        self._mode = mode
        self._every = every
        self._logged = time.monotonic()
        self._bar: Any = None
        self._shown = 0

    def __call__(self, received: int, total: int | None) -> None:
        if self._mode == "log":
            now = time.monotonic()
            if now - self._logged >= self._every:
                self._logged = now
                of = f" of {total}" if total is not None else ""
                print(f"progress: {received}{of} bytes downloaded", file=self._stream, flush=True)
            return
        if self._mode != "bar":
            return
        if self._bar is None:
            from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no types

            self._bar = tqdm(
                total=total, unit="B", unit_scale=True, file=self._stream, desc="download"
            )
        self._bar.update(received - self._shown)
        self._shown = received

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def summary_object(result: ExportResult, elapsed: float) -> dict[str, object]:
    """The ``--summary json`` object: what the text line says, under plain keys."""
    return {
        "state": "done",
        "kind": result.kind,
        "columns": len(result.columns),
        "size": result.size,
        "format": str(result.format),
        "sha256": result.sha256,
        "elapsed": round(elapsed, 3),
        "output": str(result.path),
    }


def summary(result: ExportResult, elapsed: float) -> str:
    return (
        f"done: {result.kind} export, {len(result.columns)} columns, {result.size} bytes "
        f"({result.format}), sha256 {result.sha256}, {elapsed:.1f}s -> {result.path}"
    )


class WaitReport:
    """Says on *stream* that the command waits for CCRM's callback: once at
    the start, then, when *stream* is not a terminal (a log file, cron),
    every *interval* seconds (30) while the job is still pending. Names the
    public URL's origin only: the ``pushUrl``'s path holds the token."""

    def __init__(
        self,
        stream: IO[str],
        public_url: str,
        timeout: float,
        *,
        clock: Clock | None = None,
        interval: float = WAIT_REPORT_INTERVAL,
    ) -> None:
        self._stream = stream
        self.origin = str(URL(public_url).origin())
        self._timeout = timeout
        self._clock = clock or Clock()
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self, job: ExportJob) -> None:
        self._say(
            f"waiting for CCRM's export callback at {self.origin} "
            f"(up to {self._timeout:g}s; CCRM must be able to reach --public-url)"
        )
        if not self._stream.isatty():
            self._task = asyncio.create_task(self._repeat(job))

    async def _repeat(self, job: ExportJob) -> None:
        started = self._clock.now()
        while True:
            await self._clock.sleep(self._interval)
            if job.status is not ExportStatus.PENDING:
                return
            waited = self._clock.now() - started
            self._say(
                f"still waiting for the export callback at {self.origin} "
                f"({waited:.0f}s of {self._timeout:g}s)"
            )

    def _say(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def _run_export(args: argparse.Namespace) -> int:
    try:
        out = check_output(args.out, overwrite=args.overwrite)
    except OutputRefused as exc:
        raise UsageError(str(exc)) from None
    started = time.monotonic()
    mode = args.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    progress = _Progress(sys.stderr, mode, args.progress_every)
    waiting = WaitReport(sys.stderr, args.public_url, args.timeout)
    try:
        async with make_client(args) as crm:
            result = await run_export(
                crm,
                args.kind,
                args.columns,
                listen=args.listen,
                public_url=args.public_url,
                path=out,
                timeout=args.timeout,
                max_bytes=args.max_mib * 2**20,
                progress=progress,
                on_job=waiting.start,
            )
    except ExportTimeout:
        host, port = args.listen
        raise CommandError(
            f"no export callback within {args.timeout:g}s: CCRM calls --public-url "
            f"({waiting.origin}) and the API must be able to reach it; check that it is "
            f"reachable from the internet and forwards to --listen {host}:{port}"
        ) from None
    finally:
        await waiting.close()
        progress.close()
    try:
        record_output(result)
    except OSError as exc:
        raise CommandError(
            f"the export is saved, but its record could not be written next to it: "
            f"{exc.filename or result.path} ({exc.strerror})"
        ) from None
    elapsed = time.monotonic() - started
    if args.summary == "json":
        print(orjson.dumps(summary_object(result, elapsed)).decode(), flush=True)
    else:
        print(summary(result, elapsed), file=sys.stderr)
    return 0
