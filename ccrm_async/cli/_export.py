"""``ccrm-async export people|organisations``: one contact export to a file.

Serves a callback receiver on ``--listen`` (which CCRM must reach at
``--public-url``), asks for the export, waits for the callback and downloads
the file, byte for byte, to ``--out`` through the same connection pool (so from
the same egress IP) as the export request.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any

from .._core.export_columns import ORGANISATION_COLUMNS, PEOPLE_COLUMNS
from ..exports import DEFAULT_MAX_BYTES, ExportResult, run_export
from ._common import (
    add_connection_options,
    add_debug_option,
    listen_address,
    make_client,
    positive_int,
    positive_seconds,
)

__all__ = ["parse_columns", "register"]

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
            help="where the downloaded file goes, byte for byte (mode 0600)",
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
        add_debug_option(parser)
        parser.set_defaults(run=_run_export)


class _Progress:
    """Bytes received, on stderr, only when it is a terminal."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._bar: Any = None
        self._shown = 0

    def __call__(self, received: int, total: int | None) -> None:
        if not self._stream.isatty():
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


def summary(result: ExportResult, elapsed: float) -> str:
    return (
        f"done: {result.kind} export, {len(result.columns)} columns, {result.size} bytes "
        f"({result.format}), sha256 {result.sha256}, {elapsed:.1f}s -> {result.path}"
    )


async def _run_export(args: argparse.Namespace) -> int:
    started = time.monotonic()
    progress = _Progress(sys.stderr)
    try:
        async with make_client(args) as crm:
            result = await run_export(
                crm,
                args.kind,
                args.columns,
                listen=args.listen,
                public_url=args.public_url,
                path=args.out,
                timeout=args.timeout,
                max_bytes=args.max_mib * 2**20,
                progress=progress,
            )
    finally:
        progress.close()
    print(summary(result, time.monotonic() - started), file=sys.stderr)
    return 0
