"""IntumClient: the deals API of intum CRM (``https://{account}.intum.com``, seed 004).

The client reuses the library's :class:`~ccrm_async.transport.Transport` (one
session, the retry policy, the error tree) with an intum error map. Only the
create is special: the API has no idempotency key, so a create is sent with
``idempotent=False`` and never retried blindly once its bytes may have reached
the server. See :meth:`Deals.create`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Final

import aiohttp
import attrs

from .._client_base import APIClient, check_at_least_one, resolve_credentials, timeouts
from ..config import RetryPolicy, Secret, Timeouts
from ..errors import CCRMError, ConfigurationError, NotFoundError, ResponseError, ValidationError
from ..events import EventCallback, PageEvent, PullEvent, emit
from ..pagination import Pull, PullStats
from ..transport import Clock, Transport
from . import _wire
from .models import Deal
from .validation import (
    filter_params,
    validate_app_code,
    validate_changes,
    validate_deal,
    validate_external_ref,
    validate_id,
)

__all__ = ["DEFAULT_APP_CODE", "Deals", "IntumClient"]

log = logging.getLogger("ccrm_async.intum")

#: The app code this library files external ids under unless told otherwise.
DEFAULT_APP_CODE: Final = "ccrm_async"


def _ignore_body(body: bytes) -> None:
    return None


def _encode(build: Callable[[Any], dict[str, object]], value: Any) -> dict[str, object]:
    try:
        return build(value)
    except ValueError as exc:  # only ``fields`` can hold a value with no JSON form
        raise ValidationError(f"fields: {exc}", field="fields") from None


class Deals:
    """The deals ("interesy") of an account: ``client.deals``."""

    def __init__(self, transport: Transport, app_code: str) -> None:
        self._transport = transport
        self._app_code = app_code

    def list(self, **filters: object) -> Pull[Deal]:
        """Every deal matching *filters*, page by page, each deal once.

        Filters (all optional, ``None`` means unset): ``q`` (text searched in
        name, description and the client's e-mail), ``client_id``,
        ``status_id``, ``responsible_id``, ``department_id``, ``project_id``,
        ``main_date_from`` / ``main_date_to`` (``date`` or ``"YYYY-MM-DD"``),
        ``total_amount_gross_from`` / ``_to`` (``Decimal``, ``int`` or a numeric
        string). Any other name raises :class:`~ccrm_async.ValidationError` at
        once, before a request.

        Pages of 100 (``page`` from 1, ``per_page=100``) are fetched one after
        the other until one comes back with fewer than 100 deals. Deals are
        de-duplicated by ``id`` (an insertion while paging shifts a deal into
        the next page); ``stats`` counts pages, requests, retries and dropped
        duplicates. A deal deleted while paging can shift another into a page
        already read: the API states no total, so that cannot be detected.
        """
        params = filter_params(filters)
        stats = PullStats()
        return Pull(self._pages(params, stats), stats)

    async def _pages(self, params: dict[str, str], stats: PullStats) -> AsyncIterator[Deal]:
        completed = False
        try:
            async for deal in self._deals(params, stats):
                yield deal
            completed = True
        finally:
            on_event = self._transport.on_event
            if on_event is not None:
                emit(on_event, PullEvent(_wire.DEALS_PATH, attrs.evolve(stats), completed))

    async def _deals(self, params: dict[str, str], stats: PullStats) -> AsyncIterator[Deal]:
        seen: set[int] = set()
        page = 1
        while True:
            query = {**params, "page": str(page), "per_page": str(_wire.PER_PAGE)}
            deals = await self._transport.request(
                "GET", _wire.DEALS_PATH, _wire.parse_deals, params=query, counters=stats
            )
            stats.pages += 1
            emit(self._transport.on_event, PageEvent(_wire.DEALS_PATH, page, len(deals), None))
            fresh = 0
            for deal in deals:
                if deal.id is not None:
                    if deal.id in seen:
                        stats.duplicates_dropped += 1
                        continue
                    seen.add(deal.id)
                fresh += 1
                stats.records += 1
                yield deal
            if len(deals) < _wire.PER_PAGE:
                return
            if not fresh:
                # A full page of deals already seen: the server is not paging.
                raise ResponseError(
                    f"page {page} repeated only deals already listed; "
                    "the server seems to ignore page=",
                    method="GET",
                    path=_wire.DEALS_PATH,
                )
            page += 1

    async def get(self, deal_id: int | str, /) -> Deal:
        """The deal with this id; :class:`~ccrm_async.NotFoundError` when there is none."""
        path = _wire.deal_path(validate_id(deal_id))
        return await self._transport.request("GET", path, _wire.parse_deal)

    async def get_by_external_id(self, app_code: str, external_id: str | int) -> Deal:
        """The deal filed under *external_id* by the integrating system
        *app_code*; :class:`~ccrm_async.NotFoundError` when there is none."""
        path = _wire.external_path(*validate_external_ref(app_code, external_id))
        # An external id may be an e-mail or a phone number: log the route, not the path.
        route = "/crm/deals/e/{app_code}/{external_id}.json"
        return await self._transport.request("GET", path, _wire.parse_deal, route=route)

    async def create(self, deal: Deal) -> Deal:
        """Create *deal* (its ``id`` is ignored) and return it as the server
        stored it.

        The deal is validated first (:func:`~ccrm_async.intum.validate_deal`).
        The request is never retried blindly once it may have reached the
        server (RELIABILITY item 32). When such an ambiguous failure happens
        (the connection dropped after sending, a timeout, a 5xx, a 2xx body that
        cannot be read):

        - with an ``external_id``, the deal is looked up under the client's
          ``app_code``: found, it is returned; not found, the create is sent
          once more, and a second ambiguous failure is settled the same way.
          The external id is taken as the deal's identity in your system: a
          deal already filed under it is the one this create meant;
        - without one, the error is raised with ``ambiguous = True``: the deal
          may or may not exist, and only the caller can tell.
        """
        validate_deal(deal)
        if deal.external_id is not None:
            validate_external_ref(self._app_code, deal.external_id)
        payload = {"deal": _encode(_wire.deal_to_wire, deal)}
        external_id = deal.external_id
        if external_id is None:
            return await self._post(payload)  # an ambiguous error is the caller's
        for last in (False, True):
            try:
                return await self._post(payload)
            except CCRMError as error:
                if not error.ambiguous:
                    raise
                found = await self._settle(error, external_id)
                if found is not None:
                    return found
                if last:
                    raise
            log.debug("create: no deal under its external id; sending it once more")
        raise AssertionError("unreachable: the loop returns or raises")

    async def _post(self, payload: Mapping[str, object]) -> Deal:
        return await self._transport.request(
            "POST", _wire.DEALS_PATH, _wire.parse_created, json=payload, idempotent=False
        )

    async def _settle(self, failure: CCRMError, external_id: str) -> Deal | None:
        """After an ambiguous create: the deal if the server has it, ``None`` if
        it surely does not. When the lookup itself fails, *failure* is raised."""
        log.debug("create may have taken effect (%s); looking it up by external id", failure)
        try:
            return await self.get_by_external_id(self._app_code, external_id)
        except NotFoundError:
            return None
        except CCRMError as lookup_error:
            raise failure from lookup_error

    async def update(self, deal_id: int | str, /, **changes: object) -> Deal:
        """Change the given fields of a deal (PATCH with exactly those fields)
        and return the deal as stored.

        The changes are validated like a create's fields, partially: each
        amount below 1e12, gross >= net when both are given, ``tax`` and the
        amounts cannot be cleared, ``closed`` is ``win``/``lost``/empty. Rules
        across stored and new values (a new net above the stored gross) are
        the server's to check; its 422 raises :class:`~ccrm_async.ValidationError`
        with its messages in ``errors``.
        """
        path = _wire.deal_path(validate_id(deal_id))
        converted = validate_changes(changes)
        payload = {"deal": _encode(_wire.changes_to_wire, converted)}
        updated = await self._transport.request("PATCH", path, _wire.parse_updated, json=payload)
        return updated if updated is not None else await self.get(deal_id)

    async def delete(self, deal_id: int | str, /) -> None:
        """Delete a deal; :class:`~ccrm_async.NotFoundError` when there is none.

        A DELETE is retried like a read, so when an answer is lost and the
        retry finds the deal already gone, that too is a
        :class:`~ccrm_async.NotFoundError`: either way the deal no longer exists.
        """
        path = _wire.deal_path(validate_id(deal_id))
        await self._transport.request("DELETE", path, _ignore_body)


class IntumClient(APIClient):
    """An asyncio client for one intum CRM account.

    Keywords (all optional but an account or base URL, and a token):

    - ``account``: the ``{account}`` of ``{account}.intum.com`` (env ``INTUM_ACCOUNT``);
    - ``token``: the API token, sent as ``Authorization: Bearer``; it needs the
      ``crm`` permission (env ``INTUM_TOKEN``); never shown by ``repr``;
    - ``base_url``: overrides ``https://{account}.intum.com`` (env
      ``INTUM_BASE_URL``), e.g. the emulator's address;
    - ``app_code`` (``"ccrm_async"``): the integrating system's code under which
      deals' ``external_id`` values are looked up
      (``/crm/deals/e/{app_code}/{external_id}.json``) when a create must be
      reconciled; set it to the code your account files your external ids under;
    - ``concurrency`` (8): requests in flight for the whole client;
    - ``max_rps`` (none): a cap on request starts per second;
    - ``local_addr``: the source IP every connection is bound to;
    - ``proxy``: an HTTP proxy URL for every request;
    - ``timeout``: seconds for one attempt, or a :class:`~ccrm_async.Timeouts`
      (connect 10 s, silence while reading 60 s, whole attempt 300 s);
    - ``retry``: a :class:`~ccrm_async.RetryPolicy` (5 attempts, backoff 0.5 s
      doubling to 30 s with full jitter, 120 s per request). Reads, updates and
      deletes are retried; a create never blindly (see :meth:`Deals.create`);
    - ``on_event``: a callable receiving :mod:`ccrm_async.events` (``"request"``,
      ``"retry"``, ``"rate_limit"``, ``"page"``, ``"pull"``); one that raises is
      logged and ignored;
    - ``trace_configs``: :class:`aiohttp.TraceConfig` objects for the session.

    A missing or malformed setting raises :class:`~ccrm_async.ConfigurationError`.

    Use it as an async context manager, or call :meth:`close` when done.
    """

    def __init__(
        self,
        account: str | None = None,
        token: str | None = None,
        *,
        base_url: str | None = None,
        app_code: str = DEFAULT_APP_CODE,
        concurrency: int = 8,
        max_rps: float | None = None,
        local_addr: str | None = None,
        proxy: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        on_event: EventCallback | None = None,
        trace_configs: Iterable[aiohttp.TraceConfig] | None = None,
        _clock: Clock | None = None,
    ) -> None:
        credentials = resolve_credentials(
            account,
            token,
            base_url,
            product="intum",
            env_prefix="INTUM",
            host="{account}.intum.com",
        )
        check_at_least_one("concurrency", concurrency)
        try:
            validate_app_code(app_code)
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        self.account = credentials.account
        self.app_code = app_code
        self.concurrency = concurrency
        self._transport = Transport(
            credentials.base_url,
            Secret(credentials.token),
            concurrency=concurrency,
            max_rps=max_rps,
            local_addr=local_addr,
            proxy=proxy,
            timeouts=timeouts(timeout),
            retry_policy=retry,
            error_map=_wire.error_for_status,
            clock=_clock,
            on_event=on_event,
            trace_configs=list(trace_configs) if trace_configs is not None else None,
            host_setting="the account (account= or INTUM_ACCOUNT) or base_url (INTUM_BASE_URL)",
        )
        self.deals = Deals(self._transport, app_code)

    def __repr__(self) -> str:
        local = f", local_addr={self.local_addr!r}" if self.local_addr else ""
        return (
            f"IntumClient(base_url={self.base_url!r}, app_code={self.app_code!r}, "
            f"concurrency={self.concurrency}{local})"
        )
