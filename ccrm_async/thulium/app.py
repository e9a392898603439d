"""The lookup endpoint Thulium calls: ``GET <path>?phone_number=...`` (seed 003).

How one request is answered, in order (each step's status in brackets):

1. Access control, when configured (:class:`~ccrm_async.thulium.AccessControl`):
   IP allow-list and path token [403], Basic credentials [401]. Every
   configured check runs, secrets compared in constant time, and a refused
   request is never looked up.
2. The ``phone_number`` parameter, read from the raw query string
   (:func:`~ccrm_async.thulium.query.phone_parameter`) and normalised
   (:func:`~ccrm_async.thulium.phones.normalize_phone`) [400: missing,
   repeated, longer than 32 characters, not a phone number].
3. The per-source limit of distinct numbers per minute
   (:class:`~ccrm_async.thulium.DistinctNumberLimiter`) [429 with
   ``Retry-After``].
4. The lookup in the :class:`~ccrm_async.thulium.ContactDirectory` [404 when
   nobody has the number], and the contact mapped to Thulium's fields under the
   :class:`~ccrm_async.thulium.FieldPolicy` [200].

Every answer is JSON with ``Content-Type: application/json;charset=utf-8``
exactly (errors are ``{"error": "..."}``), and ``Cache-Control: no-store``.
Nothing answers 5xx: an unexpected failure (a broken directory file, say) is
logged by its type only and answered with ``fallback_status`` (404: Thulium
then shows an unknown caller and the call goes on). Nothing is cached, so a
failure is never remembered as "not found".

Logs: one line per request on the ``ccrm_async.thulium.lookup`` logger (INFO)
with the number masked to its last 3 digits, the peer address, the status
and the time taken; never the query string, the path (it may hold the
token), a header, or raw input. aiohttp logs two things of its own that
would leak the full number: its access log prints the query string, and its
server log prints the raw request line in the traceback of a malformed
request. :class:`LookupServer` turns the first off and sends the second
through :class:`ScrubbedServerLog` (the exception's type only); when you
serve the app yourself, do the same:
``web.AppRunner(app, access_log=None, logger=ScrubbedServerLog())``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson
from aiohttp import web

from .._serving import (
    ConnectionLimits,
    Running,
    ScrubbedServerLog,
    ServedAsContext,
    printable,
    serve,
)
from .access import AccessControl, DistinctNumberLimiter, IPNetwork
from .directory import ContactDirectory
from .fields import DEFAULT_FIELDS, FieldPolicy, thulium_record
from .metrics import LookupMetrics
from .openapi import CONTENT_TYPE, DEFAULT_PATH, METRICS_PATH
from .phones import PhoneNumberError, mask_phone, normalize_phone
from .query import QueryError, phone_parameter

__all__ = [
    "LOOKUP_SERVICE",
    "LookupServer",
    "LookupService",
    "ScrubbedServerLog",
    "create_lookup_app",
]

log = logging.getLogger("ccrm_async.thulium.lookup")

_HEADERS = {
    "Content-Type": CONTENT_TYPE,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_FALLBACK_STATUSES = frozenset({200, 404})


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(payload), headers={**_HEADERS, **(headers or {})}
    )


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(status, {"error": message}, headers)


def _check_path(path: str) -> str:
    if not path.startswith("/") or "{" in path or "}" in path or "?" in path:
        raise ValueError(f"path must start with '/' and be a plain path, got {path!r}")
    return path


class LookupService:
    """The endpoint's handler and state; :func:`create_lookup_app` builds one.

    ``routes()`` gives its routes, for adding to an application of your own
    (next to an :class:`~ccrm_async.exports.ExportReceiver`, say). ``counts``
    holds how many requests got each status.
    """

    def __init__(
        self,
        directory: ContactDirectory,
        *,
        path: str = DEFAULT_PATH,
        policy: FieldPolicy | None = None,
        access: AccessControl | None = None,
        limiter: DistinctNumberLimiter | None = None,
        fallback_status: int = 404,
        clock: Callable[[], float] = time.monotonic,
        metrics: LookupMetrics | None = None,
    ) -> None:
        if fallback_status not in _FALLBACK_STATUSES:
            raise ValueError(f"fallback_status must be one of {sorted(_FALLBACK_STATUSES)}")
        self.directory = directory
        self.path = _check_path(path)
        if metrics is not None and self.path == METRICS_PATH:
            raise ValueError(f"the lookup cannot be at {METRICS_PATH} when metrics are served")
        self.metrics = metrics
        self.policy = policy or FieldPolicy()
        self.access = access or AccessControl()
        self.limiter = limiter
        self.fallback_status = fallback_status
        self._clock = clock
        self.counts: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"LookupService({self.path!r}, {self.access!r})"

    def routes(self) -> list[web.RouteDef]:
        """``GET`` (and ``HEAD``) on the path, and on ``/{token}{path}`` when a
        path token is configured (the plain path then answers 403); the same
        for ``/metrics`` when metrics are on."""
        routes = [web.get(self.path, self.handle)]
        if self.metrics is not None:
            routes.append(web.get(METRICS_PATH, self.handle_metrics))
        if self.access.path_token is not None:
            routes.append(web.get("/{token}" + self.path, self.handle))
            if self.metrics is not None:
                routes.append(web.get("/{token}" + METRICS_PATH, self.handle_metrics))
        return routes

    def _denied(self, request: web.Request) -> web.Response | None:
        denied = self.access.decide(
            request.remote, request.headers.get("Authorization"), request.match_info.get("token")
        )
        if denied == 401:
            challenge = {"WWW-Authenticate": 'Basic realm="thulium", charset="UTF-8"'}
            return _error(401, "authentication required", challenge)
        if denied is not None:
            return _error(denied, "forbidden")
        return None

    async def handle_metrics(self, request: web.Request) -> web.Response:
        """The Prometheus text exposition, behind the lookup's access control."""
        assert self.metrics is not None
        denied = self._denied(request)
        if denied is not None:
            return denied
        body, content_type = self.metrics.render()
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one lookup (see the module docstring); never raises, never 5xx."""
        started = self._clock()
        masked = "-"
        failed = False
        try:
            response, masked = self._answer(request)
        except Exception as exc:  # the promise: no 5xx, whatever happens
            log.error("lookup failed (%s); answered %d", type(exc).__name__, self.fallback_status)
            response = self._fallback()
            failed = True
        self.counts[response.status] = self.counts.get(response.status, 0) + 1
        if self.metrics is not None:
            self.metrics.observe(response.status, self._clock() - started, failed=failed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "lookup %s from %s: %d in %.1f ms",
                masked,
                printable(request.remote),
                response.status,
                (self._clock() - started) * 1000,
            )
        return response

    def _fallback(self) -> web.Response:
        if self.fallback_status == 200:
            return _json(200, {})
        return _error(404, "not found")  # the same answer as an unknown number

    def _answer(self, request: web.Request) -> tuple[web.Response, str]:
        denied = self._denied(request)
        if denied is not None:
            return denied, "-"
        try:
            key = normalize_phone(phone_parameter(request.rel_url.raw_query_string))
        except (QueryError, PhoneNumberError) as exc:
            return _error(400, exc.message), "invalid"
        masked = mask_phone(key)
        limiter = self.limiter
        if limiter is not None:
            source = request.remote or "-"
            now = self._clock()
            if not limiter.allow(source, key, now):
                wait = {"Retry-After": str(limiter.retry_after(source, now))}
                return _error(429, "too many distinct numbers; try later", wait), masked
        contact = self.directory.lookup_key(key)
        if contact is None:
            return _error(404, "not found"), masked
        record = thulium_record(
            contact, custom_field_names=self.directory.custom_field_names, policy=self.policy
        )
        return _json(200, record), masked


#: Where :func:`create_lookup_app` keeps its :class:`LookupService` in the app.
LOOKUP_SERVICE = web.AppKey("thulium_lookup", LookupService)


def create_lookup_app(
    directory: ContactDirectory,
    *,
    path: str = DEFAULT_PATH,
    fields: Collection[str] = DEFAULT_FIELDS,
    expose_pesel: bool = False,
    expose_birthdate: bool = False,
    expose_id_document: bool = False,
    custom_fields: Collection[str] | None = None,
    allow_ips: Collection[str | IPNetwork] | None = None,
    basic_auth: tuple[str, str] | None = None,
    path_token: str | None = None,
    max_numbers_per_minute: int | None = 600,
    fallback_status: int = 404,
    clock: Callable[[], float] = time.monotonic,
    metrics: bool = False,
) -> web.Application:
    """An :class:`aiohttp.web.Application` answering Thulium's lookups from *directory*.

    Serve it, or mount it with ``app.add_subapp("/thulium", lookup_app)``.

    - *path* (``"/customers.json"``): the endpoint's path;
    - *fields* (:data:`~ccrm_async.thulium.DEFAULT_FIELDS`): the allow-list of
      answer keys; *expose_pesel*, *expose_birthdate*, *expose_id_document*
      (all False) and *custom_fields* (names or uuids; None: all): see
      :class:`~ccrm_async.thulium.FieldPolicy`;
    - *allow_ips* (None: any), *basic_auth* (``(user, password)``), *path_token*
      (the endpoint moves to ``/<token><path>``): see
      :class:`~ccrm_async.thulium.AccessControl`;
    - *max_numbers_per_minute* (600; None: no limit): distinct numbers one peer
      address may ask for in a sliding 60 s window, else 429;
    - *fallback_status* (404, or 200 with ``{}``): the answer when a lookup
      fails unexpectedly (both are in the OpenAPI description);
    - *clock* (``time.monotonic``): seconds, for the limit and the timings;
    - *metrics* (False): serve Prometheus metrics at ``/metrics`` (and
      ``/<token>/metrics``), behind the same access control; needs the extra
      ``ccrm-async[metrics]`` (:class:`ImportError` naming it otherwise). See
      :mod:`~ccrm_async.thulium.metrics`.
    """
    policy = FieldPolicy(
        fields=frozenset(fields),
        expose_pesel=expose_pesel,
        expose_birthdate=expose_birthdate,
        expose_id_document=expose_id_document,
        custom_fields=custom_fields,
    )
    user, password = basic_auth if basic_auth is not None else (None, None)
    access = AccessControl(
        allow_ips=allow_ips,  # type: ignore[arg-type]  # the converter parses strings
        basic_user=user,
        basic_password=password,
        path_token=path_token,
    )
    limiter = (
        DistinctNumberLimiter(max_numbers_per_minute, 60.0)
        if max_numbers_per_minute is not None
        else None
    )
    service = LookupService(
        directory,
        path=path,
        policy=policy,
        access=access,
        limiter=limiter,
        fallback_status=fallback_status,
        clock=clock,
        metrics=LookupMetrics(directory) if metrics else None,
    )
    app = web.Application()
    app[LOOKUP_SERVICE] = service
    app.add_routes(service.routes())
    return app


class LookupServer(ServedAsContext):
    """Serve an application on *host*:*port* in the running event loop, with
    aiohttp's access log off and its server log scrubbed (both would print
    full numbers; see :class:`ScrubbedServerLog`).

    ``async with LookupServer(app, "127.0.0.1", 0) as server:`` then
    ``server.url`` (``http://host:port``, where a local client reaches it;
    port 0 picks a free one) and ``server.listening`` (the real bound
    addresses: ``http://0.0.0.0:8080`` for a wildcard host).
    *shutdown_timeout* (2 s) bounds how long open requests may finish on close.
    *limits* (:class:`~ccrm_async.thulium.ConnectionLimits`: a request head within
    10 s of connecting, the next within 15 s of an answer) cut slow clients
    off, on *clock* (seconds).
    """

    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        shutdown_timeout: float = 2.0,
        limits: ConnectionLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self.limits = limits or ConnectionLimits()
        self.clock = clock
        self._running: Running | None = None
        self.url: str | None = None
        """``http://host:port`` once started."""

    @property
    def listening(self) -> tuple[str, ...]:
        """The bound addresses as URLs (empty before start)."""
        return self._running.listening if self._running is not None else ()

    @property
    def running(self) -> Running | None:
        """The started server (its connection guard included), or None."""
        return self._running

    async def start(self) -> str:
        """Start listening; returns :attr:`url`."""
        self._running = await serve(
            self.app,
            self.host,
            self.port,
            shutdown_timeout=self.shutdown_timeout,
            logger=ScrubbedServerLog(),
            limits=self.limits,
            clock=self.clock,
        )
        self.url = self._running.url
        return self.url

    async def close(self) -> None:
        """Stop listening and close open connections."""
        if self._running is not None:
            running, self._running = self._running, None
            await running.close()
