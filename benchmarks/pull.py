"""Pull benchmarks (issue 11's yardstick): run by hand with ``make bench``, not in CI.

Every figure is a ratio measured in one run, against an emulator in its own
process on 127.0.0.1 (latency from its ``--latency`` switch); library and
reference runs alternate, and each ratio is the median over the repeats with
its range. Targets are printed beside each figure with PASS or MISS:

1. zero latency, 100,000 records, concurrency 8: the library's records/s over
   the bare loop's (aiohttp + orjson + the same cattrs hooks; 8 fetch workers
   feeding one parser through a queue) — target >= 0.85;
2. 40 pages at 150 ms, concurrency 8: library time over the same bare loop's
   time — target <= 1.1x;
3. ``calls pull`` (the command line, in this process) of 60,000 calls over a
   month at 100 ms into SQLite: 1-day windows over one window — target <= 1.2x;
4. ``calls pull --notes`` of 20,000 calls (about 6,000 notes requests) at 50 ms,
   concurrency 32, 1-day windows, against a bare aiohttp fan-out of the same
   requests (bare time over library time) — target >= 0.9; both also against
   the ideal, requests x latency / concurrency;
5. a streamed library pull of 300,000 records (in a child process): RSS after
   300,000 records less RSS after 100,000 — target < 10 MB.

``--only 1,3`` runs some of them (``make bench ONLY=1,3``), ``--repeats N``
overrides the repeats (``make bench REPEATS=3``). The machine is noisy: the
first line measures how much, and every figure shows its spread.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from _bare import NOTES, PAGE_SIZE, fan_out, pipelined_pull, windowed_requests
from _common import (
    TOKEN,
    Ratio,
    emulator_process,
    load_average,
    noise_line,
    rss_mib,
    spread_text,
)

from ccrm_async import CCRMClient
from ccrm_async.cli import main as cli_main
from ccrm_async.sinks import plan_windows
from ccrm_async.testing import CallDataset

RANGE = ("2024-01-01 00:00:00", "2024-01-31 23:59:59")
START = datetime(2024, 1, 1)
END = datetime(2024, 1, 31, 23, 59, 59)
ONE_WINDOW = "1000w"  # aligned from 2000-01-03: no boundary inside January 2024


# -- the library's side -----------------------------------------------------------------


async def library_pull(url: str, concurrency: int) -> int:
    async with CCRMClient(base_url=url, token=TOKEN, concurrency=concurrency) as crm:
        count = 0
        async for _ in crm.call_history(*RANGE):
            count += 1
        return count


def library_seconds(url: str, concurrency: int, expected: int) -> float:
    started = time.perf_counter()
    count = asyncio.run(library_pull(url, concurrency))
    elapsed = time.perf_counter() - started
    assert count == expected, f"library pulled {count} records, expected {expected}"
    return elapsed


def bare_seconds(url: str, concurrency: int, expected: int) -> float:
    started = time.perf_counter()
    count = asyncio.run(pipelined_pull(url, TOKEN, *RANGE, concurrency=concurrency))
    elapsed = time.perf_counter() - started
    assert count == expected, f"bare loop parsed {count} records, expected {expected}"
    return elapsed


_SUMMARY = re.compile(r"(\d+) calls, (\d+) notes, (\d+) pages, (\d+) requests")


def cli_pull(url: str, out: Path, *options: str) -> tuple[float, int, int, int | None]:
    """``ccrm-async calls pull`` through its main entry, in this process.

    Returns (seconds, calls in the file, notes in the file, requests sent as the
    summary line states them, or None when it cannot be read)."""
    argv = [
        "calls",
        "pull",
        "--from",
        RANGE[0],
        "--to",
        RANGE[1],
        "--out",
        str(out),
        "--base-url",
        url,
        *options,
    ]
    os.environ["CCRM_TOKEN"] = TOKEN
    stderr = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(stderr):
        code = cli_main(argv)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"calls pull exited with {code}: {stderr.getvalue().strip()}")
    with contextlib.closing(sqlite3.connect(out)) as db:
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        notes = (
            db.execute("SELECT count(*) FROM notes").fetchone()[0] if "--notes" in options else 0
        )
    match = _SUMMARY.search(stderr.getvalue())
    return elapsed, calls, notes, int(match.group(4)) if match else None


def alternate(repeats: int, *runs: Callable[[], float]) -> Iterator[list[float]]:
    """Each repeat runs every one of *runs* once, starting with a different one
    each time (so a slow start or a load spike does not always hit one side);
    yields the times in the order of *runs*."""
    for repeat in range(repeats):
        times = [0.0] * len(runs)
        for k in range(len(runs)):
            index = (repeat + k) % len(runs)
            times[index] = runs[index]()
        yield times


# -- the measurements ---------------------------------------------------------------------


def throughput(repeats: int, records: int = 100_000, concurrency: int = 8) -> Ratio:
    print(f"1. zero latency, {records:,} records, concurrency {concurrency}")
    ratio = Ratio(1, "zero latency: library / bare loop, records/s", 0.85, True)
    lib_rates, bare_rates = [], []
    with emulator_process(records) as url:
        bare_seconds(url, concurrency, records)  # warm-up, not counted
        for lib_t, bare_t in alternate(
            repeats,
            lambda: library_seconds(url, concurrency, records),
            lambda: bare_seconds(url, concurrency, records),
        ):
            lib_rates.append(records / lib_t)
            bare_rates.append(records / bare_t)
            ratio.values.append(bare_t / lib_t)
    print(f"   library    {spread_text(lib_rates, 'records/s', 0)}")
    print(f"   bare loop  {spread_text(bare_rates, 'records/s', 0)}")
    print(ratio.line())
    return ratio


def latency(repeats: int, pages: int = 40, delay: float = 0.150, concurrency: int = 8) -> Ratio:
    records = pages * PAGE_SIZE
    print(f"2. {pages} pages, {delay * 1000:.0f} ms per request, concurrency {concurrency}")
    ratio = Ratio(2, f"{pages} pages at {delay * 1000:.0f} ms: library / bare time", 1.1, False)
    lib_times, bare_times = [], []
    with emulator_process(records, latency=delay) as url:
        bare_seconds(url, concurrency, records)  # warm-up: fills the emulator's page cache
        for lib_t, bare_t in alternate(
            repeats,
            lambda: library_seconds(url, concurrency, records),
            lambda: bare_seconds(url, concurrency, records),
        ):
            lib_times.append(lib_t)
            bare_times.append(bare_t)
            ratio.values.append(lib_t / bare_t)
    network = delay * (1 + math.ceil((pages - 1) / concurrency))
    print(f"   network alone (page 1, then rounds of {concurrency}): {network:.2f} s")
    print(f"   library    {spread_text(lib_times, 's')}")
    print(f"   bare loop  {spread_text(bare_times, 's')}")
    print(ratio.line())
    return ratio


def windows(repeats: int, records: int = 60_000, delay: float = 0.100) -> Ratio:
    count = len(plan_windows(START, END, timedelta(days=1)))
    assert len(plan_windows(START, END, timedelta(weeks=1000))) == 1
    print(
        f"3. calls pull of {records:,} calls over a month at {delay * 1000:.0f} ms into SQLite,"
        f" {count} 1-day windows against one window"
    )
    ratio = Ratio(3, "calls pull, 1-day windows / one window, time", 1.2, False)
    windowed, single = [], []
    with emulator_process(records, latency=delay) as url, tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))

        def run(window: str) -> float:
            out = Path(tmp) / f"pull-{next(runs)}.sqlite"
            elapsed, calls, _, _ = cli_pull(url, out, "--window", window)
            assert calls == records, f"{calls} calls in the file, expected {records}"
            return elapsed

        for day_t, one_t in alternate(repeats, lambda: run("1d"), lambda: run(ONE_WINDOW)):
            windowed.append(day_t)
            single.append(one_t)
            ratio.values.append(day_t / one_t)
    print(f"   1-day windows {spread_text(windowed, 's')}")
    print(f"   one window    {spread_text(single, 's')}")
    print(ratio.line())
    return ratio


def notes_requests(records: int) -> list[tuple[str, dict[str, str]]]:
    """The requests a 1-day-window ``calls pull --notes`` of January sends."""
    dataset = CallDataset(count=records)  # the emulator's seed, start and days
    return windowed_requests(dataset, plan_windows(START, END, timedelta(days=1)), notes=True)


def notes(
    repeats: int, records: int = 20_000, delay: float = 0.050, concurrency: int = 32
) -> Ratio:
    requests = notes_requests(records)
    note_count = sum(1 for path, _ in requests if path == NOTES)
    print(
        f"4. calls pull --notes of {records:,} calls at {delay * 1000:.0f} ms, concurrency"
        f" {concurrency}, 1-day windows: {len(requests):,} requests ({note_count:,} for notes)"
    )
    ratio = Ratio(4, "notes fan-out: bare time / calls pull --notes time", 0.9, True)
    lib_times, bare_times = [], []
    lib_requests: set[int | None] = set()
    with emulator_process(records, latency=delay) as url, tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10**6))

        def library() -> float:
            out = Path(tmp) / f"notes-{next(runs)}.sqlite"
            options = ("--notes", "--concurrency", str(concurrency), "--window", "1d")
            elapsed, calls, _, sent = cli_pull(url, out, *options)
            assert calls == records, f"{calls} calls in the file, expected {records}"
            lib_requests.add(sent)
            return elapsed

        def bare() -> float:
            started = time.perf_counter()
            sent, _ = asyncio.run(fan_out(url, TOKEN, requests, concurrency=concurrency))
            assert sent == len(requests)
            return time.perf_counter() - started

        for lib_t, bare_t in alternate(repeats, library, bare):
            lib_times.append(lib_t)
            bare_times.append(bare_t)
            ratio.values.append(bare_t / lib_t)
    ideal = len(requests) * delay / concurrency
    sent_text = ", ".join(str(n) for n in sorted(lib_requests, key=lambda n: n or 0))
    print(f"   requests sent by calls pull: {sent_text} (bare fan-out: {len(requests):,})")
    print(f"   ideal (requests x latency / concurrency): {ideal:.2f} s")
    print(
        f"   calls pull {spread_text(lib_times, 's')};"
        f" ideal / time {' '.join(f'{ideal / t:.2f}' for t in lib_times)}"
    )
    print(
        f"   bare       {spread_text(bare_times, 's')};"
        f" ideal / time {' '.join(f'{ideal / t:.2f}' for t in bare_times)}"
    )
    print(ratio.line())
    return ratio


async def _memory_pull(url: str, marks: tuple[int, ...]) -> dict[int, float]:
    samples = {0: rss_mib()}
    async with CCRMClient(base_url=url, token=TOKEN) as crm:
        count = 0
        async for _ in crm.call_history(*RANGE):
            count += 1
            if count in marks:
                samples[count] = rss_mib()
    return samples


def memory_child(url: str, records: int) -> None:
    marks = (25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000)
    samples = asyncio.run(_memory_pull(url, tuple(m for m in marks if m <= records)))
    print(orjson.dumps({str(k): v for k, v in samples.items()}).decode())


def memory(repeats: int, records: int = 300_000, base: int = 100_000) -> Ratio:
    print(f"5. streamed library pull of {records:,} records (in a child process)")
    ratio = Ratio(5, f"RSS at {records:,} less RSS at {base:,} records", 10, False, unit="MB")
    with emulator_process(records) as url:
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", url, str(records)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            samples = {int(k): v for k, v in orjson.loads(out.splitlines()[-1]).items()}
            ratio.values.append((samples[records] - samples[base]) * 2**20 / 1e6)
            shown = ", ".join(f"{n:,}: {m:.0f}" for n, m in sorted(samples.items()))
            print(f"   RSS in MiB after n records: {shown}")
    print(ratio.line())
    return ratio


MEASUREMENTS = {1: throughput, 2: latency, 3: windows, 4: notes, 5: memory}
DEFAULT_REPEATS = {1: 3, 2: 3, 3: 2, 4: 2, 5: 1}


def _only(text: str) -> list[int]:
    chosen = sorted({int(part) for part in text.replace(" ", "").split(",") if part})
    if not chosen or not set(chosen) <= MEASUREMENTS.keys():
        raise argparse.ArgumentTypeError(f"expected numbers from 1 to 5, like 1,3; got {text!r}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", type=_only, default=sorted(MEASUREMENTS), help="measurements to run, e.g. 1,3"
    )
    parser.add_argument(
        "--repeats", type=int, help="repeats of each measurement (default 3/3/2/2/1)"
    )
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("URL", "RECORDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    print(noise_line())
    started = time.perf_counter()
    results = []
    for number in args.only:
        result = MEASUREMENTS[number](args.repeats or DEFAULT_REPEATS[number])
        print(f"   (load average now {load_average()})")
        results.append(result)
    print(noise_line())
    print(f"summary ({time.perf_counter() - started:.0f} s; median of the repeats, their range):")
    for result in results:
        print(result.summary())


if __name__ == "__main__":
    main()
