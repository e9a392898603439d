"""Reading what a PHP API really sends: pure functions over decoded JSON (no I/O).

The CCRM API is PHP behind nginx (see API-NOTES, "The API is PHP"). Beside the
documented shape of a record it sends, on any field:

- ``[]`` or ``{}`` where an object is documented and the object is absent;
- a single object wrapped in a one-element list (seed 002 even types ``to`` and
  ``from`` as *array*);
- a list as an object keyed ``"0"``, ``"1"``, ... (an array with gaps), or
  ``null`` for an empty list;
- numbers and 0/1 flags as strings, decimals with a comma, thousands with a
  space;
- MySQL zero dates ``0000-00-00 00:00:00`` for "no date".

:func:`read_value` walks a record against its :class:`Shape` (built from the
models by the converter) and returns the record in the documented spelling,
with every value it had to bend listed as ``(path, what)`` in *bends*. A value
it cannot read unambiguously raises :class:`Unreadable` naming the field path
and the problem, never the value (values can be personal data).

Forms the vendor's own examples use are the API's normal spelling and are not
counted as bent: ``0``/``1`` for flags, numbers where strings are documented
(``numberNotFormatted``), ``{}`` for an empty list, ``""`` for an absent
date-time, enum values in any letter case.

The converter only calls this for a record its fast path could not take as
it is, so a clean record costs nothing here.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from .dates import parse_datetime

__all__ = ["ZERO_DATE_PREFIX", "Bends", "Shape", "Unreadable", "read_value"]

#: MySQL's "no date": ``0000-00-00`` or ``0000-00-00 00:00:00``.
ZERO_DATE_PREFIX = "0000-00-00"

_INTEGER = re.compile(r"[+-]?\d+")
# Polish notation: an optional space (or no-break space) between thousands, and a
# comma or a dot before the decimals.
_DECIMAL = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0]\d{3})+(?:[.,]\d+)?|[+-]?\d+(?:[.,]\d+)?")
Bends = list[tuple[str, str]]
_KINDS = frozenset({"object", "list", "str", "int", "number", "bool", "datetime", "enum"})


class Unreadable(ValueError):
    """A value that has no one unambiguous reading. ``path`` is the field path
    (``to.number``, ``flags[].uuid``; ``""`` for the record itself) and
    ``problem`` says what is wrong, without the value."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'the record'}: {problem}")
        self.path = path
        self.problem = problem


@attrs.frozen
class Shape:
    """The documented shape of a wire value.

    ``kind`` is one of ``object``, ``list``, ``str``, ``int``, ``number``
    (int or float), ``bool``, ``datetime`` or ``enum``; ``optional`` says the
    value may be absent (``null``); ``required`` that an object must carry the
    key. ``fields`` (objects) maps wire keys to shapes; ``item`` is a list's.
    """

    kind: str
    optional: bool = False
    required: bool = False
    fields: tuple[tuple[str, Shape], ...] = ()
    item: Shape | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def read_value(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    """*value* in the documented spelling of *shape*; appends ``(path, what)``
    to *bends* for every value bent to fit; raises :class:`Unreadable`."""
    if value is None:
        if shape.kind == "list":
            bends.append((path, "null for a list"))
            return []
        if shape.optional:
            return None
        raise Unreadable(path, f"null for a required {shape.kind}")
    reader = _READERS[shape.kind]
    return reader(value, shape, path, bends)


def _absent(shape: Shape, path: str, bends: Bends, what: str) -> None:
    """An empty value for something optional: None, and the bend noted."""
    if not shape.optional:
        raise Unreadable(path, f"{what} for a required {shape.kind}")
    bends.append((path, what))


def _object(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, list):
        if not value:
            return _absent(shape, path, bends, "an empty list for an object")
        if len(value) == 1:
            bends.append((path, "an object wrapped in a list"))
            return read_value(value[0], shape, path, bends)
        raise Unreadable(path, f"{_type_name(value)} for one object")
    if not isinstance(value, dict):
        raise Unreadable(path, f"{_type_name(value)} for an object")
    if not value:
        return _absent(shape, path, bends, "an empty object for an object")
    out = dict(value)
    for key, field in shape.fields:
        if key in out:
            out[key] = read_value(out[key], field, _join(path, key), bends)
        elif field.required:
            raise Unreadable(_join(path, key), "missing")
    return out


def _list(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    items: list[Any]
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        if not value:
            return []  # PHP's empty array, as the seed itself sends it
        if all(isinstance(key, str) and key.isdigit() for key in value):
            bends.append((path, "a list keyed by index"))
            items = [value[key] for key in sorted(value, key=int)]
        elif shape.item is not None and shape.item.kind == "object":
            bends.append((path, "one object for a list"))
            items = [value]
        else:
            raise Unreadable(path, "an object for a list")
    elif shape.item is not None and shape.item.kind != "object":
        bends.append((path, "one value for a list"))
        items = [value]
    else:
        raise Unreadable(path, f"{_type_name(value)} for a list")
    item = shape.item
    if item is None:
        return list(items)
    item_path = f"{path}[]"
    return [read_value(entry, item, item_path, bends) for entry in items]


def _unwrap_scalar(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    """A one-element list around a scalar is its element (bent); anything else
    is unreadable as *shape*."""
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list | dict):
        bends.append((path, "a value wrapped in a list"))
        return read_value(value[0], shape, path, bends)
    raise Unreadable(path, f"{_type_name(value)} for {_NAMES[shape.kind]}")


def _str(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numbers where strings are documented: the seed's own habit
    return _unwrap_scalar(value, shape, path, bends)


def _int(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        bends.append((path, "a boolean for a number"))
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            bends.append((path, "a decimal for a whole number"))
            return int(value)
        raise Unreadable(path, "a fraction for a whole number")
    if isinstance(value, str):
        number = _parse_number(value, shape, path, bends)
        if number is None or isinstance(number, int):
            return number
        if number.is_integer():
            return int(number)
        raise Unreadable(path, "a fraction for a whole number")
    return _unwrap_scalar(value, shape, path, bends)


def _number(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _parse_number(value, shape, path, bends)
    return _unwrap_scalar(value, shape, path, bends)


def _parse_number(text: str, shape: Shape, path: str, bends: Bends) -> int | float | None:
    stripped = text.strip()
    if not stripped:
        _absent(shape, path, bends, "an empty string for a number")
        return None
    if _INTEGER.fullmatch(stripped):
        bends.append((path, "a number as a string"))
        return int(stripped)
    if _DECIMAL.fullmatch(stripped):
        bends.append((path, "a number in Polish notation"))
        plain = stripped.replace(" ", "").replace("\u00a0", "").replace(",", ".")
        return int(plain) if "." not in plain else float(plain)
    raise Unreadable(path, "a string that is not a number")


_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})


def _bool(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)  # 0/1: the documented spelling
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _TRUE or folded in _FALSE:
            bends.append((path, "a flag as a string"))
            return folded in _TRUE
        if not folded:
            return _absent(shape, path, bends, "an empty string for a flag")
        raise Unreadable(path, "a string that is not 0 or 1")
    return _unwrap_scalar(value, shape, path, bends)


def _datetime(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, str):
        if not value.strip():
            if shape.optional:
                return None  # the documented spelling of an absent date-time
            raise Unreadable(path, "an empty string for a required date-time")
        if value.startswith(ZERO_DATE_PREFIX):
            return _absent(shape, path, bends, "a zero date")
        try:
            parse_datetime(value)
        except ValueError:
            raise Unreadable(path, "a string that is not a date-time") from None
        return value
    return _unwrap_scalar(value, shape, path, bends)


def _enum(value: Any, shape: Shape, path: str, bends: Bends) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _unwrap_scalar(value, shape, path, bends)


_NAMES = {
    "str": "a string",
    "int": "a number",
    "number": "a number",
    "bool": "a 0/1 flag",
    "datetime": "a date-time",
    "enum": "a name",
}

_READERS = {
    "object": _object,
    "list": _list,
    "str": _str,
    "int": _int,
    "number": _number,
    "bool": _bool,
    "datetime": _datetime,
    "enum": _enum,
}
