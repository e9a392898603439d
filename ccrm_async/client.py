"""CCRMClient: the Telecube CRM public API (``https://{account}.ccrm.pl/publicApi/``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from datetime import tzinfo
from functools import partial
from typing import Protocol, TypeVar

import cattrs
from aiohttp.abc import AbstractResolver

from ._client_base import APIClient, resolve_credentials, timeouts
from ._core.dates import DateLike, date_range
from .config import RetryPolicy, Secret, Timeouts
from .converter import LENIENT, make_converter
from .custom_fields import CustomFields
from .exports import ExportJob, ExportReceiver, start_export
from .models import CallRecord, Note
from .pagination import OrderedWindow, Page, Pull, PullStats, paginate
from .parsing import parse_page
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
      converted to it before they are sent.

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
        _clock: Clock | None = None,
        _resolver: AbstractResolver | None = None,
    ) -> None:
        credentials = resolve_credentials(
            account, token, base_url, product="CCRM", env_prefix="CCRM", host="{account}.ccrm.pl"
        )
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self.account = credentials.account
        self.concurrency = concurrency
        self.lookahead = lookahead if lookahead is not None else concurrency + 2
        self.tz = tz
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

    # -- call history ------------------------------------------------------

    def call_history(self, date_from: DateLike, date_to: DateLike) -> Pull[CallRecord]:
        """Every contact-history event (calls, SMS, faxes) of a date range, once each.

        *date_from* and *date_to* are ``datetime``, ``date`` (a whole day) or
        ``"YYYY-MM-DD HH:MM:SS"``; ``date_from > date_to`` raises
        :class:`~ccrm_async.ValidationError` before any request. Pages are fetched
        concurrently and yielded in the API's order (newest first); the pull's
        :class:`~ccrm_async.PullStats` are on the returned object's ``stats``.
        """
        stats = PullStats()
        return Pull(self._calls(date_range(date_from, date_to, tz=self.tz), stats), stats)

    def _paged(
        self,
        path: str,
        cls: type[R],
        params: dict[str, str],
        *,
        stats: PullStats,
        counters: RequestCounters,
        lookahead: int,
    ) -> AsyncIterator[R]:
        """Every record of a paged GET endpoint, through the one pagination engine."""

        async def fetch(number: int) -> Page[R]:
            query = {**params, "page": str(number)} if number > 1 else params
            return await self._transport.request(
                "GET",
                path,
                partial(parse_page, cls=cls, number=number, converter=self._converter),
                params=query,
                counters=counters,
            )

        return paginate(fetch, key=_uuid, stats=stats, lookahead=lookahead)

    def _calls(self, wire_range: tuple[str, str], stats: PullStats) -> AsyncIterator[CallRecord]:
        date_from, date_to = wire_range
        params = {"dateFrom": date_from, "dateTo": date_to}
        return self._paged(
            CALL_HISTORY_PATH,
            CallRecord,
            params,
            stats=stats,
            counters=stats,
            lookahead=self.lookahead,
        )

    async def notes(self, call_uuid: str) -> list[Note]:
        """The notes of one contact-history event, in the API's order."""
        return [note async for note in self._notes(call_uuid, RequestCounters())]

    def _notes(self, call_uuid: str, counters: RequestCounters) -> AsyncIterator[Note]:
        # Notes have their own page bookkeeping; requests and retries are
        # counted on the caller's counters (a pull's stats).
        return self._paged(
            NOTES_PATH,
            Note,
            {"callHistory": call_uuid},
            stats=PullStats(),
            counters=counters,
            lookahead=1,
        )

    def call_history_with_notes(
        self, date_from: DateLike, date_to: DateLike, *, window: int = 1000
    ) -> Pull[tuple[CallRecord, list[Note]]]:
        """Every event of the range with its notes, as ``(call, notes)`` in call order.

        Notes are requested only for calls whose note flag is set, concurrently
        with each other and with the next pages (within the client's
        ``concurrency``). At most *window* (1000) calls wait for their notes at
        once. ``stats.notes`` counts the notes fetched.
        """
        stats = PullStats()
        calls = self._calls(date_range(date_from, date_to, tz=self.tz), stats)
        return Pull(self._with_notes(calls, stats, window), stats)

    async def _with_notes(
        self, calls: AsyncIterator[CallRecord], stats: PullStats, size: int
    ) -> AsyncIterator[tuple[CallRecord, list[Note]]]:
        pending: OrderedWindow[tuple[CallRecord, list[Note]]] = OrderedWindow(size)

        async def with_notes(call: CallRecord) -> tuple[CallRecord, list[Note]]:
            notes = [note async for note in self._notes(call.uuid, stats)]
            stats.notes += len(notes)
            return call, notes

        try:
            async for call in calls:
                while pending.full or pending.head_done():
                    yield await pending.next()
                if call.has_notes:
                    pending.submit(with_notes, call)
                else:
                    pending.submit_result((call, []))
            while len(pending):
                yield await pending.next()
        finally:
            await pending.close()
            aclose = getattr(calls, "aclose", None)
            if aclose is not None:
                await aclose()

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
            self, "people", columns, receiver=receiver, timeout=timeout, path=path
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
            self, "organisations", columns, receiver=receiver, timeout=timeout, path=path
        )
