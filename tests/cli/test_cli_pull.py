"""``calls pull``/``calls sync`` and ``emulator`` as a user runs them: errors, exit
statuses, incremental syncs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _cli_helpers import (
    CALLS,
    TOKEN,
    assert_clean,
    cli_env,
    expected_calls,
    finish,
    pull_args,
    run_cli,
    start_cli,
    wait_for,
    windows_requested,
)

from ccrm_async import CCRMClient
from ccrm_async.sinks import PullQuery, checkpoint_path
from ccrm_async.testing import CCRMEmulator

QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 8, 23, 59, 59))


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=1600, days=8, seed=11) as emu:
        yield emu


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_bad_token_exits_1_and_never_shows_it(emu: CCRMEmulator, tmp_path: Path) -> None:
    wrong = "ccrm_WRONGKEY_9d8e7f6a5b"
    result = await run_cli(
        *pull_args(emu, QUERY, tmp_path / "out.jsonl"), env=cli_env(CCRM_TOKEN=wrong)
    )
    assert result.code == 1
    assert result.stderr.splitlines() == result.error_lines  # one line, nothing else
    assert len(result.error_lines) == 1 and "401" in result.error_lines[0]
    assert wrong not in result.stderr + result.stdout
    assert len(emu.log) == 1  # a 401 is not retried
    assert os.listdir(tmp_path) == []  # a pull that kept nothing leaves no files


async def test_unreachable_server_exits_1(tmp_path: Path) -> None:
    port = _closed_port()
    args = ["calls", "pull", "--base-url", f"http://127.0.0.1:{port}", "--retries", "3"]
    args += ["--from", "2024-01-01", "--to", "2024-01-02", "--out", str(tmp_path / "x.csv")]
    result = await run_cli(*args)
    assert result.code == 1, result.stderr
    assert result.error_lines and "cannot connect" in result.error_lines[0]
    assert len(result.error_lines) == 1
    assert_clean(result)


async def test_usage_errors_exit_2_with_one_error_line(tmp_path: Path) -> None:
    # More cases run in-process in test_cli_units.py.
    out = tmp_path / "x.csv"
    pull = ["calls", "pull", "--from", "2024-01-01", "--to", "2024-01-02", "--out", str(out)]
    for args in ([], [*pull, "--base-url", "http://127.0.0.1:1", "--token", TOKEN]):
        result = await run_cli(*args)
        assert result.code == 2, (args, result.stderr)
        assert len(result.error_lines) == 1, result.stderr
        assert TOKEN not in result.stderr
    assert "--token (the API key is read from CCRM_TOKEN only)" in result.error_lines[0]
    assert not out.exists()


async def test_missing_key_is_a_usage_error(tmp_path: Path) -> None:
    env = cli_env()
    del env["CCRM_TOKEN"]
    out = tmp_path / "x.jsonl"
    result = await run_cli(
        "calls", "pull", "--account", "acme", "--from", "2024-01-01", "--to", "2024-01-01",
        "--out", str(out), env=env,
    )  # fmt: skip
    assert result.code == 2
    assert result.error_lines == [
        "error: no API key: set CCRM_TOKEN (it is never read from the command line)"
    ]
    assert not out.exists() and not checkpoint_path(out).exists()


async def test_an_api_error_mid_pull_keeps_finished_windows(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "calls.jsonl"
    args = pull_args(emu, QUERY, out)
    emu.faults.latency = 0.05
    proc = await start_cli(*args)
    # Once 3 answers came back, script a refusal: the emulator picks faults after its
    # latency, so a later window's request gets it. Windows are requested back to
    # back, so how many were committed by then varies; what was kept is exactly
    # what the checkpoint says.
    await wait_for(lambda: sum(r.status is not None for r in emu.requests(CALLS)) >= 3)
    emu.faults.script(CALLS, ["403"])  # not retried
    result = await finish(proc)
    assert result.code == 1
    assert len(result.error_lines) == 1 and "HTTP 403" in result.error_lines[0]
    kept = re.search(r"(\d+) of 8 windows kept", result.stderr)
    assert "failed: " in result.stderr and kept is not None
    saved = json.loads(checkpoint_path(out).read_bytes())
    assert 1 <= saved["windows"] == int(kept[1]) < 8
    assert out.stat().st_size == saved["offset"]

    emu.faults.latency = 0.0
    again = await run_cli(*args)
    assert again.code == 0, again.stderr
    lines = out.read_bytes().splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == [
        raw["uuid"] for raw in expected_calls(emu, QUERY)
    ]


async def test_another_pull_into_the_same_file_is_refused(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "calls.csv"
    small = PullQuery(QUERY.date_from, datetime(2024, 1, 1, 23, 59, 59))
    assert (await run_cli(*pull_args(emu, small, out))).code == 0
    before = out.read_bytes()
    other = await run_cli(*pull_args(emu, QUERY, out))
    assert other.code == 1
    assert len(other.error_lines) == 1 and "holds another pull" in other.error_lines[0]
    # A file that is not one of ours is never overwritten either.
    foreign = tmp_path / "mine.jsonl"
    foreign.write_text("precious\n")
    refused = await run_cli(*pull_args(emu, small, foreign))
    assert refused.code == 1 and "has no checkpoint" in refused.error_lines[0]
    assert out.read_bytes() == before and foreign.read_text() == "precious\n"


async def test_sync_continues_from_the_newest_call(emu: CCRMEmulator, tmp_path: Path) -> None:
    out = tmp_path / "sync.sqlite"
    base = ["calls", "sync", "--base-url", emu.url, "--out", str(out)]
    refused = await run_cli(*base)
    assert refused.code == 2 and "--from" in refused.error_lines[0]

    first = await run_cli(*base, "--from", "2024-01-01", "--to", "2024-01-04 12:00:00")
    assert first.code == 0, first.stderr
    db = sqlite3.connect(out)
    (newest,) = db.execute("SELECT MAX(call_date) FROM calls").fetchone()
    db.close()
    assert newest <= "2024-01-04 12:00:00"

    emu.log.clear()
    # Up to now (2024 is long past): 30-week windows keep the requests few.
    second = await run_cli(*base, "--overlap", "2h", "--window", "30w")
    assert second.code == 0, second.stderr
    assert_clean(second)
    start = datetime.fromisoformat(newest) - timedelta(hours=2)
    assert windows_requested(emu)[0][0] == f"{start:%Y-%m-%d %H:%M:%S}"
    db = sqlite3.connect(out)
    uuids = [row[0] for row in db.execute("SELECT uuid FROM calls")]
    db.close()
    assert sorted(uuids) == sorted(raw["uuid"] for raw in emu.dataset.calls)


async def test_emulator_subcommand_serves_until_stopped() -> None:
    proc = await start_cli("emulator", "--listen", "127.0.0.1:0", "--calls", "120", "--days", "2")
    assert proc.stdout is not None
    url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    assert url.startswith("http://127.0.0.1:")
    async with CCRMClient(base_url=url, token=TOKEN) as crm:
        calls = [call async for call in crm.call_history("2024-01-01", "2024-01-02")]
    assert len(calls) == 120
    proc.send_signal(2)  # Ctrl-C is how it is stopped: a clean exit
    result = await finish(proc)
    assert result.code == 0
    assert_clean(result)
    assert "key 'emulator-token'" not in result.stderr  # CCRM_TOKEN was set: its value is not shown
