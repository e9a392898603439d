"""Serving an aiohttp application inside the running event loop.

The library runs four small servers: the CCRM and intum emulators, the export
callback receiver and the Thulium lookup. They start and stop the same way,
written once here: no access log (request lines carry tokens and phone
numbers), no signal handlers of aiohttp's own (the host application owns
them), and a bounded grace period for open requests on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeVar

import attrs
from aiohttp import web

__all__ = ["AppServer", "Running", "ServedAsContext", "serve", "signal_handlers"]

#: Hosts that mean "every interface", and the address to show for them.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


@attrs.frozen
class Running:
    """A started application: its runner and site, and the URL it answers at."""

    runner: web.AppRunner
    site: web.TCPSite
    url: str

    @property
    def open_connections(self) -> int:
        """Client connections held open now."""
        server = self.runner.server
        return len(server.connections) if server is not None else 0


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float,
    logger: logging.Logger | Any = None,
    handler_cancellation: bool = False,
) -> Running:
    """Serve *app* on *host*:*port* (0: a free port) until ``runner.cleanup()``.

    The URL names the bound port, and for a wildcard host (``0.0.0.0``, ``::``)
    the loopback address, which is where a local client reaches it.
    """
    options: dict[str, Any] = {} if logger is None else {"logger": logger}
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        handler_cancellation=handler_cancellation,
        shutdown_timeout=shutdown_timeout,
        **options,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    shown = _WILDCARDS.get(host, host)
    shown = f"[{shown}]" if ":" in shown else shown
    return Running(runner=runner, site=site, url=f"http://{shown}:{bound_port}")


class _Startable(Protocol):
    async def start(self) -> object: ...
    async def close(self) -> None: ...


_S = TypeVar("_S", bound=_Startable)


class ServedAsContext:
    """``async with`` for a class with ``start()`` and ``close()``."""

    async def __aenter__(self: _S) -> _S:
        await self.start()
        return self

    async def __aexit__(
        self: _Startable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AppServer(ServedAsContext):
    """A fake service on a real socket: subclasses build :attr:`app` in their
    ``__init__`` (calling this one's first)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.url = ""
        self._running: Running | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on *host*:*port* (0: a free port); returns the base URL."""
        self._running = await serve(
            self.app, host, port, shutdown_timeout=0.5, handler_cancellation=True
        )
        self.url = self._running.url
        return self.url

    async def close(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            await running.runner.cleanup()

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open now."""
        return self._running.open_connections if self._running is not None else 0


@contextlib.contextmanager
def signal_handlers(callback: Callable[[], object], *signals: signal.Signals) -> Iterator[None]:
    """Call *callback* on each of *signals* while inside, then restore the default.

    Where the running loop cannot take signal handlers (off the main thread,
    or a platform without them) the signal keeps its default action.
    """
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
