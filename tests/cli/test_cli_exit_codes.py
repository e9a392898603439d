"""Every exit status the README promises, for ``calls`` and ``thulium`` alike.

Each case runs the real ``python -m ccrm_async`` through the same helper
(:func:`_cli_helpers.run_cli` / ``start_cli``): 2 for a usage error (one
``error:`` line), 1 for an API error, 130 after SIGINT and 143 after SIGTERM
(``error: interrupted`` / ``error: terminated``), never a traceback, never the key.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _cli_helpers import TOKEN, assert_clean, cli_env, finish, run_cli, start_cli, wait_for

from ccrm_async.testing import CCRMEmulator


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=200, days=4, seed=5) as emulator:
        yield emulator


def _calls(emu: CCRMEmulator, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "calls", "pull", "--base-url", emu.url, "--from", "2024-01-01", "--to", "2024-01-04",
        "--out", str(tmp_path / "calls.jsonl"), *extra,
    ]  # fmt: skip


def _thulium(emu: CCRMEmulator, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "thulium", "build", "--base-url", emu.url, "--listen", "127.0.0.1:0",
        "--out", str(tmp_path / "directory.sqlite"), *extra,
    ]  # fmt: skip


COMMANDS = {"calls": _calls, "thulium": _thulium}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("case", "extra", "env", "message"),
    [
        ("no key", [], {"CCRM_TOKEN": ""}, "no API key: set CCRM_TOKEN"),
        ("bad egress ip", ["--egress-ip", "banana"], {}, "not an IP address"),
        ("bad retries", ["--retries", "zero"], {}, "expected a whole number"),
        ("unknown option", ["--token", "x"], {}, "read from CCRM_TOKEN only"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
async def test_usage_errors_exit_2(
    emu: CCRMEmulator,
    tmp_path: Path,
    command: str,
    case: str,
    extra: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    result = await run_cli(*COMMANDS[command](emu, tmp_path, *extra), env=cli_env(**env))
    assert result.code == 2, result.stderr
    assert len(result.error_lines) == 1 and message in result.error_lines[0], result.stderr
    assert "unexpected" not in result.stderr
    assert_clean(result)
    assert emu.log == []  # refused before any request


@pytest.mark.parametrize("command", COMMANDS)
async def test_api_errors_exit_1(emu: CCRMEmulator, tmp_path: Path, command: str) -> None:
    env = cli_env(CCRM_TOKEN="ccrm_TESTKEY_wrong0000")
    result = await run_cli(*COMMANDS[command](emu, tmp_path, "--retries", "1"), env=env)
    assert result.code == 1, result.stderr
    assert len(result.error_lines) == 1 and "401" in result.error_lines[0], result.stderr
    assert "check CCRM_TOKEN" in result.error_lines[0]
    assert "ccrm_TESTKEY_wrong0000" not in result.stderr + result.stdout
    assert_clean(result)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
async def test_signals_exit_130_and_143(
    emu: CCRMEmulator,
    tmp_path: Path,
    command: str,
    sig: signal.Signals,
    code: int,
    word: str,
) -> None:
    emu.faults.latency = 0.5  # every answer waits: the signal lands mid-command
    proc = await start_cli(*COMMANDS[command](emu, tmp_path))
    await wait_for(lambda: len(emu.log) >= 1)  # the command is at work
    proc.send_signal(sig)
    result = await finish(proc)
    assert result.code == code, result.stderr
    assert result.error_lines == [f"error: {word}"], result.stderr
    assert_clean(result)
    emu.faults.latency = 0.0
