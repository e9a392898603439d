"""Interrupted pulls resume exactly once (RELIABILITY items 9, 10 and 11).

A pull is stopped mid-way (Ctrl-C, SIGTERM, SIGKILL, or ``os._exit`` at each step
of a checkpoint write), then the same command runs again: the output ends with
every call exactly once, and the emulator's log shows that no finished window
was fetched again.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _cli_helpers import (
    TOKEN,
    assert_clean,
    expected_calls,
    finish,
    planned,
    pull_args,
    run_cli,
    run_python,
    start_cli,
    wait_for,
    windows_requested,
)

from ccrm_async.sinks import PullQuery, Window, checkpoint_path
from ccrm_async.testing import CCRMEmulator

QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 8, 23, 59, 59), timedelta(days=1))


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=1600, days=8, seed=5) as emu:
        yield emu


def _uuids_in(out: Path, limit: int | None = None) -> list[str]:
    """The call uuids in an output, in file order (JSONL/CSV up to byte *limit*)."""
    if out.suffix == ".sqlite":
        db = sqlite3.connect(out)
        try:
            return [row[0] for row in db.execute("SELECT uuid FROM calls ORDER BY rowid")]
        finally:
            db.close()
    data = out.read_bytes()[:limit]
    if out.suffix == ".jsonl":
        return [json.loads(line)["uuid"] for line in data.splitlines()]
    return [row["uuid"] for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]


def _finished(out: Path, query: PullQuery) -> list[Window]:
    """The windows the output's checkpoint records as finished."""
    if out.suffix == ".sqlite":
        db = sqlite3.connect(out)
        try:
            done = set(db.execute("SELECT date_from, date_to FROM pull_windows"))
        finally:
            db.close()
        return [w for w in planned(query) if w.wire in done]
    state = json.loads(checkpoint_path(out).read_bytes())
    return [w for w in planned(query) if state["done_until"] and w.wire[1] <= state["done_until"]]


def _committed_so_far(out: Path, query: PullQuery) -> int:
    """Windows committed while the pull runs (0 while nothing can be read yet;
    a file the pull has not created yet is never created here)."""
    if not out.exists():
        return 0
    try:
        return len(_finished(out, query))
    except (OSError, ValueError, KeyError, sqlite3.Error):
        return 0


def _uuids_of(emu: CCRMEmulator, windows: list[Window]) -> list[str]:
    return [raw["uuid"] for w in windows for raw in emu.dataset.select(*w.wire)]


@pytest.mark.parametrize(
    ("suffix", "sig"),
    [
        (".jsonl", signal.SIGINT),
        (".sqlite", signal.SIGINT),
        (".csv", signal.SIGTERM),
        (".jsonl", signal.SIGKILL),
        (".sqlite", signal.SIGKILL),
    ],
    ids=["jsonl-sigint", "sqlite-sigint", "csv-sigterm", "jsonl-sigkill", "sqlite-sigkill"],
)
async def test_killed_mid_pull_then_resumed(
    emu: CCRMEmulator, tmp_path: Path, suffix: str, sig: signal.Signals
) -> None:
    query = PullQuery(QUERY.date_from, QUERY.date_to, QUERY.window, notes=True)
    out = tmp_path / f"calls{suffix}"
    args = pull_args(emu, query, out, "--concurrency", "2")
    emu.faults.latency = 0.01  # about 0.3 s per window: the signal lands mid-pull
    proc = await start_cli(*args)
    await wait_for(lambda: _committed_so_far(out, query) >= 3)
    proc.send_signal(sig)
    first = await finish(proc)
    await wait_for(lambda: emu.open_connections == 0)  # nothing left in flight

    finished = _finished(out, query)
    assert len(finished) >= 3
    assert finished == planned(query)[: len(finished)]  # a prefix: windows go in order
    # The checkpoint is never ahead of the data: what it counts is all there.
    if suffix == ".sqlite":  # rows and checkpoint commit together: nothing else is visible
        assert sorted(_uuids_in(out)) == sorted(_uuids_of(emu, finished))
    else:
        offset = json.loads(checkpoint_path(out).read_bytes())["offset"]
        assert _uuids_in(out, offset) == _uuids_of(emu, finished)
    if sig == signal.SIGKILL:
        assert first.code == -signal.SIGKILL
    else:
        assert first.code == (130 if sig == signal.SIGINT else 143), first.stderr
        assert_clean(first)
        word = "interrupted" if sig == signal.SIGINT else "terminated"
        assert first.error_lines == [f"error: {word}"]
        assert "interrupted: " in first.stderr and "run the same command again" in first.stderr
        # Stopped cleanly, the sink holds the finished windows and nothing else.
        assert sorted(_uuids_in(out)) == sorted(_uuids_of(emu, finished))
        if suffix != ".sqlite":
            assert out.stat().st_size == json.loads(checkpoint_path(out).read_bytes())["offset"]

    emu.faults.latency = 0.0
    emu.log.clear()
    second = await run_cli(*args)
    assert second.code == 0, second.stderr
    assert_clean(second)
    assert f"resuming: {len(finished)} of 8 windows already in" in second.stderr
    # Finished windows were not fetched again; the rest were, once each.
    rest = [w.wire for w in planned(query)[len(finished) :]]
    assert sorted(windows_requested(emu)) == rest  # opened ahead together: any order
    everything = [raw["uuid"] for raw in expected_calls(emu, query)]
    uuids = _uuids_in(out)
    assert len(uuids) == len(set(uuids)) == 1600
    if suffix == ".sqlite":
        assert sorted(uuids) == sorted(everything)
    else:
        assert uuids == everything


# Runs the command in-process after wrapping one step of the checkpoint write:
# argv[1] is the step ("write", "fsync", "rename", "dir" or "record"), argv[2]
# which checkpoint write to stop (1 is the first), argv[3] a file to which
# every written checkpoint is appended (one JSON per line); the rest is the
# command line.
CRASH_SCRIPT = r"""
import json, os, sys
from ccrm_async.sinks import _checkpoint as ck
from ccrm_async.cli import main

step, nth, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = {}

def crash_here(name):
    seen[name] = seen.get(name, 0) + 1
    if name == step and seen[name] == nth:
        os._exit(1)

def wrap(name, real, before=False):
    def wrapper(*args):
        if before:
            crash_here(name)
        result = real(*args)
        if not before:
            crash_here(name)
        return result
    return wrapper

real_write = ck._write
def write(fd, data):
    with open(log, "a") as f:
        f.write(json.dumps(json.loads(data)) + "\n")
    real_write(fd, data)
    crash_here("write")

ck._write = write
ck._fsync = wrap("fsync", ck._fsync)
ck._rename = wrap("rename", ck._rename)
ck._fsync_dir = wrap("dir", ck._fsync_dir, before=True)
sys.exit(main(sys.argv[4:]))
"""


@pytest.fixture
async def small() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=400, days=4, seed=9) as emu:
        yield emu


async def test_checkpoint_survives_a_crash_at_every_step(
    small: CCRMEmulator, tmp_path: Path
) -> None:
    """RELIABILITY 10: after write, after fsync, after rename, before the dir fsync."""
    query = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 4, 23, 59, 59))
    everything = [raw["uuid"] for raw in expected_calls(small, query)]
    reference_log = tmp_path / "reference.log"
    reference = tmp_path / "reference.jsonl"
    result = await run_python(
        CRASH_SCRIPT, "record", "0", str(reference_log), *pull_args(small, query, reference)
    )
    assert result.code == 0, result.stderr
    states = [json.loads(line) for line in reference_log.read_text().splitlines()]
    assert len(states) == 5  # the fresh checkpoint, then one per window
    assert [s["windows"] for s in states] == [0, 1, 2, 3, 4]

    nth = 3  # the checkpoint after the second window: the old state has one window
    for step in ("write", "fsync", "rename", "dir"):
        out = tmp_path / f"{step}.jsonl"
        log = tmp_path / f"{step}.log"
        crashed = await run_python(
            CRASH_SCRIPT, step, str(nth), str(log), *pull_args(small, query, out)
        )
        assert crashed.code == 1, crashed.stderr
        saved = json.loads(checkpoint_path(out).read_bytes())  # valid JSON, never torn
        old, new = states[nth - 2], states[nth - 1]
        assert saved == (old if step in ("write", "fsync") else new), step
        # Never ahead of the sink: what the checkpoint counts is on disk.
        assert out.stat().st_size >= saved["offset"]
        windows = planned(query)[: saved["windows"]]
        assert _uuids_in(out, saved["offset"]) == _uuids_of(small, windows)

        resumed = await run_cli(*pull_args(small, query, out))
        assert resumed.code == 0, resumed.stderr
        assert _uuids_in(out) == everything, step
        assert out.read_bytes() == reference.read_bytes()
        assert json.loads(checkpoint_path(out).read_bytes()) == states[-1]
        assert not checkpoint_path(out).with_name(checkpoint_path(out).name + ".tmp").exists()
