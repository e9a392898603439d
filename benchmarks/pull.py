"""Call-history pull benchmark: run by hand (``make bench``), not in CI.

Prints, in one run, against an emulator in a separate process on 127.0.0.1:

1. zero-latency throughput of ``call_history`` in records/s, against a bare
   loop (aiohttp + orjson + the same cattrs structuring, pages fetched with the
   same concurrency) — goal: the library reaches >= 60 % of the bare loop;
2. a 40-page pull with 150 ms latency per request at concurrency 8: wall time
   against max(ideal network time, zero-latency time) — goal: within 1.25x —
   and the same pull at concurrency 1 as the naive baseline;
3. peak RSS of a streamed 200,000-record pull, sampled as it grows — goal:
   under 150 MB and flat.

The machine is noisy (±20 %): compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import sys
import time

import aiohttp
import orjson
from _common import TOKEN, emulator_process, rss_mib

from ccrm_async import CallRecord, CCRMClient
from ccrm_async.converter import LENIENT

RANGE = ("2024-01-01 00:00:00", "2024-01-31 23:59:59")


async def library_pull(url: str, concurrency: int) -> tuple[int, float]:
    async with CCRMClient(base_url=url, token=TOKEN, concurrency=concurrency) as crm:
        started = time.perf_counter()
        count = 0
        async for _ in crm.call_history(*RANGE):
            count += 1
        return count, time.perf_counter() - started


async def bare_pull(url: str, concurrency: int) -> tuple[int, float]:
    """The least code that does the same work: no retries, no ordering, no dedupe."""
    hook = LENIENT.get_structure_hook(CallRecord)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    params = {"dateFrom": RANGE[0], "dateTo": RANGE[1]}
    async with aiohttp.ClientSession(headers=headers) as session:
        started = time.perf_counter()

        async def page(n: int) -> tuple[int, int]:
            async with session.get(
                f"{url}/publicApi/callHistory", params={**params, "page": str(n)}
            ) as r:
                body = await r.read()
            payload = orjson.loads(body)
            records = [hook(item, CallRecord) for item in payload["data"]]
            return len(records), payload["otherData"]["totalCount"]

        count, total = await page(1)
        semaphore = asyncio.Semaphore(concurrency)

        async def limited(n: int) -> int:
            async with semaphore:
                return (await page(n))[0]

        rest = await asyncio.gather(*(limited(n) for n in range(2, math.ceil(total / 1000) + 1)))
        return count + sum(rest), time.perf_counter() - started


def throughput(records: int) -> None:
    with emulator_process(records) as url:
        asyncio.run(library_pull(url, 8))  # warm the emulator's page cache
        lib_n, lib_t = asyncio.run(library_pull(url, 8))
        bare_n, bare_t = asyncio.run(bare_pull(url, 8))
        lib_n2, lib_t2 = asyncio.run(library_pull(url, 8))
    assert lib_n == bare_n == lib_n2 == records
    lib_rate = records / min(lib_t, lib_t2)
    bare_rate = records / bare_t
    print(f"1. zero latency, {records:,} records, concurrency 8")
    print(f"   library   {lib_rate:10,.0f} records/s")
    print(f"   bare loop {bare_rate:10,.0f} records/s")
    print(f"   ratio     {lib_rate / bare_rate:10.2f}   (goal >= 0.60)")


def latency(pages: int, delay: float) -> None:
    records = pages * 1000
    with emulator_process(records) as url:
        asyncio.run(library_pull(url, 8))
        _, zero_t = asyncio.run(library_pull(url, 8))
    with emulator_process(records, latency=delay) as url:
        asyncio.run(library_pull(url, 8))
        n8, t8 = asyncio.run(library_pull(url, 8))
        n1, t1 = asyncio.run(library_pull(url, 1))
    assert n8 == n1 == records
    network = delay * (1 + math.ceil((pages - 1) / 8))  # page 1, then rounds of 8
    ideal = max(network, zero_t)
    print(f"2. {pages} pages, {delay * 1000:.0f} ms per request")
    print(f"   ideal network time {network:6.2f} s, zero-latency time {zero_t:6.2f} s")
    print(f"   concurrency 8      {t8:6.2f} s   ratio to ideal {t8 / ideal:5.2f}   (goal <= 1.25)")
    print(
        f"   concurrency 1      {t1:6.2f} s   ratio to ideal {t1 / ideal:5.2f}   (naive baseline)"
    )


async def _memory_pull(url: str, records: int) -> list[tuple[int, float]]:
    samples = [(0, rss_mib())]
    async with CCRMClient(base_url=url, token=TOKEN) as crm:
        count = 0
        async for _ in crm.call_history(*RANGE):
            count += 1
            if count % (records // 8) == 0:
                samples.append((count, rss_mib()))
    return samples


def memory_child(url: str, records: int) -> None:
    import resource

    samples = asyncio.run(_memory_pull(url, records))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(orjson.dumps({"samples": samples, "peak": peak}).decode())


def memory(records: int) -> None:
    with emulator_process(records) as url:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", url, str(records)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    result = orjson.loads(out.splitlines()[-1])
    print(
        f"3. streamed pull of {records:,} records: peak RSS {result['peak']:.0f} MiB (goal < 150)"
    )
    print("   RSS as it grows: " + ", ".join(f"{n:,}: {m:.0f}" for n, m in result["samples"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--memory-records", type=int, default=200_000)
    parser.add_argument("--memory-child", nargs=2, metavar=("URL", "RECORDS"))
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    throughput(args.records)
    latency(40, 0.150)
    memory(args.memory_records)


if __name__ == "__main__":
    main()
