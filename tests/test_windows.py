"""Windows pulled back to back (``pull_into``): written and committed in order,
each record once, under faults and drift; windows opened ahead share the gate."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from ccrm_async.sinks import JsonlSink, PullQuery, PullReport, pull_into
from ccrm_async.testing import CCRMEmulator

from conftest import emulator_client as client

CALLS = "/publicApi/callHistory"
QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 5, 23, 59, 59), timedelta(days=1))


async def _pull(emu: CCRMEmulator, out: Path) -> PullReport:
    sink = JsonlSink(out, QUERY)
    try:
        async with client(emu, concurrency=4) as crm:
            return await pull_into(crm, sink, QUERY)
    finally:
        sink.close()


def _written(out: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.read_bytes().splitlines()]


async def test_windows_back_to_back_in_order_once_under_faults(tmp_path: Path) -> None:
    async with CCRMEmulator(calls=7500, days=5, notes_ratio=0.0) as emu:
        emu.faults.error_rate = 0.15
        emu.faults.reset_rate = 0.1
        emu.faults.latency = 0.005
        expected = [c["uuid"] for w in QUERY.windows() for c in emu.dataset.select(*w.wire)]
        out = tmp_path / "calls.jsonl"
        report = await _pull(emu, out)
        peak = max(r.in_flight for r in emu.requests(CALLS))
    assert report.finished == 5 and report.retries > 0
    assert [c["uuid"] for c in _written(out)] == expected  # windows in order, API order inside
    assert peak <= 4  # the windows opened ahead share the client's gate


async def test_windows_back_to_back_under_drift(tmp_path: Path) -> None:
    """Calls inserted at the head (the last window) while windows are opened
    ahead: every call once, each in its window, windows in order."""
    async with CCRMEmulator(calls=7500, days=5, notes_ratio=0.0) as emu:
        original = {c["uuid"] for c in emu.dataset}
        emu.faults.insert_after_page(1, 7)
        emu.faults.serve_after(2, 1)
        out = tmp_path / "calls.jsonl"
        report = await _pull(emu, out)
        final = {c["uuid"]: c["callDate"] for c in emu.dataset}
    written = _written(out)
    uuids = [c["uuid"] for c in written]
    assert len(uuids) == len(set(uuids)) and original <= set(uuids) <= set(final)
    assert len(set(final) - original) == 7
    days = [final[u][:10] for u in uuids]
    assert days == sorted(days)  # grouped by window, oldest first
    assert report.finished == 5 and report.windows == 5
