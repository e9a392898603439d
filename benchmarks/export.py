"""Export benchmark: run by hand (``python benchmarks/export.py``), not in CI.

Prints, in one run, against an emulator in a separate process on 127.0.0.1:

1. callback-to-resolved latency of small exports (40 people): from the
   moment the receiver accepts the callback to the moment ``await job``
   returns (download, SHA-256, fsync and rename included);
2. download throughput of a 200 MB export through the library, against a raw
   aiohttp download of the same file in the same run (stream to disk, no
   hashing, no fsync), and against a raw download that also hashes and
   fsyncs, as ratios; rounds alternate and the medians are shown;
3. peak RSS growth of this process while the library downloads the 200 MB
   export — goal: flat (well under 64 MiB);
4. callback acknowledgement latency of 100 jobs whose downloads all stall
   (so only 4 run and 96 queue), p50 and p99, against the latency of a 404
   to an unknown path in the same run, as a ratio — goal: about 1 (the
   answer never waits on a download);
5. the longest event-loop stall while an 8 MB export downloads, against the
   longest stall of an idle loop in the same run.

(The test suite checks the same properties by ordering, never by time.)

The machine is noisy (±20 %): compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from ccrm_async import CCRMClient
from ccrm_async.exports import ExportJob, ExportReceiver
from ccrm_async.testing import CCRMEmulator

TOKEN = "bench-token"
MB = 1_000_000
CHUNK = 1 << 18


# -- the emulator, in its own process ---------------------------------------------


async def serve() -> None:
    """Serve an emulator; ``POST /_bench/faults`` sets export switches."""
    emu = CCRMEmulator(calls=1, token=TOKEN)

    async def set_faults(request: web.Request) -> web.Response:
        for name, value in orjson.loads(await request.read()).items():
            setattr(emu.exports.faults, name, value)
        return web.json_response({"success": True})

    async def last_export(_: web.Request) -> web.Response:
        return web.json_response({"id": list(emu.exports.exports)[-1]})

    async def waiting(_: web.Request) -> web.Response:
        return web.json_response(
            [
                {"id": e.id, "push_url": e.push_url}
                for e in emu.exports.exports.values()
                if e.ready_at is not None and not e.callbacks
            ]
        )

    emu.add_routes(
        [
            web.post("/_bench/faults", set_faults),
            web.get("/_bench/last", last_export),
            web.get("/_bench/waiting", waiting),
        ]
    )
    url = await emu.start()
    print(url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emu.close()


# -- measurements -------------------------------------------------------------------


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux)


async def _faults(session: aiohttp.ClientSession, url: str, **values: object) -> None:
    async with session.post(
        f"{url}/_bench/faults",
        data=orjson.dumps(values),
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        resp.raise_for_status()


async def _last_file_id(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(
        f"{url}/_bench/last", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        return str((await resp.json())["id"])


async def _raw_download(
    session: aiohttp.ClientSession, url: str, target: Path, *, same_work: bool = False
) -> float:
    """A plain aiohttp download to *target*; with *same_work*, also the SHA-256
    and fsync the library does."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        resp.raise_for_status()
        with open(target, "wb") as f:  # noqa: ASYNC230 - the naive baseline
            async for chunk in resp.content.iter_chunked(CHUNK):
                if same_work:
                    digest.update(chunk)
                f.write(chunk)
            if same_work:
                f.flush()
                os.fsync(f.fileno())
    return time.perf_counter() - started


async def run(url: str, size: int, small: int, rounds: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="ccrm-export-bench-"))
    try:
        async with (
            aiohttp.ClientSession() as control,
            CCRMClient(base_url=url, token=TOKEN) as crm,
            ExportReceiver(directory=directory) as rx,
        ):
            # 1. callback-to-resolved latency, small files
            await _faults(control, url, size=None, people=40)
            latencies = []
            for _ in range(small):
                job = await crm.export_people(["firstName", "lastName", "phone1"], receiver=rx)
                result = await job
                assert job.received_at is not None
                latencies.append(time.monotonic() - job.received_at)
                result.path.unlink()
            latencies.sort()
            print(
                f"callback-to-resolved, {small} small exports ({result.size} B): "
                f"median {statistics.median(latencies) * 1000:.1f} ms, "
                f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.1f} ms"
            )

            # 2 and 3. a large file, library against raw aiohttp
            await _faults(control, url, size=size, people=2000)
            lib_times: list[float] = []
            raw_times: list[float] = []
            same_times: list[float] = []
            growth: list[float] = []
            file_size = 0
            for _ in range(rounds):
                _reset_peak_rss()
                base = _status_kib("VmRSS")
                job = await crm.export_people(["firstName", "lastName", "phone1"], receiver=rx)
                result = await job
                assert job.received_at is not None
                lib_times.append(time.monotonic() - job.received_at)
                growth.append((_status_kib("VmHWM") - base) / 1024)
                file_size = result.size
                result.path.unlink()
                raw_target = directory / "raw.csv"
                download = f"{url}/api/storage/download/{await _last_file_id(control, url)}"
                raw_times.append(await _raw_download(control, download, raw_target))
                raw_target.unlink()
                same_times.append(
                    await _raw_download(control, download, raw_target, same_work=True)
                )
                raw_target.unlink()
            lib = statistics.median(lib_times)
            raw = statistics.median(raw_times)
            same = statistics.median(same_times)
            print(
                f"download of {file_size / MB:.0f} MB: library {file_size / lib / MB:.0f} MB/s "
                f"(sha256 + fsync included), raw aiohttp {file_size / raw / MB:.0f} MB/s: "
                f"ratio {raw / lib:.2f}; raw aiohttp doing the same sha256 + fsync "
                f"{file_size / same / MB:.0f} MB/s: ratio {same / lib:.2f}"
            )
            print(
                f"peak RSS growth during a {file_size / MB:.0f} MB download: "
                f"{max(growth):.1f} MiB (rounds: {', '.join(f'{g:.1f}' for g in growth)})"
            )
            await _acknowledgements(control, crm, url, directory)
            await _loop_stalls(control, crm, url, rx)
    finally:
        shutil.rmtree(directory)


async def _timed_post(session: aiohttp.ClientSession, url: str, body: bytes) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body) as resp:
        await resp.read()
    return time.perf_counter() - started


async def _acknowledgements(
    control: aiohttp.ClientSession, crm: CCRMClient, url: str, directory: Path
) -> None:
    await _faults(control, url, size=None, people=2000, missing=True, download_hang=True)
    async with ExportReceiver(directory=directory, shutdown_timeout=0) as rx:
        jobs = await asyncio.gather(
            *(crm.export_people(["firstName"], receiver=rx) for _ in range(100))
        )
        async with control.get(
            f"{url}/_bench/waiting", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            exports = await resp.json()
        bodies = [
            (e["push_url"], orjson.dumps({"url": f"{url}/api/storage/download/{e['id']}"}))
            for e in exports
        ]
        assert rx.url is not None
        baseline = sorted(
            await asyncio.gather(
                *(_timed_post(control, f"{rx.url}/unknown", b"{}") for _ in range(100))
            )
        )
        acked = sorted(
            await asyncio.gather(
                *(
                    _timed_post(control, rx.url + "/" + push.split("/", 3)[3], body)
                    for push, body in bodies
                )
            )
        )
    await asyncio.gather(*jobs, return_exceptions=True)
    await _faults(control, url, missing=False, download_hang=False)
    p50, p99 = statistics.median(acked), acked[98]
    print(
        f"100 callbacks, downloads stalled: ack p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; "
        f"404 to an unknown path p99 {baseline[98] * 1000:.1f} ms: ratio {p99 / baseline[98]:.2f}"
    )


async def _longest_stall(seconds: float | None, work: ExportJob | None = None) -> float:
    loop = asyncio.get_running_loop()
    longest = 0.0
    last = loop.time()
    end = None if seconds is None else last + seconds
    while (work is not None and not work.done()) or (end is not None and last < end):
        await asyncio.sleep(0.001)
        now = loop.time()
        longest = max(longest, now - last)
        last = now
    return longest


async def _loop_stalls(
    control: aiohttp.ClientSession, crm: CCRMClient, url: str, rx: ExportReceiver
) -> None:
    await _faults(control, url, size=8 * MB, people=2000)
    idle = await _longest_stall(0.5)
    job = await crm.export_people(["firstName"], receiver=rx)
    busy = await _longest_stall(None, job)
    (await job).path.unlink()
    print(
        f"longest event-loop stall during an 8 MB download {busy * 1000:.1f} ms, "
        f"idle {idle * 1000:.1f} ms: ratio {busy / idle:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size-mb", type=int, default=200, help="large export size (200 MB)")
    parser.add_argument("--small", type=int, default=50, help="small exports timed (50)")
    parser.add_argument("--rounds", type=int, default=3, help="large downloads per side (3)")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        print(f"emulator {url} (pid {child.pid}), client pid {os.getpid()}, {os.cpu_count()} CPUs")
        asyncio.run(run(url, args.size_mb * MB, args.small, args.rounds))
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
