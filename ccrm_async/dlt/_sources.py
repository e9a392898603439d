"""The dlt sources: :func:`ccrm_source` (calls, notes, custom fields) and
:func:`intum_source` (deals).

Every resource is an async generator that dlt runs on an event loop of its
own; the API client is therefore created *inside* the generator, in that loop
(a client is bound to the loop it is first used in, see
:class:`~ccrm_async.EventLoopError`), and closed when the generator ends.
Rows leave as Arrow tables of at most :data:`ROWS_PER_TABLE` rows: a page of
the API at a time, never the whole range in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import pyarrow as pa
from dlt.common.schema.typing import TColumnSchema
from dlt.extract.incremental import Incremental
from dlt.extract.resource import DltResource
from dlt.extract.source import DltSource

from .._core.dates import DateLike
from ..client import CCRMClient
from ..config import RetryPolicy, Timeouts
from ..errors import ValidationError
from ..intum import IntumClient
from ..intum.validation import filter_params
from ..sinks import SETTLE_TIME
from ._tables import (
    calls_table,
    custom_fields_table,
    deals_table,
    notes_table,
)

__all__ = ["DEFAULT_TZ", "ROWS_PER_TABLE", "ccrm_source", "intum_source"]

T = TypeVar("T")

#: The account's zone when none is given.
DEFAULT_TZ = "Europe/Warsaw"
#: Rows per Arrow table yielded (one API page of calls).
ROWS_PER_TABLE = 1000

#: Column hints beyond what the Arrow schemas say: the keys dlt cannot infer.
_CALL_HINTS: dict[str, TColumnSchema] = {
    "uuid": {"nullable": False},
    # None when the API sent no readable date (a MySQL zero date): such a call
    # is loaded, never dropped, and counted in the pull's stats as bent.
    "call_date": {"data_type": "timestamp", "timezone": True, "nullable": True},
}
_NOTE_HINTS: dict[str, TColumnSchema] = {
    "uuid": {"nullable": False},
    "created": {"data_type": "timestamp", "timezone": True},
    "call_date": {"data_type": "timestamp", "timezone": True, "nullable": True},
}


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}", field="tz") from None


def _aware(value: DateLike, zone: ZoneInfo, *, end: bool, name: str) -> datetime:
    """A range bound as an aware date-time: a naive value is the account's wall
    clock; a ``date`` its first (or, as an end, last) second."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                f"{name} must be 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD', got {value!r}", field=name
            ) from None
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise ValidationError(f"{name} must be a datetime, a date or a string", field=name)
        value = datetime.combine(value, time(23, 59, 59) if end else time(0, 0, 0))
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def _account_label(client: CCRMClient | IntumClient) -> str:
    """The ``account`` column: the account name, else the base URL's host[:port]."""
    return client.account or urlsplit(client.base_url).netloc


async def _pages(items: AsyncIterable[T], size: int = ROWS_PER_TABLE) -> AsyncIterator[list[T]]:
    """*items* in lists of *size* (the last one shorter)."""
    page: list[T] = []
    async for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def ccrm_source(
    account: str | None = None,
    *,
    token: str | None = None,
    base_url: str | None = None,
    date_from: DateLike,
    date_to: DateLike | None = None,
    notes: bool = True,
    concurrency: int = 8,
    tz: str = DEFAULT_TZ,
    overlap: timedelta = SETTLE_TIME,
    custom_fields: bool = True,
    max_rps: float | None = None,
    local_addr: str | None = None,
    proxy: str | None = None,
    timeout: float | Timeouts | None = None,
    retry: RetryPolicy | None = None,
) -> DltSource:
    """A dlt source for one CCRM account.

    Credentials as :class:`~ccrm_async.CCRMClient` takes them: the arguments,
    else dlt's secrets (``sources.ccrm.token``, e.g. the environment variable
    ``SOURCES__CCRM__TOKEN`` or ``.dlt/secrets.toml``), else ``CCRM_ACCOUNT``,
    ``CCRM_TOKEN`` and ``CCRM_BASE_URL``. A missing or malformed setting
    raises here, as the client's constructor does, before any request; a bad
    *tz* or date range raises :class:`~ccrm_async.ValidationError`.

    Resources:

    - ``calls`` (table ``calls``): primary key ``uuid``, write disposition
      merge, incremental on ``call_date`` from *date_from* to *date_to*
      (``None``: up to now). The columns are the SQLite sink's (``uuid``,
      ``call_date``, ``direction``, ..., ``raw`` with the whole call as JSON)
      and ``account`` (the account name, or the base URL's host). ``call_date``
      is a timestamp with time zone: the API's wall clock read in *tz*
      (``"Europe/Warsaw"``). A later run of the same pipeline starts at the
      newest ``call_date`` it loaded less *overlap* (1 hour, the command
      line's ``calls sync`` rule), so calls still being connected then are
      fetched again; rows are merged by ``uuid``, never duplicated.
    - with *notes* (True), table ``notes``: one row per note (``uuid``,
      ``call_uuid``, ``created`` with time zone, ``plain_text``, ``text``,
      ``raw``, ``call_date`` of the call, ``account``); a call loaded again
      gets exactly the notes the API lists now (delete-insert by ``call_uuid``).
      One request per call that has notes.
    - with *custom_fields* (True), ``custom_fields``: the account's fields,
      both contact types, replaced on every run (only this account's rows).

    *concurrency* (8) requests in flight, pages and notes together;
    *max_rps*, *local_addr*, *proxy*, *timeout* and *retry* as for the client.
    """
    zone = _zone(tz)
    start = _aware(date_from, zone, end=False, name="date_from")
    stop = _aware(date_to, zone, end=True, name="date_to") if date_to is not None else None
    if stop is not None and start > stop:
        raise ValidationError("date_from is after date_to", field="date_from")
    token = token or _dlt_secret("sources.ccrm.token")

    def client() -> CCRMClient:
        return CCRMClient(
            account,
            token,
            base_url=base_url,
            concurrency=concurrency,
            max_rps=max_rps,
            local_addr=local_addr,
            proxy=proxy,
            timeout=timeout,
            retry=retry,
            tz=zone,
        )

    # Made here only to check the settings now; it opens nothing (a client
    # binds to a loop, and connects, on first use), so there is nothing to close.
    label = _account_label(client())

    resources = [_calls_resource(client, start, stop, overlap, notes=notes, label=label, tz=tz)]
    if custom_fields:
        resources.append(_custom_fields_resource(client, label))

    @dlt.source(name="ccrm", max_table_nesting=0)
    def ccrm() -> list[DltResource]:
        return resources

    return ccrm()


def _dlt_secret(key: str) -> str | None:
    value: object = dlt.secrets.get(key)
    return str(value) if value else None


def _calls_resource(
    client: Callable[[], CCRMClient],
    start: datetime,
    stop: datetime | None,
    overlap: timedelta,
    *,
    notes: bool,
    label: str,
    tz: str,
) -> DltResource:
    cursor: Incremental[datetime] = dlt.sources.incremental(
        "call_date",
        initial_value=start,
        lag=overlap.total_seconds(),
        allow_external_schedulers=False,
        # A call without a readable date is loaded, not dropped or fatal.
        on_cursor_value_missing="include",
    )
    notes_hints = dlt.mark.make_hints(
        table_name="notes",
        primary_key="uuid",
        merge_key="call_uuid",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        columns=_NOTE_HINTS,
    )

    async def calls(call_date: Incremental[datetime] = cursor) -> AsyncIterator[Any]:
        date_from = call_date.start_value or start
        date_to = stop or datetime.now(date_from.tzinfo).replace(microsecond=0)
        if date_from > date_to:
            return
        async with client() as crm:
            if not notes:
                async with crm.call_history(date_from, date_to) as pull:
                    async for page in _pages(pull):
                        yield calls_table(page, account=label, tz=tz)
                return
            async with crm.call_history_with_notes(date_from, date_to) as pulled:
                async for batch in _pages(pulled):
                    yield calls_table([call for call, _ in batch], account=label, tz=tz)
                    table = notes_table(batch, account=label, tz=tz)
                    if table.num_rows:
                        yield dlt.mark.with_hints(table, notes_hints, create_table_variant=True)

    return dlt.resource(
        calls,
        name="calls",
        primary_key="uuid",
        write_disposition="merge",
        columns=_CALL_HINTS,
    )


def _custom_fields_resource(client: Callable[[], CCRMClient], label: str) -> DltResource:
    async def custom_fields() -> AsyncIterator[pa.Table]:
        async with client() as crm:
            fields = await crm.custom_fields.list_all()
        yield custom_fields_table(fields, account=label)

    # Replaced on every run, but only this account's rows: several accounts
    # can share a dataset (delete-insert by ``account``).
    return dlt.resource(
        custom_fields,
        name="custom_fields",
        primary_key="uuid",
        merge_key="account",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )


def intum_source(
    account: str | None = None,
    *,
    token: str | None = None,
    base_url: str | None = None,
    filters: dict[str, object] | None = None,
    timeout: float | Timeouts | None = None,
    retry: RetryPolicy | None = None,
) -> DltSource:
    """A dlt source for one intum CRM account: resource ``deals`` (table
    ``deals``), merged by ``id``; every deal matching *filters* (see
    :meth:`~ccrm_async.intum.Deals.list`) on each run. Money columns
    (``total_amount_net``, ``total_amount_gross``) are exact decimals with two
    places; dates are dates; ``fields`` is JSON text; plus ``account``.

    Credentials: the arguments, else dlt's secret ``sources.intum.token``,
    else ``INTUM_ACCOUNT`` / ``INTUM_TOKEN``.
    """
    token = token or _dlt_secret("sources.intum.token")
    wanted = dict(filters or {})
    filter_params(wanted)  # a bad filter fails now, not in the middle of a run

    def client() -> IntumClient:
        return IntumClient(account, token, base_url=base_url, timeout=timeout, retry=retry)

    label = _account_label(client())  # checks the settings; opens nothing

    async def deals() -> AsyncIterator[pa.Table]:
        async with client() as intum, intum.deals.list(**wanted) as pull:
            async for page in _pages(pull):
                yield deals_table(page, account=label)

    resource = dlt.resource(deals, name="deals", primary_key="id", write_disposition="merge")

    @dlt.source(name="intum", max_table_nesting=0)
    def intum() -> list[DltResource]:
        return [resource]

    return intum()
