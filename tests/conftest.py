"""Shared fixtures: the emulator on 127.0.0.1 with a free port, and a client on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioresponses.core
import pytest
from aiohttp import ClientResponse
from hypothesis import settings

from ccrm_async import CCRMClient, RetryPolicy
from ccrm_async.testing import CCRMEmulator

SAMPLES = Path(__file__).parent / "samples"

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


@pytest.fixture
async def emulator() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=3000) as emu:
        yield emu


@pytest.fixture
async def crm(emulator: CCRMEmulator) -> AsyncIterator[CCRMClient]:
    async with CCRMClient(base_url=emulator.url, token=emulator.token, retry=FAST_RETRY) as client:
        yield client
