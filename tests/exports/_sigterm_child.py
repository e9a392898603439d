"""Run by test_export_shutdown: a service with 3 export downloads in flight,
stopped by SIGTERM (RELIABILITY 26).

Usage: python _sigterm_child.py DIRECTORY MODE, MODE ``cancel`` (downloads too
slow for ``shutdown_timeout``) or ``finish`` (they end within it). Prints one
JSON line ``{"ready": ..., "port": ...}`` once the downloads run, and one
report line after the shutdown.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from ccrm_async import CCRMClient
from ccrm_async.exports import ExportReceiver
from ccrm_async.testing import CCRMEmulator

SHUTDOWN_TIMEOUT = {"cancel": 0.5, "finish": 5.0}


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def main(directory: Path, mode: str) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_sigterm() -> None:
        stop.set()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    async with CCRMEmulator(calls=1) as emu, CCRMClient(base_url=emu.url, token=emu.token) as crm:
        faults = emu.exports.faults
        faults.size = 2 << 20  # 2 MiB each
        faults.download_rate = (1 << 20) if mode == "cancel" else (8 << 20)
        rx = ExportReceiver(directory=directory, shutdown_timeout=SHUTDOWN_TIMEOUT[mode])
        await rx.start()
        assert rx.url is not None
        port = int(rx.url.rsplit(":", 1)[1])
        jobs = [await crm.export_people(["firstName", "lastName"], receiver=rx) for _ in range(3)]
        while not all(job.bytes_received > 0 for job in jobs):  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.005)
        print(json.dumps({"ready": True, "port": port}), flush=True)
        await stop.wait()
        closing = asyncio.create_task(rx.close())
        while not await _refused(port):  # noqa: ASYNC110 - probing the socket
            await asyncio.sleep(0.001)
        done_when_refused = sum(1 for job in jobs if job.done())
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        await closing
    return {
        "done_when_refused": done_when_refused,
        "outcomes": [type(o).__name__ for o in outcomes],
        "sizes": [getattr(o, "size", None) for o in outcomes],
    }


if __name__ == "__main__":
    report = asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
    print(json.dumps(report), flush=True)
