"""The ``ccrm-async`` command line.

Exit status: 0 on success, 1 on an API or runtime error, 2 on a usage error.
Errors print one line starting with ``error:`` on stderr (a traceback only
with ``--debug``). The API key comes from the environment only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from . import __version__
from .client import CCRMClient
from .errors import CCRMError
from .testing import CCRMEmulator

__all__ = ["main"]


class UsageError(Exception):
    """A bad command line: exit status 2."""


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccrm-async", description="Bulk pulls and tools for the Telecube CRM (CCRM) API."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulator = sub.add_parser("emulator", help="serve the built-in fake CCRM")
    emulator.add_argument("--listen", type=_listen, default=("127.0.0.1", 8085))
    emulator.add_argument("--calls", type=int, default=5000, help="calls to generate (5000)")
    emulator.add_argument("--seed", type=int, default=0)
    emulator.add_argument("--token", default="emulator-token", help="the key clients must send")

    sub.add_parser("demo", help="pull a month of call history from the built-in emulator")
    return parser


async def _emulator(args: argparse.Namespace) -> int:
    host, port = args.listen
    emu = CCRMEmulator(calls=args.calls, seed=args.seed, token=args.token)
    url = await emu.start(host, port)
    print(f"CCRM emulator on {url} (key: set CCRM_TOKEN to the --token value)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.close()
    return 0


async def _demo(args: argparse.Namespace) -> int:
    async with CCRMEmulator(calls=20_000, days=31) as emu:
        async with CCRMClient(base_url=emu.url, token=emu.token) as crm:
            started = time.perf_counter()
            pull = crm.call_history_with_notes("2024-01-01", "2024-01-31")
            examples = []
            async for call, notes in pull:
                if notes and len(examples) < 3:
                    examples.append((call, notes))
            elapsed = time.perf_counter() - started
    s = pull.stats
    print(
        f"pulled {s.records} calls and {s.notes} notes in {s.pages} pages, "
        f"{s.requests} requests, {s.retries} retries, {s.rate_limit_pauses} rate-limit pauses, "
        f"{s.duplicates_dropped} duplicates dropped, {s.suspected_misses} suspected misses, "
        f"{elapsed:.1f}s"
    )
    for call, notes in examples:
        print(
            f"  {call.call_date:%Y-%m-%d %H:%M:%S} {call.direction} {call.service} "
            f"{call.status} {call.duration}s: {notes[0].plain_text!r}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    runners = {"emulator": _emulator, "demo": _demo}
    try:
        return asyncio.run(runners[args.command](args))
    except KeyboardInterrupt:
        return 130
    except (CCRMError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
