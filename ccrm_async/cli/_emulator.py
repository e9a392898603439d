"""``ccrm-async emulator``: the built-in fake CCRM, standalone."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime

from ..testing import CCRMEmulator
from ._common import TOKEN_ENV, add_debug_option, listen_address, positive_int, when_start

__all__ = ["DEFAULT_TOKEN", "register"]

#: The key the emulator expects when CCRM_TOKEN is not set.
DEFAULT_TOKEN = "emulator-token"  # noqa: S105 - a fake account's key


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="serve the built-in fake CCRM",
        description=(
            "Serve the built-in fake CCRM until stopped (Ctrl-C). The first line on "
            "stdout is its base URL. Clients must send the key in CCRM_TOKEN, or "
            f"{DEFAULT_TOKEN!r} when it is not set."
        ),
    )
    emulator.add_argument(
        "--listen",
        type=listen_address,
        default=("127.0.0.1", 8085),
        metavar="HOST:PORT",
        help="where to listen; port 0 picks a free one (127.0.0.1:8085)",
    )
    emulator.add_argument(
        "--calls", type=int, default=5000, metavar="N", help="calls to generate (5000)"
    )
    emulator.add_argument(
        "--days", type=positive_int, default=31, metavar="N", help="days they span (31)"
    )
    emulator.add_argument(
        "--start",
        type=when_start,
        default=datetime(2024, 1, 1),
        metavar="DAY",
        help="the first day of calls (2024-01-01)",
    )
    emulator.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the generated data (0)"
    )
    emulator.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds added to every answer (0)",
    )
    add_debug_option(emulator)
    emulator.set_defaults(run=_run_emulator)


async def _run_emulator(args: argparse.Namespace) -> int:
    host, port = args.listen
    token = os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN
    emu = CCRMEmulator(
        calls=args.calls, seed=args.seed, token=token, start=args.start, days=args.days
    )
    emu.faults.latency = args.latency
    url = await emu.start(host, port)
    try:
        print(url, flush=True)
        key = f"the key in {TOKEN_ENV}" if token != DEFAULT_TOKEN else f"key {DEFAULT_TOKEN!r}"
        print(
            f"CCRM emulator: {args.calls} calls from {args.start:%Y-%m-%d} over {args.days} "
            f"days, {key}; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        return 0  # Ctrl-C or SIGTERM is how a server is stopped: a clean exit
    finally:
        await emu.close()
    return 0
