"""Resuming a download where the ``.part`` file ends (RELIABILITY 24)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from _export_fixtures import crm, emu, export_dir, export_root, file_mode, files_in, rx

from ccrm_async import CCRMClient
from ccrm_async._core.ranges import ContentRange, parse_content_range, parse_range_request
from ccrm_async.exports import ExportReceiver
from ccrm_async.testing import CCRMEmulator

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "rx"]

SIZE = 600 * 1024  # large enough for several chunks


def _only_export(emu: CCRMEmulator) -> Any:
    (export,) = emu.exports.exports.values()
    return export


async def _download(emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver) -> Any:
    job = await crm.export_people(["firstName", "lastName"], receiver=rx)
    result = await job.wait(timeout=10)
    export = _only_export(emu)
    source = emu.exports.file(export.id)
    assert result.path.read_bytes() == source  # byte for byte, whatever happened
    assert result.sha256 == hashlib.sha256(source).hexdigest()
    assert result.size == len(source) and file_mode(result.path) == 0o600
    assert not [name for name in files_in(result.path.parent) if name.endswith(".part")]
    return export


async def test_a_206_from_the_offset_is_appended(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.size = SIZE
    emu.exports.faults.cut_first_after = SIZE // 2
    export = await _download(emu, crm, rx)
    assert [status for _, status in export.downloads] == [200, 206]


async def test_a_200_to_a_range_starts_over(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.size = SIZE
    emu.exports.faults.cut_first_after = SIZE // 2
    emu.exports.faults.ignore_range = True
    export = await _download(emu, crm, rx)
    assert [status for _, status in export.downloads] == [200, 200]


async def test_a_206_from_another_offset_starts_over(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.size = SIZE
    emu.exports.faults.cut_first_after = SIZE // 2
    emu.exports.faults.range_shift = 1
    export = await _download(emu, crm, rx)
    assert [status for _, status in export.downloads] == [200, 206, 200]


async def test_a_416_on_a_complete_file_completes_without_downloading_again(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    # Every byte arrives, then the connection drops before the chunked body's end.
    emu.exports.faults.size = SIZE
    emu.exports.faults.chunked = True
    emu.exports.faults.cut_first_after = 10**9
    export = await _download(emu, crm, rx)
    assert [status for _, status in export.downloads] == [200, 416]


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("bytes 100-199/1000", ContentRange(100, 199, 1000)),
        ("bytes */1000", ContentRange(None, None, 1000)),
        ("bytes 0-9/*", ContentRange(0, 9, None)),
        ("bytes 9-0/10", None),
        ("items 0-9/10", None),
        (None, None),
    ],
)
def test_content_range(header: str | None, parsed: ContentRange | None) -> None:
    assert parse_content_range(header) == parsed


def test_range_request() -> None:
    assert parse_range_request("bytes=1024-") == 1024
    assert parse_range_request("bytes=0-99") is None
    assert parse_range_request(None) is None


def test_fixture_dir_exists(export_dir: Path) -> None:
    assert export_dir.is_dir()
