"""The fake intum CRM: an aiohttp app that speaks the deals API (seed 004).

One :class:`IntumEmulator` serves one account's deals on a real socket. It
checks the token (``Authorization: Bearer``, or ``api_token`` in the query or
the JSON body as the seed's example shows), applies the same rules as the
client (:func:`ccrm_async.intum.deal_problems`) and answers a broken deal with
422 ``{"code": "error", "message": {field: [messages]}}``, pages the list with
``page``/``per_page`` (at most 100 a page, ordered by id), filters it by the
documented parameters, finds deals by external id, and records every request
in :attr:`IntumEmulator.log`.

Money is kept as the exact ``Decimal`` received and answered as the same JSON
number (``12300.10`` stays ``12300.10``), or as a string with
``money_as_strings=True`` (as a Rails server renders decimals). The create
endpoint does not enforce unique external ids, so a blind retry of a create
really does make a duplicate.

:class:`IntumFaults` switches on latency, random 5xx answers, and scripted
faults per route, among them ``"drop"``: the request is processed (the deal is
created) and the connection is then cut without an answer (RELIABILITY item
32).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson
from aiohttp import web

from .._serving import AppServer
from ..intum.models import DEAL_FIELDS, MONEY_FIELDS, convert_field
from ..intum.validation import deal_problems

__all__ = ["INTUM_FAULT_NAMES", "INTUM_ROUTES", "IntumEmulator", "IntumFaults", "IntumRequest"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Route names, for :meth:`IntumFaults.script`, :attr:`IntumFaults.routes` and
#: :meth:`IntumEmulator.requests`.
INTUM_ROUTES: Final = ("list", "get", "create", "update", "delete", "get_by_external_id")

#: Names of the faults :meth:`IntumFaults.script` accepts.
INTUM_FAULT_NAMES: Final = (
    "500",
    "503",
    "429",  # Too Many Requests
    "401",
    "reset",  # the connection is cut before the request is processed: no effect
    "drop",  # the request is processed, then the connection is cut unanswered
    "hang",  # never answers (until the client gives up)
)

_STATUS_FAULTS: Final = {
    "500": "Internal Server Error",
    "503": "Service Unavailable",
    "429": "Too Many Requests",
    "401": "Unauthorized",
}

MAX_PER_PAGE: Final = 100
DEFAULT_PER_PAGE: Final = 25


@attrs.define
class IntumFaults:
    """Fault switches; change them at any time.

    - ``latency`` (s, 0): added before every answer;
    - ``error_rate`` (0): share of requests to ``routes`` answered 503, drawn
      from ``seed``, the request and how often it was seen, so a run is
      reproducible; one request fails at most ``max_per_request`` (3) times
      in a row this way;
    - scripted faults (:meth:`script`) are always applied, one per request.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    max_per_request: int = 3
    routes: tuple[str, ...] = INTUM_ROUTES
    _script: dict[str, list[str]] = attrs.field(factory=dict, alias="_script")

    def script(self, route: str, faults: list[str]) -> None:
        """Answer the next requests to *route* (see ``INTUM_ROUTES``) with
        *faults*, one per request, in order (see ``INTUM_FAULT_NAMES``)."""
        if route not in INTUM_ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {', '.join(INTUM_ROUTES)}")
        for name in faults:
            if name not in INTUM_FAULT_NAMES:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(INTUM_FAULT_NAMES)}")
        self._script.setdefault(route, []).extend(faults)

    def scripted(self, route: str) -> str | None:
        queue = self._script.get(route)
        return queue.pop(0) if queue else None


@attrs.frozen
class IntumRequest:
    """One request as the emulator saw it; ``body`` is the decoded JSON body
    (amounts as ``Decimal``) without any ``api_token``."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str
    route: str | None
    query: dict[str, str]
    body: Any
    remote: str | None
    status: int | None = None  # None when no answer was sent
    fault: str | None = None
    finished: float | None = None


class IntumEmulator(AppServer):
    """A fake intum account on a real socket.

    ``async with IntumEmulator() as emu:`` serves on 127.0.0.1 with a free
    port; point a client at ``emu.url`` with ``token=emu.token``.

    - ``deals`` (0): deals generated from ``seed`` (0) before start, valid
      ones, with external ids ``seed-1``, ``seed-2``, ...;
    - ``app_code`` (none): when set, lookups by external id under any other
      app code find nothing; by default every app code sees every external id
      (the create endpoint has no app-code parameter to scope them by);
    - ``money_as_strings`` (False): answer amounts as JSON strings;
    - ``faults``: an :class:`IntumFaults`.
    """

    def __init__(
        self,
        *,
        token: str = "intum-emulator-token",  # noqa: S107 - a fake account's token
        deals: int = 0,
        seed: int = 0,
        app_code: str | None = None,
        money_as_strings: bool = False,
        faults: IntumFaults | None = None,
    ) -> None:
        self.token = token
        self.app_code = app_code
        self.money_as_strings = money_as_strings
        self.faults = faults or IntumFaults()
        self.log: list[IntumRequest] = []
        self._deals: dict[int, dict[str, Any]] = {}
        self._next_id = 1
        self._attempts: Counter[str] = Counter()
        super().__init__()
        self.app.middlewares.append(self._middleware)
        self.app.router.add_get("/crm/deals.json", self._list, name="list")
        self.app.router.add_post("/crm/deals.json", self._create, name="create")
        self.app.router.add_get(
            "/crm/deals/e/{app_code}/{external_id}.json",
            self._by_external_id,
            name="get_by_external_id",
        )
        self.app.router.add_get("/crm/deals/{id}.json", self._get, name="get")
        self.app.router.add_patch("/crm/deals/{id}.json", self._update, name="update")
        self.app.router.add_delete("/crm/deals/{id}.json", self._delete, name="delete")
        rng = random.Random(seed)
        for n in range(1, deals + 1):
            net = Decimal(rng.randint(100, 10_000_000)) / 100
            self.add_deal(
                name=f"Deal {n}",
                total_amount_net=net,
                total_amount_gross=(net * Decimal("1.23")).quantize(Decimal("0.01")),
                tax="23",
                currency="PLN",
                status_id=rng.randint(1, 5),
                client_id=rng.randint(1, 50),
                date=dt.date(2026, 1, 1) + dt.timedelta(days=n % 365),
                external_id=f"seed-{n}",
            )

    # -- life cycle ------------------------------------------------------------

    # -- the data, for tests -------------------------------------------------------

    @property
    def deals(self) -> list[dict[str, Any]]:
        """Copies of the stored deals in id order (amounts ``Decimal``, dates ``date``)."""
        return [dict(deal) for deal in self._deals.values()]

    def add_deal(self, **fields: Any) -> dict[str, Any]:
        """Store a deal as given, without the API's rules (to plant test data);
        returns it with its new ``id``."""
        deal = {"id": self._next_id, **fields}
        self._deals[self._next_id] = deal
        self._next_id += 1
        return dict(deal)

    def requests(self, route: str | None = None) -> list[IntumRequest]:
        """The log, optionally only one route's entries (see ``INTUM_ROUTES``)."""
        return [r for r in self.log if route is None or r.route == route]

    # -- the common part of every answer -----------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        body = _loads(raw)
        route = request.match_info.route.name
        index = len(self.log)
        entry = IntumRequest(
            at=time.monotonic(),
            method=request.method,
            path=request.path,
            route=route,
            query={k: v for k, v in request.query.items() if k != "api_token"},
            body={k: v for k, v in body.items() if k != "api_token"}
            if isinstance(body, dict)
            else body,
            remote=request.remote,
        )
        self.log.append(entry)
        status: int | None = None
        fault: str | None = None
        try:
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            if not self._authorised(request, body):
                status = 401
                return _error("Unauthorized", 401)
            fault = self._pick_fault(request, route)
            if fault is None:
                response = await handler(request)
            elif fault in _STATUS_FAULTS:
                response = _error(_STATUS_FAULTS[fault], int(fault))
            else:  # "reset", "drop", "hang": no answer at all
                if fault == "drop":
                    await handler(request)  # the effect happens; the answer is lost
                if fault != "hang" and request.transport is not None:
                    request.transport.abort()
                await asyncio.Event().wait()  # cancelled once the connection is gone
                raise AssertionError("unreachable")
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.log[index] = attrs.evolve(
                entry, status=status, fault=fault, finished=time.monotonic()
            )

    def _authorised(self, request: web.Request, body: Any) -> bool:
        header = request.headers.get("Authorization", "")
        given = header[7:] if header.startswith("Bearer ") else request.query.get("api_token")
        if given is None and isinstance(body, dict) and isinstance(body.get("api_token"), str):
            given = body["api_token"]
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _pick_fault(self, request: web.Request, route: str | None) -> str | None:
        if route is None:
            return None
        scripted = self.faults.scripted(route)
        if scripted is not None:
            return scripted
        f = self.faults
        if not f.error_rate or route not in f.routes:
            return None
        key = f"{request.method} {request.path_qs}"
        seen = self._attempts[key]
        self._attempts[key] += 1
        if seen >= f.max_per_request:
            return None
        return "503" if random.Random(f"{f.seed}:{key}:{seen}").random() < f.error_rate else None

    # -- the API -------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            page = max(1, int(query.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(query.get("per_page", DEFAULT_PER_PAGE))))
            wanted = _filters(query)
        except (ValueError, ArithmeticError):
            return _error("invalid page, per_page or filter value", 400)
        selected = [deal for deal in self._deals.values() if _matches(deal, wanted)]
        chunk = selected[(page - 1) * per_page : page * per_page]
        return self._json([self._render(deal) for deal in chunk])

    async def _get(self, request: web.Request) -> web.Response:
        deal = self._deals.get(_int(request.match_info["id"]))
        return self._json(self._render(deal)) if deal else _error("Not found", 404)

    async def _by_external_id(self, request: web.Request) -> web.Response:
        app_code = request.match_info["app_code"]
        external_id = request.match_info["external_id"]
        if self.app_code is None or app_code == self.app_code:
            for deal in self._deals.values():
                if deal.get("external_id") == external_id:
                    return self._json(self._render(deal))
        return _error("Not found", 404)

    async def _create(self, request: web.Request) -> web.Response:
        fields = _deal_fields(_loads(await request.read()))
        if fields is None:
            return _error({"deal": ["is missing"]}, 422)
        problems = deal_problems(fields)
        if problems:
            return _error(problems, 422)
        now = _now()
        deal = {
            "id": self._next_id,
            **{name: convert_field(name, value) for name, value in fields.items()},
            "created_at": now,
            "updated_at": now,
        }
        self._deals[self._next_id] = deal
        self._next_id += 1
        return self._json(self._render(deal), 201)

    async def _update(self, request: web.Request) -> web.Response:
        deal = self._deals.get(_int(request.match_info["id"]))
        if deal is None:
            return _error("Not found", 404)
        changes = _deal_fields(_loads(await request.read()))
        if changes is None:
            return _error({"deal": ["is missing"]}, 422)
        problems = deal_problems(changes, partial=True)
        if problems:
            return _error(problems, 422)
        changed = {name: convert_field(name, value) for name, value in changes.items()}
        # The record as a whole must stay valid (a new net above the stored gross).
        problems = deal_problems({**deal, **changed})
        if problems:
            return _error(problems, 422)
        deal.update(changed, updated_at=_now())
        return self._json(self._render(deal))

    async def _delete(self, request: web.Request) -> web.Response:
        if self._deals.pop(_int(request.match_info["id"]), None) is None:
            return _error("Not found", 404)
        return web.Response(status=204)

    # -- rendering -----------------------------------------------------------------

    def _render(self, deal: Mapping[str, Any]) -> dict[str, Any]:
        if not self.money_as_strings:
            return dict(deal)
        return {
            k: format(v, "f") if k in MONEY_FIELDS and isinstance(v, Decimal) else v
            for k, v in deal.items()
        }

    def _json(self, payload: Any, status: int = 200) -> web.Response:
        return web.Response(
            body=orjson.dumps(payload, default=_exact),
            status=status,
            content_type="application/json",
        )


def _exact(value: object) -> object:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _loads(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _int(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() else 0


def _error(message: object, status: int) -> web.Response:
    return web.Response(
        body=orjson.dumps({"code": "error", "message": message}),
        status=status,
        content_type="application/json",
    )


def _deal_fields(body: Any) -> dict[str, Any] | None:
    """The known fields of ``body["deal"]`` (others are ignored, as strong
    parameters do), or ``None`` when there is no deal object."""
    deal = body.get("deal") if isinstance(body, dict) else None
    if not isinstance(deal, dict):
        return None
    return {k: v for k, v in deal.items() if k in DEAL_FIELDS}


def _filters(query: Mapping[str, str]) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    for name in ("client_id", "status_id", "responsible_id", "department_id", "project_id"):
        if name in query:
            wanted[name] = int(query[name])
    for name in ("main_date_from", "main_date_to"):
        if name in query:
            wanted[name] = dt.date.fromisoformat(query[name])
    for name in ("total_amount_gross_from", "total_amount_gross_to"):
        if name in query:
            wanted[name] = Decimal(query[name])
    if query.get("q"):
        wanted["q"] = query["q"].casefold()
    return wanted


def _matches(deal: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for name, value in wanted.items():
        if name == "q":
            text = f"{deal.get('name') or ''}\n{deal.get('description') or ''}".casefold()
            if value not in text:
                return False
        elif name.startswith("main_date_"):
            day = deal.get("date")
            if not isinstance(day, dt.date):
                return False
            if (day < value) if name.endswith("_from") else (day > value):
                return False
        elif name.startswith("total_amount_gross_"):
            gross = deal.get("total_amount_gross")
            if not isinstance(gross, Decimal):
                return False
            if (gross < value) if name.endswith("_from") else (gross > value):
                return False
        elif deal.get(name) != value:
            return False
    return True
