"""Timing claims that tests no longer make: run by hand, not in CI.

The suite asserts counts (attempts, loop turns, requests); the durations those
counts stand for are measured here, in one run, as ratios to a reference
measured in the same run (the machine is noisy, ±20 %):

1. RELIABILITY 12, a fatal 401 stops the siblings: the time from the 401 being
   sent to the pull raising, against the emulator's latency per request
   (goal: under 1 s, about one latency);
2. RELIABILITY 13, every request hanging: the time to the error against the
   request deadline plus one attempt (goal: ratio at most 1.0);
3. the Thulium directory reopening (``ContactDirectory.open``) against building
   it: see ``benchmarks/thulium.py``, which prints ``reopen_ms`` beside the build.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from ccrm_async import AuthenticationError, CCRMClient, RetryPolicy, Timeouts, TransportError
from ccrm_async.testing import CCRMEmulator

CALLS = "/publicApi/callHistory"
RANGE = ("2024-01-01", "2024-01-31")


async def fatal_stop(latency: float = 0.02) -> tuple[float, float]:
    """Seconds from the 401 leaving the emulator to the pull raising, and the latency."""
    async with CCRMEmulator(calls=50_000, notes_ratio=0.0) as emu:
        emu.faults.latency = latency
        emu.faults.script(CALLS, ["401"], page=7)
        async with CCRMClient(base_url=emu.url, token=emu.token, concurrency=4) as crm:
            try:
                [c async for c in crm.call_history(*RANGE)]
            except AuthenticationError:
                raised = time.monotonic()  # the emulator's log uses the same clock
        unauthorized = next(r for r in emu.log if r.fault == "401")
        assert unauthorized.finished is not None
        return raised - unauthorized.finished, latency


async def hanging_deadline() -> tuple[float, float]:
    """Seconds until every-request-hangs raises, and the deadline plus one attempt."""
    async with CCRMEmulator(calls=10) as emu:
        emu.faults.drip_interval = 0.05
        emu.faults.script(CALLS, ["hang", "drip"] * 10)
        policy = RetryPolicy(max_attempts=10, backoff_base=0.01, backoff_cap=0.01, deadline=1.0)
        timeouts = Timeouts(connect=1, sock_read=0.2, total=0.5)
        async with CCRMClient(
            base_url=emu.url, token=emu.token, timeout=timeouts, retry=policy
        ) as crm:
            started = time.monotonic()
            with contextlib.suppress(TransportError):
                [c async for c in crm.call_history(*RANGE)]
            elapsed = time.monotonic() - started
        assert timeouts.total is not None
        return elapsed, policy.deadline + timeouts.total


async def main() -> None:
    stop, latency = await fatal_stop()
    print(f"fatal 401 -> raised in {stop * 1000:.1f} ms = {stop / latency:.2f} x latency")
    elapsed, budget = await hanging_deadline()
    print(f"all requests hanging -> error after {elapsed:.2f} s = {elapsed / budget:.2f} x budget")


if __name__ == "__main__":
    asyncio.run(main())
