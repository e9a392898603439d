"""The one place that talks HTTP for the API clients.

A :class:`Transport` owns one :class:`aiohttp.ClientSession` with one
:class:`aiohttp.TCPConnector` (bound to ``local_addr`` when given, so every
request leaves from the same egress IP) for the client's whole life. Every
request goes through :meth:`Transport.request`, which

1. waits for the client-wide :class:`RequestGate` (concurrency, shared
   rate-limit cool-down, optional requests-per-second cap);
2. sends the request once and reads the whole body;
3. maps the answer to a result or to an error from :mod:`ccrm_async.errors`
   (aiohttp's own exceptions are translated here and raised ``from None``, so
   the ``Authorization`` header in their ``request_info`` never reaches a
   traceback);
4. asks :func:`ccrm_async._core.retry.next_delay` whether and when to retry.

:meth:`Transport.stream` (export downloads) runs the same loop, with the body
handed to its caller while it arrives instead of read whole.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import aiohttp
import attrs
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from . import __version__
from ._core import responses, retry
from .config import RetryPolicy, Secret, Timeouts
from .errors import (
    CCRMError,
    ConfigurationError,
    EventLoopError,
    RateLimitError,
    ResponseError,
    TransportError,
)
from .events import EventCallback, RateLimitEvent, RequestEvent, RetryEvent, emit

__all__ = [
    "Clock",
    "PublicAddressResolver",
    "RequestCounters",
    "RequestGate",
    "StreamedResponse",
    "Transport",
]

log = logging.getLogger("ccrm_async")

T = TypeVar("T")

USER_AGENT = f"ccrm-async/{__version__}"


class Clock:
    """Monotonic time and sleeping; tests substitute a fake one."""

    def now(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """Seconds since the epoch, for times that outlive the process (an
        export job's stored deadline)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@attrs.define
class RequestCounters:
    """What happened to the requests of one operation (a pull, a call)."""

    requests: int = 0
    retries: int = 0
    rate_limit_pauses: int = 0


class ErrorMap(Protocol):
    def __call__(
        self,
        status: int,
        body: bytes,
        *,
        method: str | None = ...,
        path: str | None = ...,
        retry_after: float | None = ...,
    ) -> CCRMError | None: ...


class RequestGate:
    """Client-wide admission for requests.

    - At most ``limit`` requests in flight (starting at ``concurrency``).
    - After a rate-limit answer, *every* request waits until the shared
      cool-down ends; the limit is halved (once per cool-down, however many
      requests saw the 403) and held for ``ramp_hold`` seconds, then grows by
      one per streak of successes as long as the current limit, back up to
      ``concurrency``.
    - With ``max_rps``, request starts are spaced at least ``1 / max_rps``
      seconds apart, across the whole client.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        max_rps: float | None = None,
        ramp_hold: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {concurrency!r}")
        if max_rps is not None and max_rps <= 0:
            raise ConfigurationError(f"max_rps must be > 0, got {max_rps!r}")
        self.max_limit = concurrency
        self.limit = concurrency
        self.in_flight = 0
        self.peak_in_flight = 0
        self._clock = clock or Clock()
        self._ramp_hold = ramp_hold
        self._interval = 1.0 / max_rps if max_rps else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0
        self._hold_until = 0.0
        self._streak = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._woken = 0  # waiters woken that have not yet taken their slot

    @property
    def paused_until(self) -> float:
        return self._paused_until

    async def acquire(self) -> None:
        clock = self._clock
        woken = False
        while True:
            now = clock.now()
            if self._paused_until > now:
                await clock.sleep(self._paused_until - now)
                continue
            # Arrivals queue behind waiters; a woken waiter takes its slot.
            if self.in_flight < self.limit and (woken or not self._waiters):
                break
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._woken -= 1
                    self._wake()  # we were woken: hand the wake-up on
                raise
            self._woken -= 1
            woken = True
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        if self._interval:
            start = max(now, self._next_start)
            self._next_start = start + self._interval
            if start > now:
                try:
                    await clock.sleep(start - now)
                except asyncio.CancelledError:
                    self.release()
                    raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight - self._woken
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                free -= 1

    def on_success(self) -> None:
        if self.limit >= self.max_limit or self._clock.now() < self._hold_until:
            return
        self._streak += 1
        if self._streak >= self.limit:
            self.limit += 1
            self._streak = 0
            self._wake()

    def on_rate_limit(self, cooldown: float) -> None:
        now = self._clock.now()
        if now >= self._paused_until:  # halve once per cool-down, not once per 403
            self.limit = max(1, self.limit // 2)
        self._paused_until = max(self._paused_until, now + cooldown)
        self._hold_until = self._paused_until + self._ramp_hold
        self._streak = 0


class NonPublicAddressError(OSError):
    """:class:`PublicAddressResolver` refused an answer (a security refusal, not
    a name that does not resolve)."""


class PublicAddressResolver(AbstractResolver):
    """A resolver that refuses a host name resolving to any address that is not
    globally routable (loopback, private, link-local, shared, IPv4-mapped ...).

    It guards the default CCRM origin (``https://{account}.ccrm.pl``) against
    DNS rebinding: an answer that points the API's name at an internal service
    (a cloud metadata endpoint, say) fails before any connection is made, even
    when it mixes one public and one private address.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner  # aiohttp's default, made in the loop on first use

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = DefaultResolver()
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if not ipaddress.ip_address(result["host"]).is_global:
                raise NonPublicAddressError(f"{host} resolves to a non-public address; refused")
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _translate(exc: BaseException, method: str, path: str) -> TransportError:
    """An aiohttp/OS exception as a :class:`TransportError` with no secret in it."""
    sent = True
    if isinstance(exc, aiohttp.ClientConnectorError):
        sent = False
        reason = f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        sent = False
        reason = "timed out while connecting"
    elif isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        reason = "timed out waiting for the response"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        reason = "server disconnected"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        reason = "response body was cut off"
    elif isinstance(exc, aiohttp.ClientOSError):
        reason = f"connection error ({exc.strerror or type(exc).__name__})"
    else:
        reason = f"request failed ({type(exc).__name__})"
    error = TransportError(reason, method=method, path=path)
    error.request_sent = sent
    return error


def _unresolved_host(
    exc: BaseException, *, proxy: str | None, host_setting: str
) -> ConfigurationError | None:
    """A name that does not resolve is a setting to fix, not a fault to retry:
    a :class:`ConfigurationError` naming the host and the setting, else None."""
    if not isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(
        exc.os_error, NonPublicAddressError
    ):
        return None
    host = exc.host
    reason = exc.os_error.strerror or type(exc.os_error).__name__
    if proxy is not None and URL(proxy).host == host:
        setting = "the proxy (proxy=, --proxy or HTTPS_PROXY)"
    else:
        setting = host_setting
    return ConfigurationError(f"the host {host} does not resolve ({reason}): check {setting}")


class Transport:
    """One HTTP session for one API client; see the module docstring.

    ``concurrency`` (8) bounds requests in flight for the whole client;
    ``max_rps`` (none) caps request starts per second; ``local_addr`` binds
    every connection to that source IP; ``proxy`` routes every request;
    ``resolver`` replaces aiohttp's (see :class:`PublicAddressResolver`).
    ``on_event`` receives :mod:`ccrm_async.events` (attempts, retries,
    rate-limit pauses); ``trace_configs`` go to the ``ClientSession``.
    ``host_setting`` names, in the error for a host that does not resolve,
    the setting that chose the host.
    """

    def __init__(
        self,
        base_url: str | URL,
        token: Secret,
        *,
        concurrency: int = 8,
        max_rps: float | None = None,
        local_addr: str | None = None,
        proxy: str | None = None,
        timeouts: Timeouts | None = None,
        retry_policy: RetryPolicy | None = None,
        error_map: ErrorMap = responses.error_for_status,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        resolver: AbstractResolver | None = None,
        on_event: EventCallback | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        host_setting: str = "the account name or base_url",
    ) -> None:
        self.base_url = URL(str(base_url))
        if not self.base_url.is_absolute():
            raise ConfigurationError(f"base_url must be an absolute URL, got {str(base_url)!r}")
        self.on_event = on_event
        self._trace_configs = list(trace_configs) if trace_configs is not None else None
        self._host_setting = host_setting
        self._token = token
        self.concurrency = concurrency
        self.local_addr = local_addr
        self.proxy = proxy
        self.timeouts = timeouts or Timeouts()
        self.retry_policy = retry_policy or RetryPolicy()
        self._error_map = error_map
        self.clock = clock or Clock()
        self._rng = rng or random.Random()
        self.gate = RequestGate(
            concurrency,
            max_rps=max_rps,
            ramp_hold=self.retry_policy.ramp_hold,
            clock=self.clock,
        )
        self.quota = retry.RetryQuota(
            self.retry_policy.quota_capacity, self.retry_policy.quota_retry_cost
        )
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None  # bound on first use

    def __repr__(self) -> str:
        return f"Transport(base_url={str(self.base_url)!r}, concurrency={self.concurrency})"

    def _check_loop(self) -> None:
        """Bind the transport to the running loop on first use; raise
        :class:`EventLoopError` when a later use comes from another loop (the
        session, its connections and the gate's waiters belong to the first)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise EventLoopError(
                "this client was first used in another event loop; create the client "
                "inside the loop that uses it (one client per loop)"
            )

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, opened on first use inside the running loop."""
        if self._closed:
            raise RuntimeError("the client is closed")
        self._check_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency + 4,  # + room for downloads beside the gate
                local_addr=(self.local_addr, 0) if self.local_addr else None,
                ttl_dns_cache=300,
                resolver=self._resolver,
            )
            t = self.timeouts
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=t.total, connect=t.connect, sock_read=t.sock_read
                ),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                trust_env=False,
                trace_configs=self._trace_configs,
            )
            # aiohttp silently re-sends an idempotent request once when a pooled
            # connection turns out dead; our retry policy (and its counters, and a
            # DELETE that must not run twice unseen) should own every attempt.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    @property
    def connector(self) -> aiohttp.BaseConnector | None:
        return self._session.connector if self._session is not None else None

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header; only ever sent to :attr:`base_url`'s origin."""
        return {"Authorization": f"Bearer {self._token.reveal()}"}

    async def close(self) -> None:
        if self._session is not None:
            self._check_loop()  # aiohttp can close a session only in its own loop
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._resolver is not None:
            await self._resolver.close()

    async def request(
        self,
        method: str,
        path: str,
        parse: Callable[[bytes], T],
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool = True,
        counters: RequestCounters | None = None,
        route: str | None = None,
    ) -> T:
        """Send a request with retries and return ``parse(body)`` of the 2xx answer.

        *parse* runs outside the concurrency slot, so a page is decoded while
        other requests use the network; a transient :class:`ResponseError` it
        raises (a body that is not JSON) is retried like a 5xx. With
        ``idempotent=False`` the request is retried only when it cannot have
        reached the server (connection refused, rate-limit 403); otherwise the
        error is raised with ``ambiguous`` set, for the caller to reconcile.

        *route* names the request in logs and errors instead of *path* when the
        path carries data that must not be logged (an external id, say).
        """
        self._check_loop()
        url = self.base_url.join(URL(path))
        body = orjson.dumps(json) if json is not None else None
        headers = self.auth_headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        shown = route or path

        async def exchange() -> tuple[int, str | None, bytes]:
            return await self._send(method, url, params, body, headers)

        def finish(status: int, payload: bytes, retry_after: float | None) -> T:
            mapped = self._error_map(
                status, payload, method=method, path=shown, retry_after=retry_after
            )
            if mapped is not None:
                raise mapped
            return parse(payload)

        return await self._retrying(
            method, shown, exchange, finish, idempotent=idempotent, counters=counters
        )

    async def retry_later(
        self, error: CCRMError, *, path: str, counters: RequestCounters | None = None
    ) -> None:
        """For an answer found bad after :meth:`request` returned it (a body
        parsed apart from fetching, that turned out cut off): wait as the retry
        policy says before asking again, or raise *error* when it allows no
        retry (a non-transient error, no retries configured, the shared retry
        quota spent)."""
        if error.method is None:
            error.method, error.path = "GET", path
        delay = retry.next_delay(
            self.retry_policy,
            error=error,
            attempt=1,
            elapsed=0.0,
            rng=self._rng,
            retry_after=None,
        )
        if delay is None or not self.quota.try_spend():
            raise error
        if counters is not None:
            counters.retries += 1
        log.debug("GET %s: body cut off, retry in %.2fs (%s)", path, delay, error)
        await self.clock.sleep(delay)

    async def _retrying(
        self,
        method: str,
        shown: str,
        exchange: Callable[[], Awaitable[tuple[int, str | None, bytes]]],
        finish: Callable[[int, bytes, float | None], T],
        *,
        idempotent: bool,
        counters: RequestCounters | None,
    ) -> T:
        """The retry loop of every request: *exchange* runs once per attempt
        inside a gate slot and returns ``(status, Retry-After, body)``;
        *finish* runs outside the slot and returns the result or raises the
        :class:`CCRMError` the answer stands for (retried per the policy)."""
        policy = self.retry_policy
        clock = self.clock
        started = clock.now()
        attempt = 0
        while True:
            attempt += 1
            if counters is not None:
                counters.requests += 1
            error: CCRMError
            retry_after: float | None = None
            status: int | None = None
            payload = b""
            await self.gate.acquire()
            sent_at = clock.now()
            try:
                status, raw_retry_after, payload = await exchange()
            except CCRMError as exc:
                error = exc
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                unresolved = _unresolved_host(
                    exc, proxy=self.proxy, host_setting=self._host_setting
                )
                if unresolved is not None:
                    self._attempt_event(method, shown, None, attempt, sent_at, unresolved)
                    raise unresolved from None
                error = _translate(exc, method, shown)
            else:
                retry_after = retry.parse_retry_after(raw_retry_after)
                log.debug("%s %s -> %d (attempt %d)", method, shown, status, attempt)
            finally:
                self.gate.release()
            if status is not None:
                try:
                    result = finish(status, payload, retry_after)
                except CCRMError as exc:
                    error = exc
                else:
                    self._attempt_event(method, shown, status, attempt, sent_at, None)
                    self.gate.on_success()
                    self.quota.refund()
                    return result
            self._attempt_event(method, shown, status, attempt, sent_at, error)
            if error.method is None:
                error.method, error.path = method, shown
            if isinstance(error, RateLimitError):
                if counters is not None:
                    counters.rate_limit_pauses += 1
                cooldown = max(policy.rate_limit_cooldown, retry_after or 0.0)
                self.gate.on_rate_limit(cooldown)
                log.info(
                    "%s %s: rate limited; every request waits %.2fs, then at most %d at once",
                    method,
                    shown,
                    cooldown,
                    self.gate.limit,
                )
                emit(self.on_event, RateLimitEvent(method, shown, cooldown, self.gate.limit))
            if not idempotent and _may_have_reached_server(error):
                error.ambiguous = True
                raise error
            delay = retry.next_delay(
                policy,
                error=error,
                attempt=attempt,
                elapsed=clock.now() - started,
                rng=self._rng,
                retry_after=retry_after,
            )
            if delay is None or not self.quota.try_spend():
                log.debug("%s %s: giving up after %d attempt(s): %s", method, shown, attempt, error)
                raise error
            if counters is not None:
                counters.retries += 1
            reason = _reason(error)
            log.info(
                "%s %s: attempt %d failed (%s); retrying in %.2fs",
                method,
                shown,
                attempt,
                reason,
                delay,
            )
            emit(self.on_event, RetryEvent(method, shown, attempt, delay, reason))
            await clock.sleep(delay)

    def _attempt_event(
        self,
        method: str,
        route: str,
        status: int | None,
        attempt: int,
        sent_at: float,
        error: CCRMError | None,
    ) -> None:
        if self.on_event is not None:
            elapsed = self.clock.now() - sent_at
            name = type(error).__name__ if error is not None else None
            emit(self.on_event, RequestEvent(method, route, status, attempt, elapsed, name))

    async def _send(
        self,
        method: str,
        url: URL,
        params: Mapping[str, str] | None,
        body: bytes | None,
        headers: dict[str, str],
    ) -> tuple[int, str | None, bytes]:
        async with self.session.request(
            method,
            url,
            params=params,
            data=body,
            headers=headers,
            proxy=self.proxy,
            allow_redirects=False,
        ) as resp:
            payload = await resp.read()
            return resp.status, resp.headers.get("Retry-After"), payload

    # -- streamed responses (export downloads) -----------------------------------

    async def stream(
        self,
        url: str | URL,
        handle: Callable[[StreamedResponse], Awaitable[T]],
        *,
        route: str,
        accept: Collection[int] = (200,),
        headers: Callable[[], Mapping[str, str]] | None = None,
        counters: RequestCounters | None = None,
    ) -> T:
        """``GET`` *url* and return ``await handle(response)`` while it streams.

        The request takes the same path as :meth:`request`: the gate (the slot
        is held while *handle* reads, so a download counts as a request in
        flight), the retry policy, the retry quota, *counters* and the error
        translation. *url* must be on :attr:`base_url`'s origin (the
        ``Authorization`` header goes with it); redirects are not followed.

        A status in *accept* is handed to *handle*; any other status is mapped
        like a :meth:`request` answer (404 :class:`NotFoundError`, 5xx
        :class:`ServerError` retried, ...). A :class:`CCRMError` raised by
        *handle* is retried when it is retryable; a body cut off while *handle*
        reads is a transient :class:`ResponseError` (retried). There is no
        total timeout: a stalled body fails after ``timeouts.sock_read``
        seconds of silence. *route* names the request in logs and errors;
        *headers* is called before each attempt (a resumed download asks for
        the rest of the file with ``Range``).
        """
        self._check_loop()
        target = URL(str(url))
        if target.origin() != self.base_url.origin():
            raise ValueError("stream() only requests the API's own origin")
        t = self.timeouts
        timeout = aiohttp.ClientTimeout(total=None, connect=t.connect, sock_read=t.sock_read)
        handled: list[T] = []

        async def exchange() -> tuple[int, str | None, bytes]:
            handled.clear()
            sent = {"Accept": "*/*", "Accept-Encoding": "identity"}
            sent.update(headers() if headers is not None else {})
            sent.update(self.auth_headers())
            async with self.session.get(
                target, headers=sent, proxy=self.proxy, allow_redirects=False, timeout=timeout
            ) as resp:
                if resp.status in accept:
                    handled.append(await handle(StreamedResponse(resp)))
                    return resp.status, None, b""
                return resp.status, resp.headers.get("Retry-After"), await resp.content.read(4096)

        def finish(status: int, payload: bytes, retry_after: float | None) -> T:
            if handled:
                return handled.pop()
            mapped = self._error_map(
                status, payload, method="GET", path=route, retry_after=retry_after
            )
            raise mapped or ResponseError(f"unexpected HTTP status {status}", status=status)

        return await self._retrying(
            "GET", route, exchange, finish, idempotent=True, counters=counters
        )


class StreamedResponse:
    """An answer whose body is read as it arrives (see :meth:`Transport.stream`)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        self.content_length = response.content_length

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at most *size* bytes. A body cut off before
        its end raises a transient :class:`ResponseError` (retried)."""
        try:
            async for chunk in self._response.content.iter_chunked(size):
                yield chunk
        except aiohttp.ClientPayloadError:
            error = ResponseError("response body was cut off")
            error.transient = True
            raise error from None


def _reason(error: CCRMError) -> str:
    """Why an attempt failed, in a few words with no data from the answer:
    ``HTTP 503 (ServerError)``, ``server disconnected``."""
    if error.status is not None:
        return f"HTTP {error.status} ({type(error).__name__})"
    if isinstance(error, TransportError):
        return error.message  # our own words, see _translate
    return type(error).__name__


def _may_have_reached_server(error: CCRMError) -> bool:
    if isinstance(error, RateLimitError):
        return False
    if isinstance(error, TransportError):
        return error.request_sent
    return retry.is_retryable(error)
