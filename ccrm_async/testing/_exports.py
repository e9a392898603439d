"""The export routes of the fake CCRM: export requests, the ``pushUrl`` callback,
downloads served only to the requesting IP. (The contacts come from
:mod:`._contacts`, the files from :mod:`._export_files`.)

``POST /publicApi/people/export`` (or ``organisations``) with ``{"columns": [...],
"pushUrl": "..."}`` is answered ``{"success": true, "data": "OK"}``; the file is
generated from the columns (synthetic contacts derived from the emulator's
seed: no real person's data), and after ``callback_delay`` seconds the emulator
POSTs ``{"url": "<emulator>/api/storage/download/<id>"}`` to ``pushUrl`` for
real. ``GET /api/storage/download/<id>`` needs the Bearer key like every route,
and is answered 403 to any IP but the one that asked for the export.
:class:`ExportFaults` switches on late, repeated, forged or missing callbacks,
expired links, failing, slow, cut-off or redirected downloads, other file
formats, and a large-file mode for benchmarks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import orjson
from aiohttp import web
from yarl import URL

from .._core.export_columns import allowed_columns, is_custom_field
from .._core.ranges import parse_range_request
from ._contacts import ContactFactory
from ._export_files import ExportFile, render_export

if TYPE_CHECKING:
    from ._ccrm import CCRMEmulator

__all__ = ["ContactFactory", "EmulatedExport", "ExportArea", "ExportFaults"]

DOWNLOAD_PREFIX = "/api/storage/download/"
EXPORT_OK = {"success": True, "data": "OK", "otherData": {}, "message": "OK"}
_CHUNK = 1 << 18


@attrs.define
class ExportFaults:
    """Switches of the export area; change them at any time.

    - ``callback_delay`` (0 s): wait after the request before calling back; set
      it above the job's timeout for a *late* callback;
    - ``deliveries`` (1) and ``concurrent_deliveries`` (1): how many times the
      callback is POSTed, and how many of those at once (the rest follow one
      after another);
    - ``forged``: the callback's ``url`` names another host (127.0.0.9) than the
      one the export was requested from (which the genuine link names);
    - ``missing``: no callback at all (the file is still made);
    - ``unquoted_key``: the body as printed in the seed, ``{ url: "..." }``;
    - ``link_ttl`` (none): seconds a link works after the callback; 0 = expired;
    - ``download_failures`` (0): the first N requests for each file get 503;
    - ``download_delay`` (0 s) before answering, ``download_rate`` (none) in
      bytes per second, ``download_hang``: headers and the first half of the
      file (at most 256 KiB), then silence;
    - ``truncate_by`` (0): send that many bytes fewer than ``Content-Length``
      promises, then close the connection cleanly; ``chunked``: no
      ``Content-Length``;
    - ``cut_first_after`` (none): the first download of each file is cut (a
      clean close) after that many bytes (past the end: after the last byte,
      before a chunked body's end);
    - resuming: an open-ended ``Range: bytes=N-`` is answered 206 with
      ``Content-Range`` (416 past the end); ``ignore_range`` answers 200 with
      the whole file instead, ``range_shift`` (0) answers a range starting that
      many bytes later than asked;
    - ``redirect_to``: answer downloads with a 302 to this URL (``{id}`` in it
      is replaced by the file id); a request whose query has ``redirected`` is
      served, so a same-origin redirect can be followed;
    - ``format`` (``"csv"``; ``"csv_comma"``, ``"json"``, ``"xlsx"``),
      ``encoding`` (``"utf-8-sig"``; ``"utf-8"``, ``"cp1250"``) and ``nested``
      (``"flat"``: ``addresses.0.city``; ``"json"``: one JSON cell);
    - ``people`` (40) and ``organisations`` (15): records per file; ``size``
      (none): large-file mode, the CSV rows repeated to about that many bytes.
    """

    callback_delay: float = 0.0
    deliveries: int = 1
    concurrent_deliveries: int = 1
    forged: bool = False
    missing: bool = False
    unquoted_key: bool = False
    link_ttl: float | None = None
    download_failures: int = 0
    download_delay: float = 0.0
    download_rate: float | None = None
    download_hang: bool = False
    truncate_by: int = 0
    chunked: bool = False
    cut_first_after: int | None = None
    ignore_range: bool = False
    range_shift: int = 0
    redirect_to: str | None = None
    format: str = "csv"
    encoding: str = "utf-8-sig"
    nested: str = "flat"
    people: int = 40
    organisations: int = 15
    size: int | None = None


@attrs.define
class EmulatedExport:
    """One export request as the emulator saw it. ``callbacks`` holds the HTTP
    status of each callback delivery (``None`` when it failed to connect);
    ``downloads`` the ``(remote, status)`` of each download request."""

    id: str
    kind: str
    columns: list[str]
    push_url: str
    remote: str | None
    requested_at: float
    origin: str = ""
    body: ExportFile | None = None
    ready_at: float | None = None
    callbacks: list[int | None] = attrs.field(factory=list)
    downloads: list[tuple[str | None, int]] = attrs.field(factory=list)

    @property
    def download_url_path(self) -> str:
        return f"{DOWNLOAD_PREFIX}{self.id}"


class ExportArea:
    """The export endpoints of one :class:`CCRMEmulator`; see the module docstring.

    ``faults`` holds the switches, ``exports`` every request by file id.
    """

    def __init__(self, emulator: CCRMEmulator, *, seed: int = 0) -> None:
        self._emulator = emulator
        self.faults = ExportFaults()
        self.factory = ContactFactory(seed)
        self.exports: dict[str, EmulatedExport] = {}
        self._records: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        emulator.add_routes(
            [
                web.post("/publicApi/people/export", self._export_people),
                web.post("/publicApi/organisations/export", self._export_organisations),
                web.get(DOWNLOAD_PREFIX + "{file_id}", self._download),
            ]
        )
        emulator.app.on_shutdown.append(self._shutdown)

    def records(self, kind: str) -> list[dict[str, Any]]:
        """The synthetic contacts an export of *kind* draws from (wire form)."""
        count = self.faults.people if kind == "people" else self.faults.organisations
        key = (kind, count)
        if key not in self._records:
            maker = self.factory.people if kind == "people" else self.factory.organisations
            self._records[key] = maker(count)
        return self._records[key]

    def file(self, file_id: str) -> bytes:
        """The whole file of an export (for tests: compare with the download)."""
        body = self.exports[file_id].body
        if body is None:
            raise KeyError(file_id)
        return body.data()

    async def _shutdown(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # -- export requests ---------------------------------------------------------------

    async def _export_people(self, request: web.Request) -> web.Response:
        return await self._export(request, "people")

    async def _export_organisations(self, request: web.Request) -> web.Response:
        return await self._export(request, "organisations")

    async def _export(self, request: web.Request, kind: str) -> web.Response:
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"success": False, "message": "Invalid JSON"}, 400)
        if not isinstance(payload, dict):
            return _json({"success": False, "message": "Invalid request"}, 400)
        columns = payload.get("columns")
        push_url = payload.get("pushUrl")
        if not isinstance(columns, list) or not columns:
            return _json({"success": False, "message": "columns is required"}, 400)
        allowed = set(allowed_columns(kind))  # type: ignore[arg-type]
        unknown = [
            c for c in columns if not isinstance(c, str) or not (c in allowed or is_custom_field(c))
        ]
        if unknown:
            return _json({"success": False, "message": f"Unknown column: {unknown[0]}"}, 400)
        if not isinstance(push_url, str) or not push_url.startswith(("http://", "https://")):
            return _json({"success": False, "message": "pushUrl is required"}, 400)
        if self.faults.format == "xlsx":
            try:
                import openpyxl  # type: ignore[import-untyped]  # noqa: F401
            except ImportError:
                return _json({"success": False, "message": "xlsx needs openpyxl"}, 400)
        export = EmulatedExport(
            id=str(uuid.uuid4()),
            kind=kind,
            columns=list(columns),
            push_url=push_url,
            remote=request.remote,
            requested_at=time.monotonic(),
            # The link names the host the client called, as the account's would.
            origin=f"{request.scheme}://{request.host}",
        )
        self.exports[export.id] = export
        task = asyncio.create_task(self._produce(export, attrs.evolve(self.faults)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _json(EXPORT_OK, 200)

    async def _produce(self, export: EmulatedExport, faults: ExportFaults) -> None:
        export.body = render_export(
            export.columns,
            self.records(export.kind),
            format=faults.format,
            encoding=faults.encoding,
            nested=faults.nested,
            size=faults.size,
        )
        if faults.callback_delay:
            await asyncio.sleep(faults.callback_delay)
        export.ready_at = time.monotonic()
        if faults.missing:
            return
        base = URL(export.origin or self._emulator.url)
        if faults.forged:
            base = base.with_host("127.0.0.9")
        url = f"{str(base).rstrip('/')}{export.download_url_path}"
        body = (
            f'{{\n\turl: "{url}"\n}}'.encode()
            if faults.unquoted_key
            else orjson.dumps({"url": url})
        )
        at_once = max(1, min(faults.concurrent_deliveries, faults.deliveries))
        await asyncio.gather(*(self._deliver(export, body) for _ in range(at_once)))
        for _ in range(faults.deliveries - at_once):
            await self._deliver(export, body)

    async def deliver(self, export: EmulatedExport, *, file_id: str | None = None) -> int | None:
        """POST *export*'s callback once more, now (with ``missing`` on, the
        first time), naming its own file or *file_id*; returns the status the
        receiver answered (``None``: no connection)."""
        base = str(URL(export.origin or self._emulator.url)).rstrip("/")
        url = f"{base}{DOWNLOAD_PREFIX}{file_id or export.id}"
        await self._deliver(export, orjson.dumps({"url": url}))
        return export.callbacks[-1]

    async def _deliver(self, export: EmulatedExport, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        try:
            async with self._session.post(
                export.push_url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                export.callbacks.append(resp.status)
        except (aiohttp.ClientError, TimeoutError):
            export.callbacks.append(None)

    # -- downloads ------------------------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        export = self.exports.get(request.match_info["file_id"])
        status = await self._check(request, export)
        if status is not None:
            return status
        assert export is not None and export.body is not None
        f = self.faults
        if f.redirect_to is not None and "redirected" not in request.query:
            export.downloads.append((request.remote, 302))
            location = f.redirect_to.replace("{id}", export.id)
            return web.Response(status=302, headers={"Location": location})
        if f.download_delay:
            await asyncio.sleep(f.download_delay)
        body = export.body
        offset = None if f.ignore_range else parse_range_request(request.headers.get("Range"))
        if offset is not None and offset >= body.size:
            export.downloads.append((request.remote, 416))
            return web.Response(status=416, headers={"Content-Range": f"bytes */{body.size}"})
        code = 200 if offset is None else 206
        start = 0 if offset is None else min(offset + f.range_shift, body.size - 1)
        response = web.StreamResponse(
            status=code,
            headers={
                "Content-Type": body.content_type,
                "Content-Disposition": f'attachment; filename="{_file_name(export, body)}"',
            },
        )
        if code == 206:
            response.headers["Content-Range"] = f"bytes {start}-{body.size - 1}/{body.size}"
        if not f.chunked:
            response.content_length = body.size - start
        first = not export.downloads or all(s not in (200, 206) for _, s in export.downloads)
        export.downloads.append((request.remote, code))
        await response.prepare(request)
        if f.download_hang:
            await response.write(body.head[: min(len(body.head) // 2, _CHUNK)])
            await asyncio.Event().wait()
        to_send = body.size - start - f.truncate_by if f.truncate_by else None
        if first and f.cut_first_after is not None:
            to_send = f.cut_first_after
        sent = 0
        for chunk in body.chunks_from(start):
            if to_send is not None and sent + len(chunk) > to_send:
                chunk = chunk[: to_send - sent]
            await response.write(chunk)
            sent += len(chunk)
            if f.download_rate:
                await asyncio.sleep(len(chunk) / f.download_rate)
            if to_send is not None and sent >= to_send:
                break
        if to_send is not None:
            # A clean close short of the promise (or, past the file's end, before
            # the end of a chunked body).
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    async def _check(
        self, request: web.Request, export: EmulatedExport | None
    ) -> web.Response | None:
        if export is None or export.ready_at is None:
            return _json({"success": False, "message": "Not found"}, 404)
        if request.remote != export.remote:
            export.downloads.append((request.remote, 403))
            return _json({"success": False, "message": "Access denied"}, 403)
        ttl = self.faults.link_ttl
        if ttl is not None and time.monotonic() - export.ready_at >= ttl:
            export.downloads.append((request.remote, 404))
            return _json({"success": False, "message": "File expired"}, 404)
        failed = sum(1 for _, status in export.downloads if status == 503)
        if failed < self.faults.download_failures:
            export.downloads.append((request.remote, 503))
            return _json({"success": False, "message": "Service Unavailable"}, 503)
        return None


def _file_name(export: EmulatedExport, body: ExportFile) -> str:
    # As the vendor's UI names its exports: exportPerson-<date>.csv
    noun = "Person" if export.kind == "people" else "Organisation"
    return f"export{noun}-2024-01-01.{body.extension}"


def _json(payload: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
