"""CCRMClient: the Telecube CRM public API (``https://{account}.ccrm.pl/publicApi/``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from datetime import tzinfo
from functools import partial
from typing import Protocol, TypeVar

import aiohttp
import attrs
import cattrs
from aiohttp.abc import AbstractResolver

from ._client_base import APIClient, check_at_least_one, resolve_credentials, timeouts
from ._core.dates import DateLike, date_range
from .config import RetryPolicy, Secret, Timeouts
from .converter import LENIENT, make_converter
from .custom_fields import CustomFields
from .errors import CCRMError, ResponseError
from .events import EventCallback, PageEvent, PullEvent, emit
from .exports import ExportJob, ExportReceiver, start_export
from .models import CallRecord, Note, RejectedRecord
from .pagination import (
    BUFFER_BYTES,
    ByteBudget,
    PageSource,
    Pull,
    PullStats,
    RejectHandler,
    fan_out,
    paginate,
)
from .parsing import Page, parse_page
from .transport import Clock, PublicAddressResolver, RequestCounters, Transport

__all__ = ["CCRMClient"]

CALL_HISTORY_PATH = "/publicApi/callHistory"
NOTES_PATH = "/publicApi/notes"


class _HasUUID(Protocol):
    @property
    def uuid(self) -> str: ...


R = TypeVar("R", bound=_HasUUID)


def _uuid(record: _HasUUID) -> str:
    return record.uuid


def _body(body: bytes) -> bytes:
    """The raw body: pages are parsed apart from fetching (see the engine)."""
    return body


class CCRMClient(APIClient):
    """An asyncio client for one CCRM account.

    Keywords (all optional but an account or base URL, and a token):

    - ``account``: the ``{account}`` of ``{account}.ccrm.pl`` (env ``CCRM_ACCOUNT``);
    - ``token``: the API key (env ``CCRM_TOKEN``); never shown by ``repr``;
    - ``base_url``: overrides ``https://{account}.ccrm.pl`` (env ``CCRM_BASE_URL``),
      e.g. the emulator's address;
    - ``concurrency`` (8): requests in flight for the whole client, pages and
      notes together;
    - ``max_rps`` (none): a cap on request starts per second for the whole client;
    - ``local_addr``: the source IP every connection is bound to (the account's
      IP allow-list, and the export download, need a stable egress IP);
    - ``proxy``: an HTTP proxy URL for every request and download;
    - ``timeout``: seconds for one attempt, or a :class:`Timeouts` (connect
      10 s, silence while reading 60 s, whole attempt 300 s);
    - ``retry``: a :class:`RetryPolicy` (5 attempts, backoff 0.5 s doubling to
      30 s with full jitter, 120 s per request, shared 2 s rate-limit cool-down);
    - ``lookahead``: pages in flight or parsed and waiting in a pull
      (default ``concurrency + 2``); bounds a pull's memory;
    - ``tz``: the account's time zone (e.g. ``ZoneInfo("Europe/Warsaw")``). The
      API's date-times carry no zone; by default they stay naive. With ``tz``
      they are read as aware date-times in that zone, and aware arguments are
      converted to it before they are sent;
    - ``strict`` (False): a record that cannot be read is rejected and the pull
      goes on (see ``on_reject`` of :meth:`call_history`); with True the first
      one raises :class:`~ccrm_async.ResponseError` naming the page, the uuid
      and the field path (for tests that must catch schema drift);
    - ``on_event``: a callable receiving :mod:`ccrm_async.events` (``"request"``,
      ``"retry"``, ``"rate_limit"``, ``"page"``, ``"pull"``) for metrics and
      logs; one that raises is logged and ignored;
    - ``trace_configs``: :class:`aiohttp.TraceConfig` objects for the client's
      session (OpenTelemetry's aiohttp instrumentation, say).

    A missing or malformed setting raises :class:`~ccrm_async.ConfigurationError`.
    Use it as an async context manager, or call :meth:`close` when done.
    """

    def __init__(
        self,
        account: str | None = None,
        token: str | None = None,
        *,
        base_url: str | None = None,
        concurrency: int = 8,
        max_rps: float | None = None,
        local_addr: str | None = None,
        proxy: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        lookahead: int | None = None,
        converter: cattrs.Converter | None = None,
        tz: tzinfo | None = None,
        strict: bool = False,
        on_event: EventCallback | None = None,
        trace_configs: Iterable[aiohttp.TraceConfig] | None = None,
        _clock: Clock | None = None,
        _resolver: AbstractResolver | None = None,
    ) -> None:
        credentials = resolve_credentials(
            account, token, base_url, product="CCRM", env_prefix="CCRM", host="{account}.ccrm.pl"
        )
        check_at_least_one("concurrency", concurrency)
        if lookahead is not None:
            check_at_least_one("lookahead", lookahead)
        self.account = credentials.account
        self.concurrency = concurrency
        self.lookahead = lookahead if lookahead is not None else concurrency + 2
        self.tz = tz
        self.strict = strict
        self._converter = converter or (make_converter(tz=tz) if tz is not None else LENIENT)
        self._transport = Transport(
            credentials.base_url,
            Secret(credentials.token),
            concurrency=concurrency,
            max_rps=max_rps,
            local_addr=local_addr,
            proxy=proxy,
            timeouts=timeouts(timeout),
            retry_policy=retry,
            clock=_clock,
            on_event=on_event,
            trace_configs=list(trace_configs) if trace_configs is not None else None,
            host_setting="the account (account=, --account or CCRM_ACCOUNT) "
            "or base_url (CCRM_BASE_URL)",
            # The default origin only ever resolves to public addresses (no DNS
            # rebinding into internal services); an explicit base_url (a test
            # server, a gateway) and a proxy (which resolves for us) are trusted.
            resolver=(
                PublicAddressResolver(_resolver)
                if credentials.default_origin and proxy is None
                else _resolver
            ),
        )
        self.custom_fields = CustomFields(self._transport, converter=self._converter)
        # Bodies received and not yet parsed, all pulls of the client together.
        self._budget = ByteBudget(BUFFER_BYTES)

    # -- call history ------------------------------------------------------

    def call_history(
        self, date_from: DateLike, date_to: DateLike, *, on_reject: RejectHandler | None = None
    ) -> Pull[CallRecord]:
        """Every contact-history event (calls, SMS, faxes) of a date range, once each.

        *date_from* and *date_to* are ``datetime``, ``date`` (a whole day) or
        ``"YYYY-MM-DD HH:MM:SS"``; ``date_from > date_to`` raises
        :class:`~ccrm_async.ValidationError` before any request. Pages are fetched
        concurrently and yielded in the API's order (newest first); when the
        data changed under the pull so that records may have been skipped, the
        range is read again (at most 3 times) and what those repair passes find
        comes last. The pull's :class:`~ccrm_async.PullStats` are on the
        returned object's ``stats``.

        A record that cannot be read does not stop the pull: it is counted in
        ``stats.rejected``, logged at WARNING (page, uuid, field path, never a
        value) and passed to *on_reject* once, as a
        :class:`~ccrm_async.RejectedRecord` holding it as received. Nothing is
        kept for you: store what you need in the callback (it runs in the
        event loop, between records; keep it quick). With ``strict=True`` on
        the client the first one raises :class:`~ccrm_async.ResponseError`.
        """
        stats = PullStats()
        wire_range = date_range(date_from, date_to, tz=self.tz)
        return Pull(self._calls(wire_range, stats, on_reject), stats)

    def _paged(
        self,
        path: str,
        cls: type[R],
        params: dict[str, str],
        *,
        stats: PullStats,
        counters: RequestCounters,
        lookahead: int,
        on_reject: RejectHandler | None,
        report: bool = False,
    ) -> AsyncIterator[R]:
        """Every record of a paged GET endpoint, through the one pagination engine;
        with *report*, a ``"pull"`` event when it ends."""
        converter, strict = self._converter, self.strict
        on_event = self._transport.on_event

        def parse(body: bytes, number: int) -> Page[R]:
            try:
                page = parse_page(body, cls, number, converter, strict=strict)
            except CCRMError as error:  # named as the transport names its errors
                if error.method is None:
                    error.method, error.path = "GET", path
                raise
            emit(on_event, PageEvent(path, number, len(page.records), page.total))
            return page

        def query(number: int) -> dict[str, str]:
            return {**params, "page": str(number)} if number > 1 else params

        async def fetch(number: int) -> bytes:
            return await self._transport.request(
                "GET", path, _body, params=query(number), counters=counters
            )

        async def refetch(number: int, error: ResponseError) -> Page[R]:
            await self._transport.retry_later(error, path=path, counters=counters)
            return await self._transport.request(
                "GET", path, partial(parse, number=number), params=query(number), counters=counters
            )

        def finished(completed: bool) -> None:
            emit(on_event, PullEvent(path, attrs.evolve(stats), completed))

        return paginate(
            PageSource(fetch, parse, refetch),
            key=_uuid,
            stats=stats,
            lookahead=lookahead,
            on_reject=on_reject,
            on_finish=finished if report and on_event is not None else None,
            budget=self._budget,
        )

    def _calls(
        self,
        wire_range: tuple[str, str],
        stats: PullStats,
        on_reject: RejectHandler | None,
        *,
        report: bool = True,
    ) -> AsyncIterator[CallRecord]:
        date_from, date_to = wire_range
        params = {"dateFrom": date_from, "dateTo": date_to}
        return self._paged(
            CALL_HISTORY_PATH,
            CallRecord,
            params,
            stats=stats,
            counters=stats,
            lookahead=self.lookahead,
            on_reject=on_reject,
            report=report,
        )

    async def notes(self, call_uuid: str, *, on_reject: RejectHandler | None = None) -> list[Note]:
        """The notes of one contact-history event, in the API's order; a note
        that cannot be read goes to *on_reject* (see :meth:`call_history`)."""
        notes = self._notes(call_uuid, RequestCounters(), on_reject)
        return [note async for note in notes]

    def _notes(
        self, call_uuid: str, counters: RequestCounters, on_reject: RejectHandler | None
    ) -> AsyncIterator[Note]:
        # Notes have their own page bookkeeping; requests and retries are
        # counted on the caller's counters (a pull's stats), and so are bent values.
        stats = PullStats()
        if isinstance(counters, PullStats):
            stats.bent_paths = counters.bent_paths
        return self._paged(
            NOTES_PATH,
            Note,
            {"callHistory": call_uuid},
            stats=stats,
            counters=counters,
            lookahead=1,
            on_reject=on_reject,
        )

    def call_history_with_notes(
        self,
        date_from: DateLike,
        date_to: DateLike,
        *,
        window: int = 1000,
        on_reject: RejectHandler | None = None,
    ) -> Pull[tuple[CallRecord, list[Note]]]:
        """Every event of the range with its notes, as ``(call, notes)`` in call order.

        Notes are requested only for calls whose note flag is set, or unknown
        (the API left it empty), concurrently with each other and with the next
        pages (within the client's ``concurrency``). At most *window* (1000)
        calls wait for their notes at once. ``stats.notes`` counts the notes
        fetched. Unreadable calls and notes go to *on_reject*, as in
        :meth:`call_history`; ``stats.rejected`` counts both.
        """
        stats = PullStats()
        calls = self._calls(
            date_range(date_from, date_to, tz=self.tz), stats, on_reject, report=False
        )
        return Pull(self._with_notes(calls, stats, window, on_reject), stats)

    async def _with_notes(
        self,
        calls: AsyncIterator[CallRecord],
        stats: PullStats,
        size: int,
        on_reject: RejectHandler | None,
    ) -> AsyncIterator[tuple[CallRecord, list[Note]]]:
        def note_rejected(reject: RejectedRecord) -> None:
            stats.rejected += 1
            if on_reject is not None:
                on_reject(reject)

        async def notes_of(call: CallRecord) -> list[Note]:
            notes = [note async for note in self._notes(call.uuid, stats, note_rejected)]
            stats.notes += len(notes)
            return notes

        pairs = fan_out(  # set, or unknown: ask
            calls, notes_of, wanted=lambda call: call.has_notes is not False, size=size
        )
        completed = False
        try:
            async for pair in pairs:
                yield pair
            completed = True
        finally:
            await pairs.aclose()
            on_event = self._transport.on_event
            if on_event is not None:
                emit(on_event, PullEvent(CALL_HISTORY_PATH, attrs.evolve(stats), completed))

    # -- exports -------------------------------------------------------------

    async def export_people(
        self,
        columns: Iterable[str],
        *,
        receiver: ExportReceiver,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the job's deadline, not this call's
        path: str | os.PathLike[str] | None = None,
    ) -> ExportJob:
        """Ask CCRM for a people export; ``await`` the returned job for the file.

        *columns* are checked first against the documented people columns (and
        ``customFields.<uuid>``): an unknown one raises
        :class:`~ccrm_async.ValidationError` listing the allowed ones. The
        callback goes to *receiver*; without it within *timeout* seconds
        (1800) the job fails with :class:`~ccrm_async.ExportTimeout`. The file
        is saved to *path*, or in the receiver's directory.
        """
        return await start_export(
            self.transport, "people", columns, receiver=receiver, timeout=timeout, path=path
        )

    async def export_organisations(
        self,
        columns: Iterable[str],
        *,
        receiver: ExportReceiver,
        timeout: float = 1800.0,  # noqa: ASYNC109 - the job's deadline, not this call's
        path: str | os.PathLike[str] | None = None,
    ) -> ExportJob:
        """Ask CCRM for an organisations export; see :meth:`export_people`
        (the organisation columns differ: ``name``, ``nip``, ``people``, ...)."""
        return await start_export(
            self.transport, "organisations", columns, receiver=receiver, timeout=timeout, path=path
        )
