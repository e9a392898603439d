"""Fixtures and helpers for the export tests (imported by each test module; not a
conftest.py, so that ``from conftest import ...`` elsewhere keeps meaning the
root one): a small emulator, a client on it, a receiver, and one private
directory per test under a session root (RELIABILITY 36: every file in it is
mode 0600, no ``.part`` file survives a test, and the root is empty and
removed after the suite)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrm_async import CCRMClient
from ccrm_async.exports import ExportReceiver
from ccrm_async.testing import CCRMEmulator

from conftest import FAST_RETRY


@pytest.fixture(scope="session")
def export_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ccrm-export-tests-"))
    yield root
    leftovers = sorted(p.name for p in root.iterdir())
    shutil.rmtree(root, ignore_errors=True)
    assert leftovers == [], f"export test directory not empty: {leftovers}"


@pytest.fixture
def export_dir(export_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    directory = export_root / request.node.name.replace("/", "_")[:80]
    directory.mkdir(mode=0o700)
    yield directory
    found = [p for p in directory.rglob("*") if p.is_file()]
    parts = [p.name for p in found if p.name.endswith(".part")]
    loose = [p.name for p in found if stat.S_IMODE(p.stat().st_mode) != 0o600]
    shutil.rmtree(directory)
    assert parts == [], f".part files left behind: {parts}"
    assert loose == [], f"export files not mode 0600: {loose}"


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=10, seed=7) as emulator:
        yield emulator


@pytest.fixture
async def crm(emu: CCRMEmulator) -> AsyncIterator[CCRMClient]:
    async with CCRMClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
async def rx(export_dir: Path) -> AsyncIterator[ExportReceiver]:
    async with ExportReceiver(directory=export_dir, shutdown_timeout=1.0) as receiver:
        yield receiver


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain session for the test's own requests (callbacks, random paths)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until *check()* holds (polling every 10 ms), or fail."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - conditions on other components' state
            await asyncio.sleep(0.01)


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, **kw: Any
) -> tuple[int, bytes, str]:
    async with session.post(url, data=body, **kw) as resp:
        return resp.status, await resp.read(), resp.content_type


def path_of(push_url: str) -> str:
    """The path of a ``pushUrl`` (``/ccrm-export/<job>/<token>``)."""
    return "/" + push_url.split("/", 3)[3]


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def file_mode(path: str | os.PathLike[str]) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


Waiter = Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def gate_held(crm: CCRMClient) -> AsyncIterator[None]:
    """Every slot of *crm*'s request gate taken while inside: its requests
    (downloads included) wait at the gate until the block ends."""
    gate = crm.transport.gate
    taken = gate.limit
    for _ in range(taken):
        await gate.acquire()
    try:
        yield
    finally:
        for _ in range(taken):
            gate.release()
