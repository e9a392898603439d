"""Calls, notes, custom fields and deals as Arrow tables (no I/O).

The rows come from the library's one record-to-row mapping
(:func:`~ccrm_async.sinks._records.sqlite_call_row` and
:func:`~ccrm_async.sinks._records.sqlite_note_row`), so the columns have the
SQLite sink's names; each table gets an ``account`` column. Every schema is
explicit, so a field that is empty on every row of a load is still a column.

Date-times: the API sends the account's wall clock without a zone. They
become ``timestamp[us, UTC]`` values read in the account's zone *tz*: a wall
clock that occurs twice (the autumn change) is taken as its first occurrence,
one in the spring gap as if the clock had not moved on yet, like
``datetime.replace(tzinfo=ZoneInfo(...))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._core.dates import WIRE_FORMAT
from ..converter import LENIENT
from ..intum import Deal
from ..intum.models import DATE_FIELDS, DEAL_FIELDS, ID_FIELDS, MONEY_FIELDS
from ..models import CallRecord, Note
from ..models.custom_fields import CustomField
from ..sinks._records import (
    CALL_COLUMNS,
    NOTE_COLUMNS,
    call_object,
    note_object,
    sqlite_call_row,
    sqlite_note_row,
)

__all__ = [
    "CALLS_SCHEMA",
    "CUSTOM_FIELDS_SCHEMA",
    "DEALS_SCHEMA",
    "MONEY_TYPE",
    "NOTES_SCHEMA",
    "calls_table",
    "custom_fields_table",
    "deals_table",
    "notes_table",
    "wall_clock_to_utc",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
_CENT = Decimal("0.01")
#: Money columns: exact decimals with two places (a value with more places is
#: refused, never rounded), room for 36 digits before the point.
MONEY_TYPE = pa.decimal128(38, 2)

_CALL_TYPES: Mapping[str, pa.DataType] = {
    "call_date": TIMESTAMP,
    "duration": pa.int64(),
    "has_notes": pa.bool_(),
}
_NOTE_TYPES: Mapping[str, pa.DataType] = {"created": TIMESTAMP}
_CALL_DATE = CALL_COLUMNS.index("call_date")
_REQUIRED = ("uuid", "call_uuid")  # call_date is None for a zero-dated call
_CREATED = NOTE_COLUMNS.index("created")


def _schema(
    columns: Sequence[str], types: Mapping[str, pa.DataType], *extra: pa.Field
) -> pa.Schema:
    fields = [
        pa.field(name, types.get(name, pa.string()), nullable=name not in _REQUIRED)
        for name in columns
    ]
    return pa.schema([*fields, *extra])


_ACCOUNT = pa.field("account", pa.string(), nullable=False)
#: The ``calls`` table: the SQLite sink's columns, then ``account``.
CALLS_SCHEMA = _schema(CALL_COLUMNS, _CALL_TYPES, _ACCOUNT)
#: The ``notes`` table: the SQLite sink's columns, ``account``, and the call's
#: ``call_date`` (the incremental cursor of the resource that loads them).
NOTES_SCHEMA = _schema(NOTE_COLUMNS, _NOTE_TYPES, pa.field("call_date", TIMESTAMP), _ACCOUNT)
#: The ``custom_fields`` table: one row per field, its parameters as JSON.
CUSTOM_FIELDS_SCHEMA = pa.schema(
    [
        pa.field("uuid", pa.string(), nullable=False),
        pa.field("type", pa.string()),
        pa.field("name", pa.string()),
        pa.field("required", pa.bool_()),
        pa.field("contact_types", pa.string()),
        pa.field("can_delete", pa.bool_()),
        pa.field("raw", pa.string(), nullable=False),
        _ACCOUNT,
    ]
)


def _deal_type(name: str) -> pa.DataType:
    if name in MONEY_FIELDS:
        return MONEY_TYPE
    if name in DATE_FIELDS:
        return pa.date32()
    if name in ID_FIELDS:
        return pa.int64()
    return pa.string()  # text, and ``fields`` as JSON


#: The ``deals`` table: ``id``, every deal field, ``account``.
DEALS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        *(pa.field(name, _deal_type(name)) for name in DEAL_FIELDS),
        _ACCOUNT,
    ]
)


def wall_clock_to_utc(values: Sequence[str | None], tz: str) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` wall-clock strings of zone *tz* as UTC timestamps
    (see the module docstring for the hours a clock change repeats or skips)."""
    naive = pc.strptime(pa.array(values, pa.string()), format=WIRE_FORMAT, unit="us")
    try:
        zoned = pc.assume_timezone(naive, tz, ambiguous="earliest", nonexistent="raise")
    except pa.ArrowInvalid:
        # A wall clock in the spring gap (rare: the hour does not exist, so only
        # odd data has it): read row by row as zoneinfo does.
        zone = ZoneInfo(tz)
        aware = [
            None if v is None else datetime.strptime(v, WIRE_FORMAT).replace(tzinfo=zone)
            for v in values
        ]
        return pa.array(aware, TIMESTAMP)
    return zoned.cast(TIMESTAMP)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[Sequence[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _table(schema: pa.Schema, columns: Sequence[Sequence[Any]], account: str) -> pa.Table:
    """*columns* are the schema's fields but the last, ``account``."""
    assert schema.names[-1] == "account" and len(columns) == len(schema) - 1
    arrays = [pa.array(values, field.type) for field, values in zip(schema, columns, strict=False)]
    rows = len(arrays[0])
    arrays.append(pa.array([account] * rows, pa.string()))
    return pa.Table.from_arrays(arrays, schema=schema)


def calls_table(calls: Sequence[CallRecord], *, account: str, tz: str) -> pa.Table:
    """Calls as a ``calls`` table (:data:`CALLS_SCHEMA`); *tz* is the account's zone."""
    columns = _columns([sqlite_call_row(call_object(call)) for call in calls], len(CALL_COLUMNS))
    columns[_CALL_DATE] = wall_clock_to_utc(columns[_CALL_DATE], tz)
    return _table(CALLS_SCHEMA, columns, account)


def notes_table(
    notes: Iterable[tuple[CallRecord, Sequence[Note]]], *, account: str, tz: str
) -> pa.Table:
    """The notes of calls as a ``notes`` table (:data:`NOTES_SCHEMA`), one row per note."""
    rows: list[tuple[Any, ...]] = []
    call_dates: list[str] = []
    for call, call_notes in notes:
        if not call_notes:
            continue
        call_date = call_object(call)["callDate"]
        for note in call_notes:
            rows.append(sqlite_note_row(note_object(note), call.uuid))
            call_dates.append(call_date)
    columns = _columns(rows, len(NOTE_COLUMNS))
    columns[_CREATED] = wall_clock_to_utc(columns[_CREATED], tz)
    columns.append(wall_clock_to_utc(call_dates, tz))
    return _table(NOTES_SCHEMA, columns, account)


def custom_fields_table(fields: Iterable[CustomField], *, account: str) -> pa.Table:
    """Custom fields as a ``custom_fields`` table (:data:`CUSTOM_FIELDS_SCHEMA`)."""
    rows = []
    for field in fields:
        raw: dict[str, Any] = LENIENT.unstructure(field)
        rows.append(
            (
                field.uuid,
                field.type.value,
                field.name,
                field.required,
                ",".join(field.contact_types),
                field.can_delete,
                orjson.dumps(raw).decode(),
            )
        )
    return _table(CUSTOM_FIELDS_SCHEMA, _columns(rows, len(CUSTOM_FIELDS_SCHEMA) - 1), account)


def deals_table(deals: Sequence[Deal], *, account: str) -> pa.Table:
    """Deals as a ``deals`` table (:data:`DEALS_SCHEMA`): money exact, dates as dates,
    ``fields`` as JSON. Raises ``ValueError`` naming the deal and field for an
    amount with more than two decimal places (it would not fit exactly)."""
    names = ("id", *DEAL_FIELDS)
    columns: list[list[Any]] = [[] for _ in names]
    for deal in deals:
        for index, name in enumerate(names):
            value = getattr(deal, name)
            if name == "fields" and value is not None:
                value = orjson.dumps(value).decode()
            elif name in MONEY_FIELDS and value is not None and value != value.quantize(_CENT):
                raise ValueError(
                    f"deal {deal.id}: {name} has more than two decimal places; "
                    "it cannot be stored exactly as money"
                )
            columns[index].append(value)
    return _table(DEALS_SCHEMA, columns, account)
