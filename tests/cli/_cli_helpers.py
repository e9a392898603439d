"""Running the real ``ccrm-async`` in a subprocess against an in-process emulator.

The emulator serves on 127.0.0.1 with a free port from the test's event loop,
which keeps serving while the test awaits the child process.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ccrm_async.converter import LENIENT
from ccrm_async.models import CallRecord, Note
from ccrm_async.sinks import PullQuery, Window
from ccrm_async.sinks._plan import plan_windows
from ccrm_async.testing import CCRMEmulator

# A canary key: no output of the command may ever contain it.
TOKEN = "ccrm_TESTKEY_5f2a9c0d7e"
CALLS = "/publicApi/callHistory"
NOTES = "/publicApi/notes"


@attrs.frozen
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of the child: no CCRM_* and no *_PROXY of the developer's,
    the canary key, and ResourceWarnings (unclosed sockets, files) shown."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CCRM_", "PYTHONWARN")) and not k.lower().endswith("_proxy")
    }
    env["CCRM_TOKEN"] = TOKEN
    env["PYTHONWARNINGS"] = "default::ResourceWarning"
    env.update(extra)
    return env


async def start_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccrm_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else cli_env(),
        cwd=cwd,
    )


async def finish(proc: asyncio.subprocess.Process, within: float = 60.0) -> Result:
    """Wait for *proc* (at most *within* seconds) and collect its output."""
    stdout, stderr = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return Result(proc.returncode, stdout.decode(), stderr.decode())


async def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run ``python -m ccrm_async *args`` to the end (60 s at most)."""
    return await finish(await start_cli(*args, env=env, cwd=cwd))


async def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run a small ``python -c`` script (for crash injection) to the end."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else cli_env(),
    )
    return await finish(proc)


def assert_clean(result: Result) -> None:
    """No leaked session, task, socket or file, no traceback, never the key."""
    for bad in ("Unclosed", "Task was destroyed", "ResourceWarning", "Traceback", TOKEN):
        assert bad not in result.stderr, result.stderr
        assert bad not in result.stdout


async def wait_for(condition: Any, within: float = 20.0) -> None:
    """Poll *condition()* every 10 ms until it is true (*within* seconds at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def windows_requested(emu: CCRMEmulator) -> list[tuple[str, str]]:
    """The call-history windows the emulator was asked for, in order of first request."""
    seen: dict[tuple[str, str], None] = {}
    for entry in emu.requests(CALLS):
        seen.setdefault((entry.query["dateFrom"], entry.query["dateTo"]), None)
    return list(seen)


def planned(query: PullQuery) -> list[Window]:
    return plan_windows(query.date_from, query.date_to, query.window)


def expected_calls(emu: CCRMEmulator, query: PullQuery) -> Iterator[dict[str, Any]]:
    """The emulator's calls of *query*, in the order a pull writes them (windows
    oldest first, the API's order inside each), as the wire dicts."""
    for window in planned(query):
        yield from emu.dataset.select(*window.wire)


def call_object(raw: dict[str, Any]) -> dict[str, Any]:
    """What a sink should hold for a wire call: the API's keys, normalised values."""
    body: dict[str, Any] = LENIENT.unstructure(LENIENT.structure(raw, CallRecord))
    return body


def note_objects(emu: CCRMEmulator, raw: dict[str, Any]) -> list[dict[str, Any]]:
    notes = []
    for wire in emu.dataset.notes_for(raw):
        note = LENIENT.structure(wire, Note)
        body = LENIENT.unstructure(note)
        body["plainText"] = note.plain_text
        notes.append(body)
    return notes


def pull_args(emu: CCRMEmulator, query: PullQuery, out: Path, *extra: str) -> list[str]:
    """The ``calls pull`` command line of *query* into *out*."""
    start, end = (f"{d:%Y-%m-%d %H:%M:%S}" for d in (query.date_from, query.date_to))
    days = int(query.window.total_seconds() // 86400)
    window = f"{days}d" if days else f"{int(query.window.total_seconds() // 3600)}h"
    args = ["calls", "pull", "--base-url", emu.url, "--from", start, "--to", end]
    args += ["--window", window, "--out", str(out), *extra]
    if query.notes:
        args.append("--notes")
    return args
