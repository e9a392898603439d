"""Helpers shared by the benchmarks: an emulator in its own process, RSS readings."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

TOKEN = "bench-token"


@contextlib.contextmanager
def emulator_process(calls: int, latency: float = 0.0) -> Iterator[str]:
    """Run ``ccrm-async emulator`` in a child process; yield its base URL."""
    env = {**os.environ, "CCRM_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccrm_async",
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--calls",
            str(calls),
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"emulator did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def rss_mib() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
