"""``export people|organisations`` end to end: the emulator's callback reaches the
command's receiver, and the file lands byte for byte."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _cli_helpers import TOKEN, assert_clean, run_cli

from ccrm_async.exports import read_organisations, read_people
from ccrm_async.testing import CCRMEmulator


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
    out = tmp_path / "exports" / f"{kind}.csv"
    result = await run_cli(*export_args(emu, kind, columns, out, "--egress-ip", "127.0.0.2"))
    assert result.code == 0, result.stderr
    assert_clean(result)
    (export,) = emu.exports.exports.values()
    assert out.read_bytes() == emu.exports.file(export.id)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no .part left
    # The export request and the download both left from the --egress-ip address.
    assert {
        (r.path.split("/")[-1] if "download" in r.path else r.path, r.remote) for r in emu.log
    } == {
        (f"/publicApi/{kind}/export", "127.0.0.2"),
        (export.id, "127.0.0.2"),
    }
    assert "done:" in result.stderr and str(out) in result.stderr
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
    assert result.stderr.startswith("error:") and TOKEN not in result.stderr
    assert "ExportTimeout" in result.stderr or "callback" in result.stderr
    assert not out.exists()


async def test_empty_columns_are_refused(emu: CCRMEmulator, tmp_path: Path) -> None:
    result = await run_cli(*export_args(emu, "people", "firstName,,", tmp_path / "p.csv"))
    assert result.code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: argument --columns")
