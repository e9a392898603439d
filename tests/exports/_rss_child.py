"""Run by test_export_download: one large export in a fresh process, reporting
the growth of peak RSS during the download (RELIABILITY 23).

Usage: python _rss_child.py DIRECTORY SIZE_BYTES. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from pathlib import Path

from ccrm_async import CCRMClient
from ccrm_async.exports import ExportReceiver
from ccrm_async.testing import CCRMEmulator


def _status(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def main(directory: Path, size: int) -> dict[str, object]:
    async with (
        CCRMEmulator(calls=1) as emu,
        CCRMClient(base_url=emu.url, token=emu.token) as crm,
        ExportReceiver(directory=directory) as rx,
    ):
        # Warm up every code path with a small file first.
        warm = await (await crm.export_people(["firstName", "lastName"], receiver=rx))
        warm.path.unlink()
        emu.exports.faults.size = size
        _reset_peak()
        base = _status("VmRSS")
        result = await (await crm.export_people(["firstName", "lastName"], receiver=rx))
        peak = _status("VmHWM")
    sha256 = _sha256(result.path)
    result.path.unlink()
    return {
        "size": result.size,
        "sha256_ok": sha256 == result.sha256,
        "base_mib": round(base / (1 << 20), 1),
        "growth_mib": round((peak - base) / (1 << 20), 1),
    }


if __name__ == "__main__":
    report = asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
    print(json.dumps(report))
