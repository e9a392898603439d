"""What a call looks like in each sink (pure: no I/O).

- :func:`call_object`: the JSONL object, the API's own camelCase keys (the
  converter's spelling, values normalised: enums in lower case, dates as
  ``YYYY-MM-DD HH:MM:SS``), with a ``notes`` list when notes were pulled; each
  note keeps its ``uuid`` and ``text`` (as sent) and gains ``plainText``.
- :func:`csv_columns` / :func:`csv_row`: one flat row per call. Nested objects
  become dotted columns (``to.number``, ``userTalk.status``); lists
  (``flags``, ``userTalk.receivers``, ``notes``) are JSON in one cell. The
  columns follow the model, so every file has the same header.
- :func:`sqlite_call_row` / :func:`sqlite_note_row`: the useful columns of the
  ``calls`` and ``notes`` tables plus the raw JSON. The one record-to-row
  mapping of the library: the SQLite sink stores these rows, and
  :mod:`ccrm_async.dlt` turns them into Arrow tables with the same column names.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from types import UnionType
from typing import Any

import attrs
import orjson

from ..converter import LENIENT, wire_names
from ..models import CallRecord, Note

__all__ = [
    "CALL_COLUMNS",
    "NOTE_COLUMNS",
    "call_object",
    "csv_cell",
    "csv_columns",
    "csv_row",
    "note_object",
    "sqlite_call_row",
    "sqlite_note_row",
]

#: Columns of the SQLite ``calls`` table, in order (``raw``: the JSONL object, notes apart).
CALL_COLUMNS = (
    "uuid",
    "call_date",
    "direction",
    "service",
    "status",
    "duration",
    "has_notes",
    "from_number",
    "to_number",
    "external_number",
    "destination",
    "raw",
)
#: Columns of the SQLite ``notes`` table, in order.
NOTE_COLUMNS = ("uuid", "call_uuid", "created", "plain_text", "text", "raw")

#: Extra CSV columns when notes are pulled: the notes as JSON, and their plain texts.
NOTES_COLUMN = "notes"
NOTES_TEXT_COLUMN = "notesPlainText"
#: Plain texts of several notes in one CSV cell are separated by this line.
NOTES_SEPARATOR = "\n---\n"


def note_object(note: Note) -> dict[str, Any]:
    """A note in the API's keys, plus ``plainText``."""
    body: dict[str, Any] = LENIENT.unstructure(note)
    body["plainText"] = note.plain_text
    return body


def call_object(call: CallRecord, notes: Sequence[Note] | None = None) -> dict[str, Any]:
    """A call in the API's keys; with *notes* (even empty) a ``notes`` list too."""
    body: dict[str, Any] = LENIENT.unstructure(call)
    if notes is not None:
        body[NOTES_COLUMN] = [note_object(note) for note in notes]
    return body


def _model_of(hint: Any) -> type | None:
    """The attrs class of a field's type (``X`` or ``X | None``), else None."""
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = inner[0] if len(inner) == 1 else None
    return hint if isinstance(hint, type) and attrs.has(hint) else None


def _paths(cls: type, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    hints = typing.get_type_hints(cls)
    names = wire_names(cls)
    paths: list[tuple[str, ...]] = []
    for field in attrs.fields(cls):
        path = (*prefix, names[field.name])
        model = _model_of(hints[field.name])
        paths.extend(_paths(model, path) if model is not None else [path])
    return paths


_CALL_PATHS = tuple(_paths(CallRecord, ()))


def csv_columns(*, notes: bool) -> list[str]:
    """The CSV header: the call's flattened keys, then the notes columns if pulled."""
    columns = [".".join(path) for path in _CALL_PATHS]
    if notes:
        columns += [NOTES_COLUMN, NOTES_TEXT_COLUMN]
    return columns


def csv_cell(value: Any) -> str:
    """A value as CSV text: ``None`` empty, booleans ``true``/``false``, lists and
    objects as JSON, anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def csv_row(obj: dict[str, Any], *, notes: bool) -> list[str]:
    """A :func:`call_object` as the cells of :func:`csv_columns`."""
    row = []
    for path in _CALL_PATHS:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        row.append(csv_cell(value))
    if notes:
        listed = obj.get(NOTES_COLUMN) or []
        row.append(csv_cell(listed))
        row.append(NOTES_SEPARATOR.join(note.get("plainText", "") for note in listed))
    return row


def _number(side: Any) -> str | None:
    """The dialled form of a number: as formatted by the API, else the raw digits."""
    if not isinstance(side, dict):
        return None
    value = side.get("number") or side.get("numberFormatted") or side.get("numberNotFormatted")
    return str(value) if value is not None else None


def sqlite_call_row(obj: dict[str, Any]) -> tuple[Any, ...]:
    """A :func:`call_object` (its ``notes`` are left out of ``raw``) as the
    ``calls`` columns of :data:`CALL_COLUMNS`."""
    raw = {key: value for key, value in obj.items() if key != NOTES_COLUMN}
    return (
        obj["uuid"],
        obj["callDate"],
        obj.get("callDirection"),
        obj.get("service"),
        obj.get("status"),
        obj.get("duration"),
        None if obj.get("note") is None else bool(obj["note"]),  # SQLite: 1/0, NULL unknown
        _number(obj.get("from")),
        _number(obj.get("to")),
        _number(obj.get("externalNumber")),
        obj.get("destination"),
        orjson.dumps(raw).decode(),
    )


def sqlite_note_row(note: dict[str, Any], call_uuid: str) -> tuple[Any, ...]:
    """A :func:`note_object` of call *call_uuid* as the ``notes`` columns."""
    return (
        note["uuid"],
        call_uuid,
        note.get("created"),
        note.get("plainText"),
        note.get("text"),
        orjson.dumps(note).decode(),
    )
