"""``export people|organisations`` end to end: the emulator's callback reaches the
command's receiver, and the file lands byte for byte."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import TOKEN, assert_clean, run_cli

from ccrm_async.cli._export import WaitReport
from ccrm_async.exports import ExportStatus, read_organisations, read_people
from ccrm_async.exports._output import SIDECAR_SUFFIX
from ccrm_async.testing import CCRMEmulator

from clocks import ManualClock


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=10, days=1) as emu:
        yield emu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def export_args(emu: CCRMEmulator, kind: str, columns: str, out: Path, *extra: str) -> list[str]:
    port = free_port()
    return [
        "export",
        kind,
        "--base-url",
        emu.url,
        "--columns",
        columns,
        "--listen",
        f"127.0.0.1:{port}",
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    ("kind", "columns", "reader"),
    [
        ("people", "firstName,lastName,phone1,email1", read_people),
        ("organisations", "name,nip,phone1", read_organisations),
    ],
)
async def test_export_lands_byte_for_byte(
    emu: CCRMEmulator, tmp_path: Path, kind: str, columns: str, reader: object
) -> None:
    out = tmp_path / f"{kind}.csv"
    result = await run_cli(*export_args(emu, kind, columns, out, "--egress-ip", "127.0.0.2"))
    assert result.code == 0, result.stderr
    assert_clean(result)
    (export,) = emu.exports.exports.values()
    assert out.read_bytes() == emu.exports.file(export.id)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    # No .part left; the sidecar records what was written.
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name, out.name + SIDECAR_SUFFIX]
    # The export request and the download both left from the --egress-ip address.
    assert {
        (r.path.split("/")[-1] if "download" in r.path else r.path, r.remote) for r in emu.log
    } == {
        (f"/publicApi/{kind}/export", "127.0.0.2"),
        (export.id, "127.0.0.2"),
    }
    assert "done:" in result.stderr and str(out) in result.stderr
    # While it waited it said where CCRM must call: the origin, never the token.
    assert result.stderr.count("waiting for CCRM's export callback at http://127.0.0.1:") == 1
    (push,) = [e.push_url for e in emu.exports.exports.values()]
    assert push.rsplit("/", 1)[1] not in result.stderr
    records = list(reader(out))  # type: ignore[operator]
    assert len(records) == len(emu.exports.records(kind))


async def test_unknown_column_is_a_usage_error_before_any_request(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "people.csv"
    result = await run_cli(*export_args(emu, "people", "firstName,nip", out))
    assert result.code == 1  # ValidationError, raised before anything is sent
    assert result.stderr.count("error:") == 1 and "nip" in result.stderr
    assert emu.log == [] and not out.exists()


async def test_missing_callback_times_out(emu: CCRMEmulator, tmp_path: Path) -> None:
    emu.exports.faults.missing = True
    out = tmp_path / "people.csv"
    result = await run_cli(*export_args(emu, "people", "firstName", out, "--timeout", "0.5"))
    assert result.code == 1
    (error,) = result.error_lines
    assert TOKEN not in result.stderr
    assert "--public-url" in error and "must be able to reach it" in error
    assert not out.exists()


async def test_empty_columns_are_refused(emu: CCRMEmulator, tmp_path: Path) -> None:
    result = await run_cli(*export_args(emu, "people", "firstName,,", tmp_path / "p.csv"))
    assert result.code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: argument --columns")


# -- --out is checked before the API is asked for anything ----------------------


async def test_an_unrelated_file_is_refused_untouched_even_with_overwrite(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "budget.csv"
    out.write_bytes(b"mine;not yours\r\n")
    for extra in ((), ("--overwrite",)):
        result = await run_cli(*export_args(emu, "people", "firstName", out, *extra))
        assert result.code == 2, result.stderr
        (error,) = result.error_lines
        assert str(out) in error and "not the output of an earlier export" in error
    assert out.read_bytes() == b"mine;not yours\r\n"
    assert emu.log == []  # refused before any request
    assert os.listdir(tmp_path) == ["budget.csv"]


async def test_an_earlier_export_is_replaced_only_with_overwrite(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "people.csv"
    first = await run_cli(*export_args(emu, "people", "firstName", out))
    assert first.code == 0, first.stderr
    before = out.read_bytes()
    again = await run_cli(*export_args(emu, "people", "firstName,lastName", out))
    assert again.code == 2 and "--overwrite" in again.error_lines[0]
    assert str(out) in again.error_lines[0]
    assert out.read_bytes() == before and len(emu.log) == 2  # request + download
    replaced = await run_cli(*export_args(emu, "people", "firstName,lastName", out, "--overwrite"))
    assert replaced.code == 0, replaced.stderr
    latest = list(emu.exports.exports.values())[-1]
    assert out.read_bytes() == emu.exports.file(latest.id) != before
    # An earlier export edited since is no longer its output: refused.
    out.write_bytes(out.read_bytes() + b"edited\r\n")
    edited = await run_cli(*export_args(emu, "people", "firstName", out, "--overwrite"))
    assert edited.code == 2 and "not the output of an earlier export" in edited.error_lines[0]


@pytest.mark.parametrize("case", ["missing directory", "unwritable", "a directory"])
async def test_a_bad_out_is_a_usage_error_before_any_request(
    emu: CCRMEmulator, tmp_path: Path, case: str
) -> None:
    out = {
        "missing directory": tmp_path / "nowhere" / "people.csv",
        "unwritable": Path("/proc/people.csv"),  # not writable even for root
        "a directory": tmp_path,
    }[case]
    result = await run_cli(*export_args(emu, "people", "firstName", out))
    assert result.code == 2, result.stderr
    (error,) = result.error_lines
    assert str(out.parent if case != "a directory" else out) in error
    assert emu.log == [] and emu.exports.exports == {}


class _Pending:
    status = ExportStatus.PENDING


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [False, True])
async def test_the_wait_is_reported_every_30_seconds_when_stderr_is_not_a_terminal(
    tty: bool,
) -> None:
    clock = ManualClock()
    stream = _Stream(tty)
    job: Any = _Pending()
    report = WaitReport(stream, "https://hooks.example.com:8443/base?x=1", 1800, clock=clock)
    report.start(job)
    await asyncio.sleep(0)  # the reporting task is asleep on the clock
    for _ in range(3):
        await clock.advance(30)
    job.status = ExportStatus.DOWNLOADING
    await clock.advance(30)
    await clock.advance(30)
    await report.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith(
        "waiting for CCRM's export callback at https://hooks.example.com:8443 "
    )
    still = [line for line in lines if line.startswith("still waiting")]
    if tty:
        assert lines == lines[:1]
    else:
        assert [line.split("(")[1] for line in still] == [
            "30s of 1800s)",
            "60s of 1800s)",
            "90s of 1800s)",
        ]
    assert all("/base" not in line for line in lines)
