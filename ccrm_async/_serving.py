"""Serving an aiohttp application inside the running event loop.

The library runs four small servers: the CCRM and intum emulators, the export
callback receiver and the Thulium lookup. They start and stop the same way,
written once here: no access log (request lines carry tokens and phone
numbers), no signal handlers of aiohttp's own (the host application owns
them), and a bounded grace period for open requests on close.

Every server also holds under abuse (:class:`ConnectionLimits`, RELIABILITY
42/43):

- **Slow clients.** A connection must send its first complete request line
  and headers within ``header_timeout`` (10 s) of opening, and each later one
  within ``idle_timeout`` (15 s) of the previous answer; otherwise it is
  closed. A request being answered is never cut. aiohttp has no deadline of
  its own for a request head, so a guard checks every ``sweep_interval``
  (0.5 s): a connection is closed at most that much after its deadline. The
  guard reads an injected clock, so tests drive it without waiting.
- **Out of file descriptors.** When ``accept()`` fails for want of
  descriptors, asyncio stops accepting for a second and tries again (so the
  server answers as soon as descriptors free up), but it reports each failure
  with a traceback through the loop's exception handler. While a server runs,
  those reports are taken over: one WARNING on ``ccrm_async.serving`` at most
  every ``resource_log_interval`` (10 s), with the count of the ones held
  back; every other report goes to the handler that was there before.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeVar

import attrs
from aiohttp import web, web_app
from aiohttp.web_protocol import RequestHandler

__all__ = [
    "AppServer",
    "ConnectionLimits",
    "Running",
    "ScrubbedServerLog",
    "ServedAsContext",
    "connection_guard",
    "printable",
    "serve",
    "signal_handlers",
]

log = logging.getLogger("ccrm_async.serving")

#: Hosts that mean "every interface", and the address to show for them.
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104


@attrs.frozen(kw_only=True)
class ConnectionLimits:
    """How long a server waits for a client, in seconds (see the module docstring).

    - *header_timeout* (10): from opening to the first complete request head;
    - *idle_timeout* (15): from an answer to the next complete request head
      on a kept-alive connection;
    - *sweep_interval* (0.5): how often the deadlines are checked;
    - *resource_log_interval* (10): at most one log line this often while
      ``accept()`` runs out of file descriptors.
    """

    header_timeout: float = 10.0
    idle_timeout: float = 15.0
    sweep_interval: float = 0.5
    resource_log_interval: float = 10.0

    def __attrs_post_init__(self) -> None:
        for name in ("header_timeout", "idle_timeout", "sweep_interval", "resource_log_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0 seconds")


class _ConnectionGuard:
    """Closes connections that miss their request-head deadline.

    Each connection has a deadline while no request of it is being answered:
    its opening plus ``header_timeout``, later its last answer plus
    ``idle_timeout``. The server's ``connection_made``/``connection_lost``
    tell it about connections; a middleware tells it when a request starts and
    ends. :meth:`sweep` closes the overdue ones.
    """

    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.closed = 0
        self._deadline: dict[RequestHandler, float] = {}  # idle connections only
        self._busy: dict[RequestHandler, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._resource_log: _ResourceLog | None = None
        self._stopped = False

    def attach(self, server: web.Server) -> None:
        made, lost = server.connection_made, server.connection_lost
        _SERVER_GUARDS[server] = self

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            _GUARDS[handler] = self
            self._deadline[handler] = self.clock() + self.limits.header_timeout

        def connection_lost(handler: RequestHandler, exc: BaseException | None) -> None:
            self._deadline.pop(handler, None)
            self._busy.pop(handler, None)
            _GUARDS.pop(handler, None)
            lost(handler, exc)

        # The server calls these for each connection; wrapping the instance's
        # methods is the one place that sees a connection open.
        setattr(server, "connection_made", connection_made)  # noqa: B010
        setattr(server, "connection_lost", connection_lost)  # noqa: B010

    def request_started(self, handler: RequestHandler) -> None:
        self._busy[handler] = self._busy.get(handler, 0) + 1
        self._deadline.pop(handler, None)

    def request_ended(self, handler: RequestHandler) -> None:
        left = self._busy.pop(handler, 1) - 1
        if left:
            self._busy[handler] = left
        elif handler.transport is not None:  # still connected: idle from now
            self._deadline[handler] = self.clock() + self.limits.idle_timeout

    def sweep(self) -> int:
        """Close every idle connection past its deadline; returns how many."""
        now = self.clock()
        overdue = [h for h, deadline in self._deadline.items() if now >= deadline]
        for handler in overdue:
            del self._deadline[handler]
            transport = handler.transport
            handler.force_close()
            if transport is not None:
                transport.close()
        self.closed += len(overdue)
        return len(overdue)

    def start(self, runner: web.BaseRunner, resource_log: _ResourceLog) -> None:
        """Sweep every ``sweep_interval`` until the runner is cleaned up
        (whoever does it), then hand the loop's exception handler back. A timer,
        not a task: nothing of the guard is left for a caller to cancel."""
        loop = asyncio.get_running_loop()

        def tick() -> None:
            if runner.server is None:  # cleaned up by whoever owns the runner
                self.stop()
                return
            self.sweep()
            self._timer = loop.call_later(self.limits.sweep_interval, tick)

        self._resource_log = resource_log
        self._timer = loop.call_later(self.limits.sweep_interval, tick)

    def stop(self) -> None:
        """Stop sweeping now (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self._resource_log is not None:
            _remove_resource_log(self._resource_log)


#: The guard of each server, for :func:`connection_guard`.
_SERVER_GUARDS: weakref.WeakKeyDictionary[web.Server, _ConnectionGuard] = (
    weakref.WeakKeyDictionary()
)


def connection_guard(server: web.Server | None) -> _ConnectionGuard | None:
    """The slow-client guard of a server started by :func:`serve` (tests use it
    to drive the deadlines: its ``clock``, ``limits`` and ``sweep()``)."""
    return None if server is None else _SERVER_GUARDS.get(server)


#: The guard of each open connection, for the middleware (RequestHandler has
#: slots and no weak references: entries go when the connection is lost).
_GUARDS: dict[RequestHandler, _ConnectionGuard] = {}


@web.middleware
async def _track_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    protocol = request.protocol
    guard = _GUARDS.get(protocol) if isinstance(protocol, RequestHandler) else None
    if guard is None:
        return await handler(request)
    assert isinstance(protocol, RequestHandler)
    guard.request_started(protocol)
    try:
        return await handler(request)
    finally:
        guard.request_ended(protocol)


_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _ResourceLog:
    """The loop's exception handler while servers run: ``accept()`` failing for
    want of descriptors is logged at most once per interval; anything else
    goes to the previous handler. Installed once per loop, by reference count."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        clock: Callable[[], float],
    ) -> None:
        self.loop = loop
        self.interval = interval
        self.clock = clock
        self.previous = loop.get_exception_handler()
        self.users = 0
        self.held_back = 0
        self.logged_at: float | None = None

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS:
            now = self.clock()
            if self.logged_at is not None and now - self.logged_at < self.interval:
                self.held_back += 1
                return
            self.logged_at = now
            log.warning(
                "cannot accept connections: %s (%d more such failures held back; "
                "accepting again once descriptors free up)",
                exc.strerror or type(exc).__name__,
                self.held_back,
            )
            self.held_back = 0
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


_RESOURCE_LOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ResourceLog] = (
    weakref.WeakKeyDictionary()
)


def _install_resource_log(limits: ConnectionLimits, clock: Callable[[], float]) -> _ResourceLog:
    loop = asyncio.get_running_loop()
    handler = _RESOURCE_LOGS.get(loop)
    if handler is None or loop.get_exception_handler() is not handler:
        handler = _ResourceLog(loop, limits.resource_log_interval, clock)
        _RESOURCE_LOGS[loop] = handler
        loop.set_exception_handler(handler)
    handler.users += 1
    return handler


def _remove_resource_log(handler: _ResourceLog) -> None:
    handler.users -= 1
    if handler.users == 0 and handler.loop.get_exception_handler() is handler:
        handler.loop.set_exception_handler(handler.previous)
        _RESOURCE_LOGS.pop(handler.loop, None)


@attrs.frozen
class Running:
    """A started application: its runner and site, the URL a local client
    reaches it at, and the addresses it really listens on."""

    runner: web.AppRunner
    site: web.TCPSite
    url: str
    listening: tuple[str, ...] = ()
    guard: _ConnectionGuard | None = None

    @property
    def open_connections(self) -> int:
        """Client connections held open now."""
        server = self.runner.server
        return len(server.connections) if server is not None else 0

    async def close(self) -> None:
        """Stop listening, close the connections and stop the guard."""
        try:
            await self.runner.cleanup()
        finally:
            if self.guard is not None:
                self.guard.stop()
            _forget_middleware_chains()


def _forget_middleware_chains() -> None:
    """aiohttp keeps the middleware chain of every request handler in a
    module-wide cache of 1,024 entries, keyed by the handler: a closed
    server's handlers, and all they reach (an emulator's whole data set),
    stay alive until 1,024 newer entries push them out. A test suite starting
    emulators one after another held gigabytes that way. Cleared when a
    server closes: it is a cache, only a little speed is lost."""
    cache = getattr(web_app, "_cached_build_middleware", None)
    clear = getattr(cache, "cache_clear", None)
    if clear is not None:
        clear()


def _http_url(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float,
    logger: logging.Logger | Any = None,
    handler_cancellation: bool = False,
    limits: ConnectionLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Running:
    """Serve *app* on *host*:*port* (0: a free port) until ``Running.close()``.

    ``url`` names the bound port, and for a wildcard host (``0.0.0.0``, ``::``)
    the loopback address, which is where a local client reaches it;
    ``listening`` has the real bound addresses as URLs. *limits* (the defaults
    of :class:`ConnectionLimits`) bound slow clients, read from *clock*
    (seconds).
    """
    limits = limits or ConnectionLimits()
    if _track_requests not in app.middlewares:
        if app.frozen:
            # Without the middleware every request would look idle and be cut.
            raise RuntimeError(
                "serve() needs an application no other runner has started "
                "(it adds a middleware that tells the slow-client guard about requests)"
            )
        app.middlewares.append(_track_requests)  # before the runner freezes the app
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
    assert runner.server is not None
    guard = _ConnectionGuard(limits, clock)
    guard.attach(runner.server)
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    guard.start(runner, _install_resource_log(limits, clock))
    bound_port = runner.addresses[0][1]
    listening = tuple(_http_url(address[0], address[1]) for address in runner.addresses)
    return Running(
        runner=runner,
        site=site,
        url=_http_url(_WILDCARDS.get(host, host), bound_port),
        listening=listening,
        guard=guard,
    )


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
            await running.close()

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


def printable(text: str | None) -> str:
    """*text* as it may go into a log line: non-printable characters (CR, LF,
    controls) escaped, so no input can forge or split a line."""
    if text is None:
        return "-"
    return text if text.isprintable() else repr(text)


class ScrubbedServerLog:
    """A stand-in for aiohttp's server logger that never logs request data.

    aiohttp logs a malformed request with ``logger.exception("Error handling
    request from %s", remote, exc_info=exc)``, and the exception's text holds
    the raw request line. This keeps aiohttp's own message (the peer address
    only), adds the exception's *type*, drops the traceback, and logs it on
    *name* (``ccrm_async.thulium.http`` for the lookup,
    ``ccrm_async.exports.http`` for the export receiver). Give it to
    :func:`serve` or ``web.AppRunner(..., logger=...)``.
    """

    def __init__(self, name: str = "ccrm_async.thulium.http") -> None:
        self._log = logging.getLogger(name)

    def _emit(self, level: int, msg: object, *args: object, **kw: Any) -> None:
        if not self._log.isEnabledFor(level):
            return
        exc = kw.get("exc_info")
        if exc is True:
            exc = sys.exc_info()[1]
        elif isinstance(exc, tuple):
            exc = exc[1]
        text = str(msg)
        if args:
            try:
                text %= tuple(printable(str(a)) for a in args)
            except (TypeError, ValueError):
                text += " " + " ".join(printable(str(a)) for a in args)
        if isinstance(exc, BaseException):
            text += f" ({type(exc).__name__})"
        self._log.log(level, "%s", printable(text))

    def debug(self, msg: object, *args: object, **kw: Any) -> None:
        self._emit(logging.DEBUG, msg, *args, **kw)

    def info(self, msg: object, *args: object, **kw: Any) -> None:
        self._emit(logging.INFO, msg, *args, **kw)

    def warning(self, msg: object, *args: object, **kw: Any) -> None:
        self._emit(logging.WARNING, msg, *args, **kw)

    def error(self, msg: object, *args: object, **kw: Any) -> None:
        self._emit(logging.ERROR, msg, *args, **kw)

    def exception(self, msg: object, *args: object, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._emit(logging.ERROR, msg, *args, **kw)
