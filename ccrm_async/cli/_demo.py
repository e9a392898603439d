"""``ccrm-async demo`` (what ``make demo`` runs): the main job, no account needed.

The demo starts the built-in emulator in this process and runs its steps in
order against it, each a coroutine taking the :class:`DemoContext`: the pull
of a month of call history into SQLite, a look at the result, a contact
export through the ``pushUrl`` callback, and a Thulium lookup built from CCRM
contact exports. To show more, append a step to
:data:`STEPS`.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

import attrs
import orjson

from ..client import CCRMClient
from ..exports import ExportReceiver, read_people
from ..sinks import PullQuery, SqliteSink, checkpoint_path
from ..testing import CCRMEmulator
from ._calls import run_pull_into
from ._common import add_debug_option
from ._thulium import demo_lookup

__all__ = ["DEMO_OUTPUT", "STEPS", "DemoContext", "DemoStep", "register"]

#: The demo's database, in the current directory; replaced on every run.
DEMO_OUTPUT = Path("demo.sqlite")
DEMO_CALLS = 20_000
DEMO_START = datetime(2024, 1, 1)
DEMO_DAYS = 31
DEMO_EXAMPLES = 3


@attrs.frozen
class DemoContext:
    """What the steps share: the emulator, a client on it, the output database."""

    emulator: CCRMEmulator
    crm: CCRMClient
    output: Path


DemoStep = Callable[[DemoContext], Awaitable[None]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job against the built-in emulator (no account needed)",
        description=(
            f"Start the built-in emulator, pull a month of call history with notes into "
            f"{DEMO_OUTPUT} (replaced if it exists), show a few of the calls, and answer "
            "Thulium lookups from CCRM contact exports."
        ),
    )
    add_debug_option(demo)
    demo.set_defaults(run=_run_demo)


async def _pull_step(ctx: DemoContext) -> None:
    end = DEMO_START + timedelta(days=DEMO_DAYS) - timedelta(seconds=1)
    print(
        f"pulling {DEMO_START:%Y-%m-%d} .. {end:%Y-%m-%d} with notes into {ctx.output}, "
        "one day at a time",
        flush=True,
    )
    query = PullQuery(DEMO_START, end, notes=True)
    sink = SqliteSink(ctx.output, notes=True)
    await run_pull_into(ctx.crm, sink, query, ctx.output, summary_to=sys.stdout)


async def _examples_step(ctx: DemoContext) -> None:
    db = sqlite3.connect(ctx.output)
    try:
        (calls,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
        (notes,) = db.execute("SELECT COUNT(*) FROM notes").fetchone()
        rows = db.execute(
            "SELECT c.call_date, c.direction, c.service, c.status, c.duration, n.plain_text "
            "FROM calls c JOIN notes n ON n.call_uuid = c.uuid "
            "GROUP BY c.uuid ORDER BY c.call_date DESC LIMIT ?",
            (DEMO_EXAMPLES,),
        ).fetchall()
    finally:
        db.close()
    print(f"{ctx.output} holds {calls} calls and {notes} notes; the latest calls with notes:")
    for call_date, direction, service, status, duration, text in rows:
        print(f"  {call_date}  {direction:<8} {service:<4} {status:<9} {duration:>5}s  ", end="")
        print(orjson.dumps(text or "").decode())


async def _export_step(ctx: DemoContext) -> None:
    # The export round trip: request, the emulator's POST to our pushUrl, the
    # download through the same client session, typed records read back.
    columns = ["firstName", "lastName", "phone1", "email1", "addresses"]
    with tempfile.TemporaryDirectory(prefix="ccrm-demo-") as directory:
        async with ExportReceiver(listen=("127.0.0.1", 0), directory=directory) as receiver:
            started = time.monotonic()
            job = await ctx.crm.export_people(columns, receiver=receiver, timeout=60)
            print(f"export job {job.id} sent; waiting for the pushUrl callback", flush=True)
            result = await job
            elapsed = time.monotonic() - started
        people = list(read_people(result.path))
    print(
        f"callback received and {result.size} bytes downloaded ({result.format}, "
        f"sha256 {result.sha256[:16]}...) in {elapsed:.2f}s: {len(people)} people, e.g. "
        + ", ".join(p.display_name for p in people[:3])
    )


async def _thulium_step(ctx: DemoContext) -> None:
    # Exports both contact types through a callback receiver on 127.0.0.1, builds
    # the lookup directory and asks the Thulium endpoint for two numbers.
    await demo_lookup(ctx.crm)


#: The demo, step by step: (title, step).
STEPS: list[tuple[str, DemoStep]] = [
    ("call history into SQLite", _pull_step),
    ("a look at the result", _examples_step),
    ("a contact export through the pushUrl callback", _export_step),
    ("a Thulium lookup from CCRM contact exports", _thulium_step),
]


def _remove_previous(output: Path) -> None:
    for path in (
        output,
        output.with_name(output.name + "-wal"),
        output.with_name(output.name + "-shm"),
        output.with_name(output.name + "-journal"),
        checkpoint_path(output),
    ):
        path.unlink(missing_ok=True)


async def _run_demo(args: argparse.Namespace) -> int:
    _remove_previous(DEMO_OUTPUT)
    print(
        f"starting the built-in CCRM emulator: {DEMO_CALLS} calls over {DEMO_DAYS} days "
        "(no account needed)",
        flush=True,
    )
    async with (
        CCRMEmulator(calls=DEMO_CALLS, start=DEMO_START, days=DEMO_DAYS) as emulator,
        CCRMClient(base_url=emulator.url, token=emulator.token) as crm,
    ):
        ctx = DemoContext(emulator=emulator, crm=crm, output=DEMO_OUTPUT)
        for number, (title, step) in enumerate(STEPS, 1):
            print(f"\n[{number}/{len(STEPS)}] {title}", flush=True)
            await step(ctx)
    return 0
