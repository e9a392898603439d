"""The benchmarks' bare references do the library's work, no more and no less.

No timings here (``make bench`` measures them): only that the bare loop parses
the very records the library parses, and that the bare fan-out sends the very
requests a windowed pull with notes sends, so the ratios compare like with like.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import orjson

from ccrm_async import CallRecord, CCRMClient
from ccrm_async.parsing import parse_page
from ccrm_async.sinks import PullQuery, SqliteSink, plan_windows, pull_into
from ccrm_async.testing import CallDataset, CCRMEmulator

from conftest import FAST_RETRY

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
START = datetime(2024, 1, 1)
END = datetime(2024, 1, 3, 23, 59, 59)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bare = _load("_bare")


def test_parse_calls_builds_the_librarys_records() -> None:
    calls = CallDataset(count=40, days=2).calls
    body = orjson.dumps({"success": True, "data": calls, "otherData": {"totalCount": 40}})
    page = parse_page(body, CallRecord, 1)
    assert bare.parse_calls(body) == (page.records, 40)


async def test_pipelined_pull_reads_every_page_once() -> None:
    async with CCRMEmulator(calls=2500, days=3) as emu:
        count = await bare.pipelined_pull(
            emu.url, emu.token, "2024-01-01 00:00:00", "2024-01-03 23:59:59", concurrency=2
        )
        assert count == 2500
        assert sorted(r.page for r in emu.log) == [1, 2, 3]


def _requests(emu: CCRMEmulator) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    return Counter((r.path, tuple(sorted(r.query.items()))) for r in emu.log)


async def test_fan_out_sends_what_a_windowed_pull_with_notes_sends(tmp_path: Path) -> None:
    query = PullQuery(START, END, window=timedelta(days=1), notes=True)
    async with CCRMEmulator(calls=1200, days=3) as emu:
        async with CCRMClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as crm:
            sink = SqliteSink(tmp_path / "pull.sqlite", notes=True)
            try:
                await pull_into(crm, sink, query)
            finally:
                sink.close()
        library = _requests(emu)
        emu.log.clear()
        planned = bare.windowed_requests(
            emu.dataset, plan_windows(START, END, query.window), notes=True
        )
        sent, _ = await bare.fan_out(emu.url, emu.token, planned, concurrency=4)
        assert sent == len(planned) == sum(library.values())
        assert _requests(emu) == library
        assert any(path == bare.NOTES for path, _ in library)
