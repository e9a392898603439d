"""RELIABILITY 42 and 43 for every server built on ``ccrm_async._serving``: slow
clients are cut off at their deadline, a request being answered never is, and
running out of file descriptors is logged once per interval and recovered from.

Deadlines run on a fake clock that the test moves; the test sweeps the guard
itself (the background sweep is set to an hour), so nothing depends on how fast
the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import resource
import socket
import weakref
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from ccrm_async import CCRMClient
from ccrm_async._serving import ConnectionLimits, Running, connection_guard, serve
from ccrm_async.exports import ExportReceiver
from ccrm_async.models.contacts import Person, Phone
from ccrm_async.testing import CCRMEmulator
from ccrm_async.thulium import ContactDirectory, LookupServer, create_lookup_app

NUMBER = "500100200"
LIMITS = ConnectionLimits(header_timeout=10.0, idle_timeout=15.0, sweep_interval=3600.0)
REQUEST_HEAD = f"GET /customers.json?phone_number={NUMBER} HTTP/1.1\r\nHost: lookup\r\n\r\n"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def lookup() -> AsyncIterator[tuple[LookupServer, FakeClock]]:
    directory = ContactDirectory.build(
        people=[Person(first_name="Ada", last_name="Testowa", phones=(Phone(NUMBER),))]
    )
    clock = FakeClock()
    app = create_lookup_app(directory, max_numbers_per_minute=None)
    async with LookupServer(app, limits=LIMITS, clock=clock) as server:
        yield server, clock
    directory.close()


async def _ask(http: aiohttp.ClientSession, server: LookupServer) -> int:
    async with http.get(f"{server.url}/customers.json", params={"phone_number": NUMBER}) as r:
        await r.read()
        return r.status


async def _until(condition: Callable[[], bool]) -> None:
    """Poll *condition* every 10 ms until true (10 s at most, then fail)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _accepted(running: Running | None, count: int) -> None:
    """Wait until the server has accepted *count* connections."""
    assert running is not None
    await _until(lambda: running.open_connections >= count)


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (EOF, or a reset); a
    connection still open fails the test with TimeoutError after 10 s."""
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), 10.0)  # whatever is left, up to EOF
    return reader.at_eof() or reader.exception() is not None


async def test_slow_header_sockets_are_closed_at_the_limit_while_lookups_answer(
    lookup: tuple[LookupServer, FakeClock],
) -> None:
    server, clock = lookup
    guard = connection_guard(server.running.runner.server if server.running else None)
    assert guard is not None
    port = int(server.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(150)]
    await _accepted(server.running, 150)  # every deadline counts from t = 0
    head = REQUEST_HEAD.encode()[:-2]  # never the final empty line
    answered = []
    async with aiohttp.ClientSession() as http:
        for second in range(10):  # one byte a second from every slow socket
            clock.t = float(second)
            for _, writer in slow:
                writer.write(head[second : second + 1])
            await asyncio.gather(*(writer.drain() for _, writer in slow))
            assert guard.sweep() == 0
            answered.append(await _ask(http, server))
        clock.t = 9.999
        assert guard.sweep() == 0
        assert server.running is not None and server.running.open_connections >= 150
        clock.t = 10.0  # the limit: every slow socket goes at once
        assert guard.sweep() == 150
        assert all(await asyncio.gather(*(_closed_by_server(r) for r, _ in slow)))
        answered.append(await _ask(http, server))  # the kept-alive lookup connection stays
    assert answered == [200] * 11
    for _, writer in slow:
        writer.close()


async def test_idle_keep_alive_connections_are_closed_after_the_idle_limit(
    lookup: tuple[LookupServer, FakeClock],
) -> None:
    server, clock = lookup
    assert server.running is not None
    guard = connection_guard(server.running.runner.server)
    assert guard is not None
    port = int(server.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _accepted(server.running, 1)
    clock.t = 9.0  # the first request head just in time
    writer.write(REQUEST_HEAD.encode())
    await writer.drain()
    status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 200")
    clock.t = 9.0 + 14.999
    assert guard.sweep() == 0  # idle, but not for 15 s yet
    clock.t = 9.0 + 15.0
    assert guard.sweep() == 1
    assert await _closed_by_server(reader)
    writer.close()


async def test_a_request_being_answered_is_never_cut() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_handler(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/slow", slow_handler)
    clock = FakeClock()
    running = await serve(app, "127.0.0.1", 0, shutdown_timeout=1.0, limits=LIMITS, clock=clock)
    try:
        assert running.guard is not None
        async with aiohttp.ClientSession() as http:
            call = asyncio.create_task(http.get(running.url + "/slow"))
            await entered.wait()
            clock.t = 1000.0
            assert running.guard.sweep() == 0
            release.set()
            async with await call as resp:
                assert (resp.status, await resp.text()) == (200, "done")
    finally:
        await running.close()


async def test_the_export_receiver_cuts_slow_clients_too() -> None:
    async with ExportReceiver() as receiver:
        runner = receiver._runner  # the receiver serves through _serving.serve
        assert runner is not None
        guard = connection_guard(runner.server)
        assert guard is not None
        clock = FakeClock()
        guard.clock = clock  # before any connection: every deadline on the fake clock
        port = int(receiver.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /ccrm-export/")
        await writer.drain()
        await _until(lambda: bool(runner.server and runner.server.connections))
        clock.t = 9.5
        assert guard.sweep() == 0
        clock.t = 10.0
        assert guard.sweep() == 1
        assert await _closed_by_server(reader)
        writer.close()


async def test_out_of_descriptors_is_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    app = web.Application()
    running = await serve(app, "127.0.0.1", 0, shutdown_timeout=1.0, limits=LIMITS, clock=clock)
    loop = asyncio.get_running_loop()
    context = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    try:
        with caplog.at_level(logging.WARNING, logger="ccrm_async.serving"):
            for step in range(300):  # 3 failures a second for 100 s
                clock.t = step / 3
                loop.call_exception_handler(context)
        lines = [r.getMessage() for r in caplog.records if r.name == "ccrm_async.serving"]
        assert len(lines) == 10  # at 0, 10, 20 ... 90 s
        assert lines[0].startswith("cannot accept connections: Too many open files (0 more")
        assert "(29 more such failures held back" in lines[1]
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await running.close()
    assert loop.get_exception_handler() is None  # handed back when the last server stops


async def test_at_the_open_file_limit_the_server_answers_again_once_descriptors_free_up(
    lookup: tuple[LookupServer, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = lookup
    host, port = "127.0.0.1", int(server.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    held: list[socket.socket] = []
    with caplog.at_level(logging.WARNING, logger="ccrm_async.serving"):
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 24, hard))
        try:
            while True:  # take every descriptor left, half of them the server's
                try:
                    client = socket.create_connection((host, port), timeout=5)
                except OSError as exc:
                    assert exc.errno in (errno.EMFILE, errno.ENFILE)
                    break
                held.append(client)
                await asyncio.sleep(0.01)  # the server accepts while it can
            await asyncio.sleep(0.3)  # connections wait in the backlog; accept() fails
        finally:
            for client in held:
                client.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        async with aiohttp.ClientSession() as http:
            assert await _ask(http, server) == 200  # asyncio retries accept() within 1 s
    lines = [r.getMessage() for r in caplog.records if r.name == "ccrm_async.serving"]
    assert len(lines) == 1, lines  # the fake clock never moves: once, however many failures
    assert lines[0].startswith("cannot accept connections:")
    assert not [r for r in caplog.records if r.name == "asyncio"]


async def test_an_application_started_elsewhere_is_refused() -> None:
    """Without its middleware the guard could not tell a busy connection from
    an idle one, and would cut requests being answered."""
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()  # freezes the app
    try:
        with pytest.raises(RuntimeError, match="no other runner has started"):
            await serve(app, "127.0.0.1", 0, shutdown_timeout=1.0)
    finally:
        await runner.cleanup()


async def test_a_closed_emulator_is_freed() -> None:
    """aiohttp caches handlers' middleware chains module-wide (1,024 entries):
    closing a server clears that cache, so a closed emulator and its data set
    are freed (a suite starting emulators one after another held gigabytes)."""
    async with CCRMEmulator(calls=10) as emu:
        async with CCRMClient(base_url=emu.url, token=emu.token) as crm:
            assert len([call async for call in crm.call_history("2024-01-01", "2024-01-31")])
        alive = weakref.ref(emu)
    del emu
    gc.collect()
    assert alive() is None
