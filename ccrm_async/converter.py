"""Wire format <-> models: the only module that knows the API's spellings.

Two private cattrs converters are built from the same rules:

- ``LENIENT`` (the default, used by the clients): unknown keys are ignored,
  ``detailed_validation`` is off for speed;
- ``STRICT`` (for tests): unknown keys are an error, so a schema change in the
  API's answers shows up as a failing test instead of silently lost data.

The quirks absorbed here, all seen in the vendor's documentation:

- camelCase keys, plus renames (``callDirection`` -> ``direction``, ``note`` ->
  ``has_notes``, ``from`` -> ``from_``, ``pin`` -> ``pinned``, ``edit`` -> ``edited``);
- ``flags[].relUuid`` also spelled ``reluuid``;
- enums in any case (``IN``/``in``, ``noAnswer``/``NO_ANSWER``), unknown values kept
  (see :class:`~ccrm_async.models._enum.WireEnum`);
- numbers sent as strings and strings as numbers (``numberNotFormatted``);
- booleans as ``0``/``1``, ``"0"``/``"1"`` or ``true``/``false``;
- lists sent as ``{}`` when empty (``files``), or as objects keyed by index;
- an empty string where a date-time is optional.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._core.dates import format_datetime, parse_datetime
from .models import calls, notes
from .models._enum import WireEnum

__all__ = ["LENIENT", "STRICT", "make_converter", "to_camel"]

T = TypeVar("T")

_CAMEL = re.compile(r"_([a-z0-9])")

# Attribute name -> wire key where the rule "snake_case to camelCase" is not enough.
_RENAMES: dict[type, dict[str, str]] = {
    calls.CallRecord: {
        "direction": "callDirection",
        "has_notes": "note",
        "from_": "from",
    },
    calls.Flag: {"rel_uuid": "relUuid"},
    notes.NoteCall: {"direction": "callDirection"},
    notes.Note: {"pinned": "pin", "edited": "edit"},
}

# Wire key -> the documented key, for keys the API spells more than one way.
_ALIASES: dict[type, dict[str, str]] = {
    calls.Flag: {"reluuid": "relUuid"},
}

_MODELS: tuple[type, ...] = (
    calls.Caller,
    calls.Receiver,
    calls.UserTalk,
    calls.ExternalNumber,
    calls.Flag,
    calls.CallRecord,
    notes.NoteUser,
    notes.NoteCall,
    notes.NotePerson,
    notes.NoteOrganisation,
    notes.NoteFile,
    notes.Note,
)


def to_camel(name: str) -> str:
    """``first_name`` -> ``firstName``."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def wire_names(cls: type) -> dict[str, str]:
    """Attribute name -> wire key for an attrs model."""
    renames = _RENAMES.get(cls, {})
    return {a.name: renames.get(a.name, to_camel(a.name)) for a in attrs.fields(cls)}


def _to_bool(value: Any, _: type) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in ("1", "true", "yes", "on"):
            return True
        if folded in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_int(value: Any, _: type) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            as_float = float(text)
            if as_float.is_integer():
                return int(as_float)
    raise ValueError(f"not an integer: {value!r}")


def _to_number(value: Any, _: type) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    raise ValueError(f"not a number: {value!r}")


def _to_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"not a string: {value!r}")


def _to_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_datetime(value)
    raise ValueError(f"not a date-time: {value!r}")


def _optional_datetime(value: Any, _: type) -> datetime | None:
    if value is None or value == "" or (isinstance(value, str) and value.startswith("0000")):
        return None
    return _to_datetime(value, datetime)


def _items(value: Any) -> Iterable[Any]:
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, dict):  # PHP serialises an empty or index-keyed array as an object
        return value.values()
    raise ValueError(f"not a list: {type(value).__name__}")


def _is_optional(tp: Any) -> bool:
    args = get_args(tp)
    return len(args) == 2 and type(None) in args and get_origin(tp) in (UnionType, Union)


def _is_tuple_of(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def make_converter(*, strict: bool = False) -> cattrs.Converter:
    """Build a converter with every rule in the module docstring.

    ``strict=True`` forbids unknown keys and keeps cattrs' detailed validation.
    """
    conv = cattrs.Converter(
        detailed_validation=strict,
        forbid_extra_keys=strict,
        prefer_attrib_converters=False,
    )
    conv.register_structure_hook(bool, _to_bool)
    conv.register_structure_hook(int, _to_int)
    conv.register_structure_hook(str, _to_str)
    conv.register_structure_hook(int | float, _to_number)
    conv.register_structure_hook(datetime, _to_datetime)
    conv.register_unstructure_hook(datetime, format_datetime)

    # Registered on the base class: single dispatch then prefers it to ``str``.
    conv.register_structure_hook(WireEnum, _EnumHook())
    conv.register_unstructure_hook(WireEnum, lambda member: member.value)

    def optional_hook_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = next(a for a in get_args(tp) if a is not type(None))
        hook = conv.get_structure_hook(inner)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, inner)

        return structure_optional

    conv.register_structure_hook_factory(_is_optional, optional_hook_factory)
    conv.register_structure_hook(datetime | None, _optional_datetime)

    def tuple_hook_factory(tp: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_hook = conv.get_structure_hook(get_args(tp)[0])
        item_type = get_args(tp)[0]

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            return tuple(item_hook(item, item_type) for item in _items(value))

        return structure_tuple

    conv.register_structure_hook_factory(_is_tuple_of, tuple_hook_factory)

    for cls in _MODELS:
        _register_model(conv, cls, strict=strict)
    return conv


class _EnumHook:
    """Structures any WireEnum; the server repeats a handful of spellings, so
    each class remembers the member of each spelling it has seen."""

    def __init__(self) -> None:
        self._seen: dict[type, dict[Any, WireEnum]] = {}

    def __call__(self, value: Any, cls: type[WireEnum]) -> WireEnum:
        seen = self._seen.get(cls)
        if seen is None:
            seen = self._seen[cls] = {}
        member = seen.get(value)
        if member is None:
            member = cls(_to_str(value, str))
            if len(seen) < 256:
                seen[value] = member
        return member


def _register_model(conv: cattrs.Converter, cls: type, *, strict: bool) -> None:
    names = wire_names(cls)
    overrides = {name: override(rename=wire) for name, wire in names.items()}
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls,
        conv,
        _cattrs_forbid_extra_keys=strict,
        _cattrs_detailed_validation=strict,
        **overrides,  # type: ignore[arg-type]
    )
    aliases = _ALIASES.get(cls)
    if aliases:
        base = structure

        def structure_with_aliases(value: Any, tp: Any) -> Any:
            if not aliases.keys().isdisjoint(value):
                value = dict(value)
                for alias, documented in aliases.items():
                    if alias in value:
                        aliased = value.pop(alias)
                        value.setdefault(documented, aliased)
            return base(value, tp)

        conv.register_structure_hook(cls, structure_with_aliases)
    else:
        conv.register_structure_hook(cls, structure)
    conv.register_unstructure_hook(
        cls,
        make_dict_unstructure_fn(cls, conv, **overrides),  # type: ignore[arg-type]
    )


LENIENT = make_converter()
STRICT = make_converter(strict=True)
