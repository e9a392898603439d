"""Helpers shared by the benchmarks: an emulator in its own process, RSS readings,
the machine's noise, and one way to print a measured ratio against its target."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import attrs

TOKEN = "bench-token"


@contextlib.contextmanager
def emulator_process(
    calls: int, latency: float = 0.0, *, days: int = 31, seed: int = 0
) -> Iterator[str]:
    """Run ``ccrm-async emulator`` in a child process; yield its base URL.

    *latency* (seconds) is added by the emulator before every answer. The
    calls start on 2024-01-01 and span *days* days (the emulator's defaults),
    so :class:`~ccrm_async.testing.CallDataset` with the same *seed*, count
    and days holds the very same calls in this process.
    """
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
            "--days",
            str(days),
            "--seed",
            str(seed),
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
        try:  # a big data set takes a while to free on a busy machine
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mib() -> float:
    """Resident set size of this process now, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# -- noise ------------------------------------------------------------------------------


def _cpu_task() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(400_000):
        total += i * i % 7
    return time.perf_counter() - started


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages (other processes competing for the cores)."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def noise_line(runs: int = 9) -> str:
    """One line on how noisy the machine is right now: the spread of a fixed
    pure-Python CPU task over *runs* runs, and the load average."""
    times = sorted(_cpu_task() * 1000 for _ in range(runs))
    median = statistics.median(times)
    spread = (times[-1] - times[0]) / median * 100
    load = load_average()
    return (
        f"noise: a fixed CPU task, {runs} runs: median {median:.1f} ms, "
        f"{times[0]:.1f}-{times[-1]:.1f} ms (spread {spread:.0f} % of the median); "
        f"load average {load} on {os.cpu_count()} cores"
    )


# -- results ------------------------------------------------------------------------------


@attrs.define
class Ratio:
    """A ratio measured once per repeat, with its target.

    ``higher_is_better``: the target is a floor (``>= target``), else a
    ceiling (``<= target``). The verdict uses the median of the repeats.
    """

    number: int
    what: str
    target: float
    higher_is_better: bool
    values: list[float] = attrs.field(factory=list)
    unit: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def digits(self) -> int:
        return 1 if self.unit else 2

    @property
    def passed(self) -> bool:
        """The verdict on the median as printed (targets are given to that precision)."""
        shown = round(self.median, self.digits)
        if self.higher_is_better:
            return shown >= self.target
        return shown < self.target if self.unit else shown <= self.target

    def target_text(self) -> str:
        if self.higher_is_better:
            return f">= {self.target:g}"
        if self.unit:
            return f"< {self.target:g} {self.unit}"
        return f"<= {self.target:g}x"

    def figure_text(self) -> str:
        values = sorted(self.values)
        digits = self.digits
        figure = f"{self.median:.{digits}f}{' ' + self.unit if self.unit else ''}"
        if len(values) > 1:
            figure += (
                f" ({values[0]:.{digits}f}-{values[-1]:.{digits}f} over {len(values)} repeats)"
            )
        return figure

    def line(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        return f"   => {self.figure_text()}   target {self.target_text()}   {verdict}"

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "MISS"
        figure = self.figure_text()
        return f"{self.number}. {self.what:<52} {figure:<34} {self.target_text():<9} {verdict}"


def spread_text(values: list[float], unit: str, digits: int = 2) -> str:
    """``1.52 1.49 s (spread 2 %)``: every repeat's value, and max-min over the median."""
    shown = " ".join(f"{v:,.{digits}f}" for v in values)
    if len(values) < 2:
        return f"{shown} {unit}"
    spread = (max(values) - min(values)) / statistics.median(values) * 100
    return f"{shown} {unit} (spread {spread:.0f} %)"
