"""Where the event loop's time goes in a pull: run by hand (``make bench-timeline``).

Pulls the same range with the library and with the bare pipelined loop
(``_bare.pipelined_pull``), emulator in its own process, and records, without
touching the library's code (wrappers installed from here):

- every request's life, from ``ClientSession._request`` to the end of
  ``ClientResponse.read()`` (so "in flight" includes reading the body);
- every page parse (``ccrm_async.client.parse_page`` for the library,
  ``_bare.parse_calls`` for the loop).

It prints, for each: wall time; the loop's time spent parsing; time with no
request in flight (the network idle); parsing time during which fewer than
half the slots had a request out (the network waiting for the parser); the
mean number of requests in flight. ``--profile`` adds a cProfile of the
library's pull, top functions by own time in microseconds per record.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from typing import Any

import _bare
import aiohttp
from _common import TOKEN, emulator_process
from pull import RANGE, library_pull

import ccrm_async.client
from ccrm_async import CallRecord
from ccrm_async.converter import LENIENT
from ccrm_async.pagination import Page, PageSource, PullStats, paginate
from ccrm_async.testing import CallDataset


class Recorder:
    """Events of one pull: (time, +1/-1) for requests, (start, end) for parses."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, int]] = []
        self.parses: list[tuple[float, float]] = []
        self.parse_cpu = 0.0  # this thread's CPU time inside the parses
        self.gc_time = 0.0  # CPU time inside the cyclic garbage collector
        self.gc_full = 0  # its collections of the oldest generation
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self.gc_time += time.thread_time() - self._gc_started
            self.gc_full += info["generation"] == 2

    def report(self, name: str, wall: float, records: int, slots: int) -> None:
        events = sorted(self.requests)
        idle = 0.0
        weighted = 0.0
        low: list[tuple[float, float]] = []  # spans with fewer than slots/2 out
        in_flight = 0
        last = events[0][0] if events else 0.0
        for at, change in events:
            span = at - last
            weighted += in_flight * span
            if in_flight == 0:
                idle += span
            if in_flight < slots / 2:
                low.append((last, at))
            in_flight += change
            last = at
        parsing = sum(end - start for start, end in self.parses)
        starved = sum(_overlap(parse, low) for parse in self.parses)
        network = (events[-1][0] - events[0][0]) if events else 0.0
        print(f"{name}: {records:,} records in {wall:.2f} s ({records / wall:,.0f}/s)")
        print(
            f"   parsing on the loop       {parsing:6.2f} s  ({parsing / wall:4.0%} of the wall;"
            f" {self.parse_cpu:.2f} s of CPU)"
        )
        print(
            f"   garbage collector         {self.gc_time:6.2f} s of CPU ({self.gc_full} full"
            " collections)"
        )
        print(f"   no request in flight      {idle:6.2f} s  ({idle / wall:4.0%})")
        print(f"   parsing while < {slots // 2} out     {starved:6.2f} s  ({starved / wall:4.0%})")
        print(f"   mean requests in flight   {weighted / network if network else 0:6.2f}")


def _overlap(span: tuple[float, float], spans: list[tuple[float, float]]) -> float:
    start, end = span
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)


def instrument(recorder: Recorder) -> Callable[[], None]:
    """Install the wrappers; returns the function that removes them."""
    session_request = aiohttp.ClientSession._request
    response_read = aiohttp.ClientResponse.read
    library_parse = ccrm_async.client.parse_page
    bare_parse = _bare.parse_calls
    clock = time.perf_counter

    async def request(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> Any:
        recorder.requests.append((clock(), +1))
        return await session_request(self, *args, **kwargs)

    async def read(self: aiohttp.ClientResponse) -> bytes:
        try:
            return await response_read(self)
        finally:
            recorder.requests.append((clock(), -1))

    def timed(parse: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started, cpu = clock(), time.thread_time()
            try:
                return parse(*args, **kwargs)
            finally:
                recorder.parses.append((started, clock()))
                recorder.parse_cpu += time.thread_time() - cpu

        return run

    gc.callbacks.append(recorder.on_gc)
    aiohttp.ClientSession._request = request  # type: ignore[method-assign]
    aiohttp.ClientResponse.read = read  # type: ignore[method-assign]
    ccrm_async.client.parse_page = timed(library_parse)  # type: ignore[assignment]
    _bare.parse_calls = timed(bare_parse)

    def undo() -> None:
        gc.callbacks.remove(recorder.on_gc)
        aiohttp.ClientSession._request = session_request  # type: ignore[method-assign]
        aiohttp.ClientResponse.read = response_read  # type: ignore[method-assign]
        ccrm_async.client.parse_page = library_parse
        _bare.parse_calls = bare_parse

    return undo


def measure(name: str, url: str, concurrency: int, pull: Callable[[], Any]) -> None:
    recorder = Recorder()
    undo = instrument(recorder)
    try:
        started = time.perf_counter()
        records = asyncio.run(pull())
        wall = time.perf_counter() - started
    finally:
        undo()
    recorder.report(name, wall, records, concurrency)


def profile(url: str, concurrency: int) -> None:
    profiler = cProfile.Profile(time.process_time)  # CPU time: robust to a busy machine
    profiler.enable()
    records = asyncio.run(library_pull(url, concurrency))
    profiler.disable()
    entries = sorted(
        pstats.Stats(profiler).stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: kv[1][2],
        reverse=True,
    )
    print(f"cProfile of the library's pull ({records:,} records): own CPU time, µs per record")
    for (path, line, name), (_, calls, own, cum, _) in entries[:25]:
        where = f"{path.rsplit('/', 2)[-1]}:{line}" if line else path
        print(
            f"   {own / records * 1e6:6.2f} own {cum / records * 1e6:7.2f} cum"
            f" {calls / records:7.3f}/rec  {name} ({where})"
        )


def engine_alone(records: int, lookahead: int = 10) -> None:
    """The engine's own cost per record, no network and no parsing: ``paginate``
    over pages already parsed, against a plain loop over the same records."""
    items = CallDataset(count=min(records, 20_000)).calls
    hook = LENIENT.get_structure_hook(CallRecord)
    parsed = [hook(o, CallRecord) for o in items]
    chunks = [parsed[i : i + 1000] for i in range(0, len(parsed), 1000)]
    pages = [Page(n, chunk, len(parsed)) for n, chunk in enumerate(chunks, 1)]

    async def fetch(number: int) -> Page[CallRecord]:
        await asyncio.sleep(0)
        return pages[number - 1]

    async def fetch_body(number: int) -> bytes:
        await asyncio.sleep(0)
        return b"x" * 1000  # the engine counts the bytes it buffers

    async def refetch(number: int, _error: Exception) -> Page[CallRecord]:
        return await fetch(number)

    source = PageSource(fetch_body, lambda _body, number: pages[number - 1], refetch)

    async def through_engine() -> int:
        count = 0
        async for _ in paginate(
            source, key=lambda r: r.uuid, stats=PullStats(), lookahead=lookahead
        ):
            count += 1
        return count

    async def plain() -> int:
        count = 0
        for number in range(1, len(pages) + 1):
            for _ in (await fetch(number)).records:
                count += 1
        return count

    best = {"engine": float("inf"), "plain": float("inf")}
    for _ in range(7):
        for name, run in (("engine", through_engine), ("plain", plain)):
            started = time.process_time()
            assert asyncio.run(run()) == len(parsed)
            best[name] = min(best[name], time.process_time() - started)
    per = {name: seconds / len(parsed) * 1e6 for name, seconds in best.items()}
    print(
        f"engine alone ({len(parsed):,} records parsed beforehand, CPU, best of 7): paginate"
        f" {per['engine']:.2f} µs a record, a plain loop {per['plain']:.2f}:"
        f" {per['engine'] - per['plain']:.2f} µs a record of de-duplication, ordering and yield"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer (0)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="also cProfile the library")
    args = parser.parse_args()
    c = args.concurrency
    engine_alone(args.records)
    with emulator_process(args.records, latency=args.latency) as url:
        asyncio.run(_bare.pipelined_pull(url, TOKEN, *RANGE, concurrency=c))  # warm-up
        for _ in range(2):
            measure("library", url, c, lambda: library_pull(url, c))
            measure(
                "bare loop",
                url,
                c,
                lambda: _bare.pipelined_pull(url, TOKEN, *RANGE, concurrency=c),
            )
        if args.profile:
            profile(url, c)


if __name__ == "__main__":
    main()
