"""``calls pull`` with bad data: rejects, --strict, open windows, repair passes
(RELIABILITY 37-40), through the real command line."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from _cli_helpers import TOKEN, assert_clean, pull_args, run_cli

from ccrm_async.cli._calls import EXIT_INCOMPLETE
from ccrm_async.cli._common import account_now
from ccrm_async.sinks import PullQuery, checkpoint_path, rejects_path
from ccrm_async.testing import CCRMEmulator, PhpHabits

QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 4, 23, 59, 59), timedelta(days=2))
# The same range in one window of two pages, for changes between pages.
ONE_WINDOW = PullQuery(QUERY.date_from, QUERY.date_to, timedelta(weeks=1))


def _emulator(**kw: object) -> CCRMEmulator:
    return CCRMEmulator(token=TOKEN, calls=2000, days=4, seed=5, notes_ratio=0.0, **kw)  # type: ignore[arg-type]


def _victims(emu: CCRMEmulator) -> frozenset[str]:
    return frozenset({emu.dataset.calls[10]["uuid"], emu.dataset.calls[1500]["uuid"]})


async def test_sqlite_keeps_rejects_beside_every_readable_call(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    async with _emulator() as emu:
        victims = _victims(emu)
        emu.php = PhpHabits(bom=True, record_rate=0.5, unreadable_uuids=victims)
        result = await run_cli(*pull_args(emu, QUERY, out))
        expected = {c["uuid"] for c in emu.dataset} - victims
    assert result.code == 0, result.stderr
    assert_clean(result)
    db = sqlite3.connect(out)
    try:
        calls = {row[0] for row in db.execute("SELECT uuid FROM calls")}
        rejects = db.execute("SELECT uuid, page, reason, raw FROM rejects").fetchall()
    finally:
        db.close()
    assert calls == expected
    assert {row[0] for row in rejects} == victims
    for uuid, page, reason, raw in rejects:
        assert page >= 1 and reason and json.loads(raw)["uuid"] == uuid
    assert "2 rejected (in table rejects)" in result.stderr
    assert "bent values" in result.stderr


async def test_jsonl_rejects_file_follows_the_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    async with _emulator() as emu:
        victims = _victims(emu)
        emu.php = PhpHabits(unreadable_uuids=victims)
        first = await run_cli(*pull_args(emu, QUERY, out))
        again = await run_cli(*pull_args(emu, QUERY, out))
    assert (first.code, again.code) == (0, 0), first.stderr + again.stderr
    lines = [json.loads(line) for line in rejects_path(out).read_text().splitlines()]
    assert {line["uuid"] for line in lines} == victims and len(lines) == 2
    assert all({"uuid", "page", "reason", "raw"} <= set(line) for line in lines)
    assert all(line["raw"]["uuid"] == line["uuid"] for line in lines)
    state = json.loads(checkpoint_path(out).read_text())
    assert state["rejects_offset"] == rejects_path(out).stat().st_size
    assert state["rejected"] == 2
    assert f"2 rejected (in {rejects_path(out)})" in first.stderr


async def test_strict_fails_with_one_error_line(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    async with _emulator() as emu:
        victim = emu.dataset.calls[1500]["uuid"]
        emu.php = PhpHabits(unreadable_uuids=frozenset({victim}))
        result = await run_cli(*pull_args(emu, QUERY, out, "--strict"))
    assert result.code == 1
    assert_clean(result)
    (line,) = result.error_lines
    assert victim in line and ("duration" in line or "callDate" in line or "to" in line)


async def test_deletions_mid_pull_end_complete(tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    async with _emulator() as emu:
        emu.faults.delete_after_page(1, 3)
        result = await run_cli(*pull_args(emu, ONE_WINDOW, out, "--concurrency", "4"))
        remaining = {c["uuid"] for c in emu.dataset}
    assert result.code == 0, result.stderr
    uuids = [json.loads(line)["uuid"] for line in out.read_text().splitlines()]
    assert len(uuids) == len(set(uuids)) and remaining <= set(uuids)
    assert "0 suspected misses" in result.stderr and "1 repair passes" in result.stderr


async def test_unrepaired_misses_leave_the_window_unfinished_and_exit_3(tmp_path: Path) -> None:
    out = tmp_path / "calls.sqlite"
    async with _emulator() as emu:
        emu.faults.churn = 1
        churned = await run_cli(*pull_args(emu, ONE_WINDOW, out))
        emu.faults.churn = 0
        settled = await run_cli(*pull_args(emu, ONE_WINDOW, out))
        remaining = {c["uuid"] for c in emu.dataset}
    assert churned.code == EXIT_INCOMPLETE, churned.stderr
    assert "left unfinished" in churned.stderr
    assert settled.code == 0, settled.stderr
    db = sqlite3.connect(out)
    try:
        calls = {row[0] for row in db.execute("SELECT uuid FROM calls")}
        (finished,) = db.execute("SELECT COUNT(*) FROM pull_windows").fetchone()
    finally:
        db.close()
    assert remaining <= calls and finished == 1


async def test_open_windows_in_jsonl_are_fetched_again_and_each_call_is_once(
    tmp_path: Path,
) -> None:
    """RELIABILITY 39: windows reaching now are written but not finished; new
    calls arrive; the re-run cuts the file back and holds each call once."""
    now = account_now()
    start = now - timedelta(hours=2)
    query = PullQuery(start, now + timedelta(days=1), timedelta(days=1))
    out = tmp_path / "calls.jsonl"
    async with CCRMEmulator(token=TOKEN, calls=300, start=start, days=1, seed=9) as emu:
        first = await run_cli(*pull_args(emu, query, out))
        emu.dataset.insert_head(5)
        second = await run_cli(*pull_args(emu, query, out))
        expected = {c["uuid"] for c in emu.dataset}
    assert (first.code, second.code) == (0, 0), first.stderr + second.stderr
    assert "still open" in first.stderr and "still open" in second.stderr
    uuids = [json.loads(line)["uuid"] for line in out.read_text().splitlines()]
    assert len(uuids) == len(set(uuids)) and set(uuids) == expected
