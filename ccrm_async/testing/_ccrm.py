"""The fake CCRM server: an aiohttp app that speaks the documented API.

One :class:`CCRMEmulator` serves one account. It checks the Bearer key, pages
call history by 1000 with ``otherData.totalCount``, serves notes, and records
every request in :attr:`CCRMEmulator.log` (source address, page, status, the
number of requests in flight when it arrived). :class:`Faults` switches on
latency, 5xx answers, connection resets mid-body, rate-limit 403s, bad 200s
and data changes during a pull. Feature areas (exports, custom fields) add
their routes to :attr:`CCRMEmulator.app` through :meth:`CCRMEmulator.add_routes`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import attrs
import orjson
from aiohttp import web

from .._serving import AppServer
from ._custom_fields import CustomFieldStore
from ._data import CallDataset
from ._php import PhpHabits

__all__ = ["RATE_LIMIT_BODY", "CCRMEmulator", "Faults", "LoggedRequest"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PAGE_SIZE = 1000
BOM = b"\xef\xbb\xbf"
RATE_LIMIT_BODY = {"success": False, "message": "Request limit has been exceeded"}
UNAUTHORIZED_BODY = {"success": False, "message": "Unauthorized"}

#: Names of the faults :meth:`Faults.script` accepts.
FAULT_NAMES = (
    "503",  # {"success": false} with HTTP 503
    "500",
    "reset",  # half the body, then the connection is cut
    "rate_limit",  # 403 with the rate-limit message
    "401",
    "403",  # 403 with another message
    "404",
    "truncated",  # 200, body cut in the middle of the JSON
    "html",  # 200, an HTML error page
    "success_false",  # 200 with {"success": false}
    "data_not_list",  # 200 with "data" an object that is not a list
    "short",  # 200, the page with its last record missing
    "hang",  # never answers (until the client gives up)
    "drip",  # the answer one byte every ``Faults.drip_interval`` seconds
)


@attrs.define
class Faults:
    """Fault switches; change them at any time, even while a pull runs.

    Random faults are drawn per request from ``seed``, the request's path and
    query, and how many times that exact request was seen, so a run is
    reproducible whatever the order requests arrive in. A single request is
    failed at most ``max_per_request`` times in a row by random faults
    (transient faults, as in life); scripted faults are always applied.

    - ``latency`` (s): added before every answer;
    - ``drip_interval`` (1 s): the pause between bytes of a ``"drip"`` answer;
    - ``error_rate``: share of requests answered 503;
    - ``reset_rate``: share cut off after half the body;
    - ``rate_limit_rate``: share answered with the rate-limit 403;
    - ``retry_after``: a ``Retry-After`` value sent with rate-limit answers;
    - ``paths``: the paths random faults apply to (default: call history);
    - ``churn``: calls deleted at the head after *every* call-history page
      served (data that never holds still: no pass can be complete).

    Data changes mid-pull: :meth:`insert_after_page`, :meth:`delete_after_page`;
    :meth:`serve_after` orders concurrent answers, so that a change lands
    between two pages fetched at the same time.
    """

    latency: float = 0.0
    drip_interval: float = 1.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: str | None = None
    seed: int = 0
    max_per_request: int = 3
    paths: tuple[str, ...] = ("/publicApi/callHistory",)
    churn: int = 0
    _script: dict[tuple[str, int | None], list[str]] = attrs.field(factory=dict, alias="_script")
    _changes: dict[int, list[tuple[str, int]]] = attrs.field(factory=dict, alias="_changes")
    _holds: dict[int, int] = attrs.field(factory=dict, alias="_holds")

    def script(self, path: str, faults: list[str], *, page: int | None = None) -> None:
        """Answer the next requests to *path* (and *page*, if given) with *faults*,
        one fault per request, in order. See ``FAULT_NAMES``."""
        for name in faults:
            if name not in FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        self._script.setdefault((path, page), []).extend(faults)

    def insert_after_page(self, page: int, count: int) -> None:
        """After call-history page *page* is served, insert *count* calls at the head."""
        self._changes.setdefault(page, []).append(("insert", count))

    def delete_after_page(self, page: int, count: int) -> None:
        """After call-history page *page* is served, delete the *count* newest calls."""
        self._changes.setdefault(page, []).append(("delete", count))

    def serve_after(self, page: int, after: int) -> None:
        """Answer the next call-history request for *page* only once page
        *after* has been answered (and its data changes applied)."""
        self._holds[page] = after

    def scripted(self, path: str, page: int | None) -> str | None:
        for key in ((path, page), (path, None)):
            queue = self._script.get(key)
            if queue:
                return queue.pop(0)
        return None


@attrs.frozen
class LoggedRequest:
    """One request as the emulator saw it."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    query: dict[str, str]
    remote: str | None
    in_flight: int  # requests in flight when it arrived, itself included
    status: int | None = None
    fault: str | None = None
    finished: float | None = None

    @property
    def page(self) -> int:
        return int(self.query.get("page", "1"))


class CCRMEmulator(AppServer):
    """A fake CCRM account on a real socket.

    ``async with CCRMEmulator() as emu:`` serves on 127.0.0.1 with a free port;
    point a client at ``emu.url`` with ``token=emu.token``. ``calls`` (5000)
    calls over ``days`` (31) days from ``start`` (2024-01-01), ``notes_ratio``
    (0.3) of them with notes, all derived from ``seed``.
    """

    def __init__(
        self,
        *,
        token: str = "emulator-token",  # noqa: S107 - a fake account's key
        seed: int = 0,
        calls: int = 5000,
        start: datetime = datetime(2024, 1, 1),
        days: int = 31,
        notes_ratio: float = 0.3,
        faults: Faults | None = None,
        php: PhpHabits | None = None,
    ) -> None:
        self.token = token
        self.php = php or PhpHabits()
        self.dataset = CallDataset(
            seed=seed, count=calls, start=start, days=days, notes_ratio=notes_ratio
        )
        self.faults = faults or Faults()
        self.log: list[LoggedRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.changes_applied: list[tuple[str, int, list[str]]] = []
        self._attempts: Counter[str] = Counter()
        self._served: dict[int, asyncio.Event] = {}
        self._bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        super().__init__()
        self.app.middlewares.append(self._middleware)
        self.app.router.add_get("/publicApi/callHistory", self._call_history)
        self.app.router.add_get("/publicApi/notes", self._notes)
        from ._exports import ExportArea  # here: _exports refers back to this module

        self.exports = ExportArea(self, seed=seed)
        self.custom_fields = CustomFieldStore(seed=seed)
        self.add_routes(self.custom_fields.routes())

    # -- life cycle ------------------------------------------------------------

    def add_routes(self, routes: list[web.RouteDef]) -> None:
        """Add a feature area's routes (before :meth:`start`)."""
        self.app.router.add_routes(routes)

    def requests(self, path: str | None = None) -> list[LoggedRequest]:
        """The log, optionally only one path's entries."""
        return [r for r in self.log if path is None or r.path == path]

    # -- the common part of every answer -----------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        index = len(self.log)
        entry = LoggedRequest(
            at=time.monotonic(),
            method=request.method,
            path=request.path,
            query=dict(request.query),
            remote=request.remote,
            in_flight=self.in_flight,
        )
        self.log.append(entry)
        status: int | None = None
        fault: str | None = None
        try:
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                status = 401
                return _json(UNAUTHORIZED_BODY, 401)
            fault = self._pick_fault(request)
            if fault is not None:
                response = await self._apply_fault(fault, request, handler)
            else:
                response = await handler(request)
            status = response.status
            return response
        finally:
            self.in_flight -= 1
            self.log[index] = attrs.evolve(
                entry, status=status, fault=fault, finished=time.monotonic()
            )

    def _pick_fault(self, request: web.Request) -> str | None:
        page = (
            int(request.query.get("page", "1"))
            if request.query.get("page", "1").isdigit()
            else None
        )
        scripted = self.faults.scripted(request.path, page)
        if scripted is not None:
            return scripted
        f = self.faults
        if request.path not in f.paths or not (f.error_rate or f.reset_rate or f.rate_limit_rate):
            return None
        key = f"{request.method} {request.path_qs}"
        seen = self._attempts[key]
        self._attempts[key] += 1
        if seen >= f.max_per_request:
            return None
        draw = random.Random(f"{f.seed}:{key}:{seen}").random()
        for name, rate in (
            ("503", f.error_rate),
            ("reset", f.reset_rate),
            ("rate_limit", f.rate_limit_rate),
        ):
            if draw < rate:
                return name
            draw -= rate
        return None

    async def _apply_fault(
        self, fault: str, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if fault in ("503", "500"):
            return _json({"success": False, "message": "Service Unavailable"}, int(fault))
        if fault == "rate_limit":
            headers = {"Retry-After": self.faults.retry_after} if self.faults.retry_after else None
            return _json(RATE_LIMIT_BODY, 403, headers)
        if fault == "401":
            return _json(UNAUTHORIZED_BODY, 401)
        if fault == "403":
            return _json({"success": False, "message": "Access denied"}, 403)
        if fault == "404":
            return _json({"success": False, "message": "Not found"}, 404)
        if fault == "hang":
            await asyncio.Event().wait()
        if fault == "html":
            return web.Response(
                body=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                content_type="text/html",
            )
        if fault == "success_false":
            return _json({"success": False, "data": [], "message": "Internal error"}, 200)
        if fault == "data_not_list":
            not_a_list = {
                "success": True,
                "data": {"error": "unavailable"},
                "otherData": {"totalCount": 1},
            }
            return _json(not_a_list, 200)
        response = await handler(request)
        assert isinstance(response, web.Response) and response.body is not None
        body = bytes(response.body)  # type: ignore[arg-type]
        if fault == "drip":
            drip = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            drip.content_length = len(body)
            await drip.prepare(request)
            for i in range(len(body)):
                await drip.write(body[i : i + 1])
                await asyncio.sleep(self.faults.drip_interval)
            return drip
        if fault == "truncated":
            return web.Response(body=body[: len(body) // 2], content_type="application/json")
        if fault == "short":
            payload = orjson.loads(body)
            payload["data"] = payload["data"][:-1]
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        # "reset": promise the whole body, send half, cut the connection.
        stream = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.abort()
        return stream

    # -- the API -------------------------------------------------------------------

    async def _call_history(self, request: web.Request) -> web.Response:
        date_from = request.query.get("dateFrom")
        date_to = request.query.get("dateTo")
        if not date_from or not date_to:
            return _json({"success": False, "message": "dateFrom and dateTo are required"}, 400)
        page = _page(request)
        if page is None:
            return _json({"success": False, "message": "page must be a positive integer"}, 400)
        hold = self.faults._holds.pop(page, None)
        if hold is not None:
            await self._served.setdefault(hold, asyncio.Event()).wait()
        key = ("calls", self.dataset.version, date_from, date_to, page)
        body = None if self.php.active else self._bodies.get(key)
        if body is None:
            selected = self.dataset.select(date_from, date_to)
            chunk = selected[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            body = self._page_body(chunk, len(selected))
            if not self.php.active:
                self._bodies[key] = body
                if len(self._bodies) > 64:
                    self._bodies.popitem(last=False)
        for change, count in self.faults._changes.pop(page, []):
            uuids = (
                self.dataset.insert_head(count)
                if change == "insert"
                else self.dataset.delete_head(count)
            )
            self.changes_applied.append((change, count, uuids))
        if self.faults.churn:
            uuids = self.dataset.delete_head(self.faults.churn)
            self.changes_applied.append(("delete", self.faults.churn, uuids))
        self._served.setdefault(page, asyncio.Event()).set()
        return web.Response(body=body, content_type="application/json")

    async def _notes(self, request: web.Request) -> web.Response:
        call_uuid = request.query.get("callHistory")
        if not call_uuid:
            return _json({"success": False, "message": "callHistory is required"}, 400)
        page = _page(request)
        if page is None:
            return _json({"success": False, "message": "page must be a positive integer"}, 400)
        call = self.dataset.by_uuid(call_uuid)
        notes = self.dataset.notes_for(call) if call is not None else []
        chunk = notes[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        body = self._page_body(chunk, len(notes), notes=True)
        return web.Response(body=body, content_type="application/json")

    def _page_body(self, chunk: list[dict[str, Any]], total: int, *, notes: bool = False) -> bytes:
        """A paged answer, spelled with the PHP habits that are switched on."""
        php = self.php
        if not php.active:
            return _envelope(chunk, total)
        data: Any = [php.spell(record, spoil=not notes) for record in chunk]
        if not data and php.empty_data_object:
            data = {}
        other: Any = [] if php.no_total_count else {"totalCount": total}
        body = orjson.dumps({"success": True, "data": data, "otherData": other, "message": "OK"})
        return BOM + body if php.bom else body


def _page(request: web.Request) -> int | None:
    raw = request.query.get("page", "1")
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None


def _envelope(data: Any, total: int) -> bytes:
    return orjson.dumps(
        {"success": True, "data": data, "otherData": {"totalCount": total}, "message": "OK"}
    )


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
    )
