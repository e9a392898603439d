"""Shared fixtures: the emulator on 127.0.0.1 with a free port, and a client on it."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioresponses.core
import pytest
from aiohttp import ClientResponse
from hypothesis import settings

from ccrm_async import CCRMClient, RetryPolicy
from ccrm_async.testing import CCRMEmulator

SAMPLES = Path(__file__).parent / "samples"

# dlt and Dagster send usage statistics by default; tests reach nothing
# outside 127.0.0.0/8. Set before either reads its configuration.
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ["DAGSTER_DISABLE_TELEMETRY"] = "true"

# Tests stay deterministic: Hypothesis draws the same examples on every run
# (and keeps no example database between runs).
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None)
settings.load_profile("deterministic")


class _SentRequest:
    output_size = 0


class _CompatResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that
    aiohttp 3.14 requires; supply one that says the request was sent."""

    def __init__(self, *args: Any, stream_writer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, stream_writer=stream_writer or _SentRequest(), **kwargs)


aioresponses.core.ClientResponse = _CompatResponse  # type: ignore[misc]

# Fast retries for tests: same shape as the defaults, milliseconds instead of seconds.
FAST_RETRY = RetryPolicy(
    backoff_base=0.005,
    backoff_cap=0.05,
    deadline=30.0,
    rate_limit_cooldown=0.05,
    ramp_hold=0.2,
)


def sample_bytes(name: str) -> bytes:
    """A body from the seed documents, byte for byte as stored in tests/samples."""
    return (SAMPLES / name).read_bytes()


def sample_json(name: str) -> Any:
    return json.loads(sample_bytes(name))


def emulator_client(emu: CCRMEmulator, **kw: Any) -> CCRMClient:
    """A client of *emu* with :data:`FAST_RETRY` unless told otherwise."""
    kw.setdefault("retry", FAST_RETRY)
    return CCRMClient(base_url=emu.url, token=emu.token, **kw)


@pytest.fixture
async def emulator() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=3000) as emu:
        yield emu


@pytest.fixture
async def crm(emulator: CCRMEmulator) -> AsyncIterator[CCRMClient]:
    async with CCRMClient(base_url=emulator.url, token=emulator.token, retry=FAST_RETRY) as client:
        yield client


# RELIABILITY 35: whatever the library logs, at DEBUG, in any test, carries no
# personal data and no raw line breaks from inputs.
_PESEL = re.compile(r"(?<![\w-])\d{11}(?![\w-])")
_PHONE = re.compile(r"(?<![\w-])\+?\d(?:[ -]?\d){8,}(?![\w-])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _valid_pesel(digits: str) -> bool:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 10) % 10
    return check == int(digits[10])


def personal_data_in(message: str) -> list[str]:
    """What in a log message looks like a PESEL, a phone number, an e-mail
    address or a raw line break."""
    found = [m for m in _PESEL.findall(message) if _valid_pesel(m)]
    found += _PHONE.findall(message)
    found += _EMAIL.findall(message)
    if "\n" in message or "\r" in message:
        found.append("a raw line break")
    return found


@pytest.fixture(autouse=True)
def _no_personal_data_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="ccrm_async")
    yield
    leaks = [
        (record.name, found)
        for record in caplog.get_records("call")
        if record.name.startswith("ccrm_async")
        for found in personal_data_in(record.getMessage())
    ]
    assert leaks == [], leaks


def pytest_unconfigure(config: pytest.Config) -> None:
    # The interpreter's final garbage collection walks every object left; it
    # took from 20 s to minutes when closed emulators were kept alive by
    # aiohttp's middleware cache (fixed in ccrm_async._serving). Nothing a test
    # could observe runs after this point, so that collection is skipped.
    gc.freeze()
