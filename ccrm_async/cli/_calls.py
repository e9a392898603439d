"""``ccrm-async calls pull`` and ``ccrm-async calls sync``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import orjson

from ..client import CCRMClient
from ..sinks import PullQuery, PullReport, Sink, SqliteSink, open_sink, pull_into
from ..sinks._files import CSV_DIALECTS
from ._common import (
    BarProgress,
    UsageError,
    account_now,
    add_connection_options,
    add_debug_option,
    duration,
    make_client,
    output_path,
    positive_int,
    sqlite_path,
    summary_line,
    when_end,
    when_start,
    window_size,
)
from ._progress import (
    CommandProgress,
    LogProgress,
    add_progress_options,
    make_progress,
    report_object,
    stop,
)

__all__ = ["EXIT_INCOMPLETE", "exit_status", "register", "run_pull_into"]

DEFAULT_WINDOW = timedelta(days=1)
DEFAULT_OVERLAP = timedelta(hours=1)
DEFAULT_CONCURRENCY = 8

#: Exit status of a pull that left windows with suspected misses unrepaired.
EXIT_INCOMPLETE = 3


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    calls = commands.add_parser(
        "calls",
        help="pull call history into JSONL, CSV or SQLite",
        description="Pull the call history (calls, SMS, faxes) of a date range into a file.",
    )
    add_debug_option(calls)
    sub = calls.add_subparsers(dest="calls_command", required=True, metavar="COMMAND")

    pull = sub.add_parser(
        "pull",
        help="pull a date range, resumably",
        description=(
            "Pull every call of a date range into --out, window by window (oldest "
            "first; pages inside a window concurrently). Each finished window is "
            "checkpointed: run the same command again after a crash or Ctrl-C and it "
            "continues where it stopped, each call written exactly once. The format "
            "follows the extension: .jsonl (one JSON object per call, the API's keys), "
            ".csv (one flat row per call, a header row, UTF-8) or .sqlite (tables "
            "calls and notes, upserted by uuid). Records that cannot be read go to "
            "PATH.rejects.jsonl (table rejects for .sqlite). Windows that ended less "
            "than an hour ago are written but fetched again by the next run. Exit "
            f"status {EXIT_INCOMPLETE}: misses the repair passes could not settle were "
            "left in unfinished windows; run the command again."
        ),
    )
    pull.add_argument(
        "--from",
        dest="date_from",
        required=True,
        type=when_start,
        metavar="WHEN",
        help="first moment, 'YYYY-MM-DD HH:MM:SS' or a whole day 'YYYY-MM-DD' (account time)",
    )
    pull.add_argument(
        "--to",
        dest="date_to",
        required=True,
        type=when_end,
        metavar="WHEN",
        help="last moment, inclusive; a day 'YYYY-MM-DD' means up to its 23:59:59",
    )
    pull.add_argument(
        "--out",
        required=True,
        type=output_path,
        metavar="PATH",
        help="the output: .jsonl, .csv or .sqlite",
    )
    pull.add_argument(
        "--csv-dialect",
        choices=CSV_DIALECTS,
        default="default",
        help="for .csv: default (comma-separated UTF-8) or excel (semicolons and a UTF-8 "
        "BOM, as Excel in a Polish locale and CCRM's own exports expect)",
    )
    _add_pull_options(pull)
    pull.set_defaults(run=_run_pull)

    sync = sub.add_parser(
        "sync",
        help="bring a SQLite file up to date (for cron)",
        description=(
            "Pull from the newest call date in FILE minus --overlap up to now into "
            "FILE (.sqlite). Calls already there are updated, not repeated."
        ),
    )
    sync.add_argument(
        "--out", required=True, type=sqlite_path, metavar="FILE", help="the .sqlite file"
    )
    sync.add_argument(
        "--overlap",
        type=duration,
        default=DEFAULT_OVERLAP,
        metavar="DURATION",
        help="how far before the newest stored call to start again (1h)",
    )
    sync.add_argument(
        "--from",
        dest="date_from",
        type=when_start,
        metavar="WHEN",
        help="where the first sync of an empty FILE starts; later syncs never go back before it",
    )
    sync.add_argument(
        "--to",
        dest="date_to",
        type=when_end,
        metavar="WHEN",
        help="last moment to sync (default: now, account time)",
    )
    _add_pull_options(sync)
    sync.set_defaults(run=_run_sync)


def _add_pull_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--notes", action="store_true", help="fetch each call's notes too (one request per call)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1) on the first record that cannot be read, instead of "
        "keeping it with the rejects",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight, pages and notes together ({DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--window",
        type=window_size,
        default=DEFAULT_WINDOW,
        metavar="DURATION",
        help="length of the date windows pulled one after another, e.g. 6h, 1d, 1w (1d)",
    )
    add_connection_options(parser)
    add_progress_options(parser)
    add_debug_option(parser)


async def _run_pull(args: argparse.Namespace) -> int:
    if args.date_from > args.date_to:
        raise UsageError(f"--from ({args.date_from}) is after --to ({args.date_to})")
    query = PullQuery(args.date_from, args.date_to, window=args.window, notes=args.notes)
    progress = make_progress(args, args.out)
    on_event = progress.on_event if isinstance(progress, LogProgress) else None
    async with make_client(
        args, concurrency=args.concurrency, strict=args.strict, on_event=on_event
    ) as crm:
        sink = open_sink(args.out, query, csv_dialect=args.csv_dialect)
        report = await run_pull_into(
            crm, sink, query, args.out, progress=progress, summary=args.summary
        )
    return exit_status(report)


def exit_status(report: PullReport) -> int:
    """0, or :data:`EXIT_INCOMPLETE` (3) when windows were left with misses."""
    return EXIT_INCOMPLETE if report.incomplete else 0


async def _run_sync(args: argparse.Namespace) -> int:
    path: Path = args.out
    if not path.exists() and args.date_from is None:  # noqa: ASYNC240 - before any I/O starts
        raise UsageError(f"{path} does not exist: pass --from to say where the first sync starts")
    progress = make_progress(args, path)
    on_event = progress.on_event if isinstance(progress, LogProgress) else None
    async with make_client(
        args, concurrency=args.concurrency, strict=args.strict, on_event=on_event
    ) as crm:
        sink = SqliteSink(path, notes=args.notes)
        try:
            query = _sync_query(args, sink.last_call_date(), now=account_now())
        except BaseException:
            sink.close()
            raise
        if query is None:
            sink.close()
            print(f"nothing to sync: {path} is up to date", file=sys.stderr)
            return 0
        print(f"syncing {query.date_from} .. {query.date_to} into {path}", file=sys.stderr)
        report = await run_pull_into(
            crm, sink, query, path, progress=progress, summary=args.summary
        )
    return exit_status(report)


def _sync_query(
    args: argparse.Namespace, last: datetime | None, *, now: datetime
) -> PullQuery | None:
    """The range of a sync: from the newest stored call less the overlap (never
    before ``--from``) to ``--to`` or now; None when that range is empty."""
    floor: datetime | None = args.date_from
    if last is None:
        if floor is None:
            raise UsageError(
                f"{args.out} has no calls yet: pass --from to say where the first sync starts"
            )
        start = floor
    else:
        start = last - args.overlap
        if floor is not None:
            start = max(start, floor)
    end = args.date_to or now
    if start > end:
        return None
    return PullQuery(start, end, window=args.window, notes=args.notes)


async def run_pull_into(
    crm: CCRMClient,
    sink: Sink,
    query: PullQuery,
    output: Path,
    *,
    summary_to: IO[str] | None = None,
    progress: CommandProgress | None = None,
    summary: str = "text",
) -> PullReport:
    """Run a pull with *progress* (the bar on a terminal by default) and print its
    summary: a line on *summary_to* (stderr), or with *summary* ``"json"`` one
    JSON object on stdout. After Ctrl-C, or an error once windows were kept,
    the summary says what was kept. Closes *sink*, not *crm*."""
    report = PullReport()
    progress = progress or BarProgress(output)
    state = "failed"
    ticker = asyncio.create_task(progress.run()) if isinstance(progress, LogProgress) else None
    try:
        try:
            await pull_into(crm, sink, query, report=report, progress=progress, now=account_now)
        finally:
            await stop(ticker)
            progress.close()
        state = "done"
    except (asyncio.CancelledError, KeyboardInterrupt):
        state = "interrupted"
        raise
    finally:
        sink.close()
        if state != "failed" or report.finished or report.skipped:
            if summary == "json":
                counts = report_object(report, state=state, output=str(output))
                print(orjson.dumps(counts).decode(), file=sys.stdout, flush=True)
            else:
                line = summary_line(report, output, state=state)
                print(line, file=summary_to or sys.stderr, flush=True)
    return report
