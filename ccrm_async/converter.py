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
- an empty string where a date-time is optional;
- custom fields: ``minLenght``/``maxLenght`` beside ``minLength``/``maxLength``,
  ``canDelete`` as 0/1, unknown field types kept (see the custom-fields section).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._core.dates import format_datetime, parse_datetime
from .errors import ValidationError
from .models import calls, custom_fields, notes
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


def _optional_str(value: Any, _: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    return _to_str(value, str)


def _optional_int(value: Any, _: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    return _to_int(value, int)


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


def _zoned(
    tz: tzinfo,
) -> tuple[Callable[[Any, Any], datetime], Callable[[Any, Any], datetime | None]]:
    def to_datetime(value: Any, _: Any) -> datetime:
        parsed = _to_datetime(value, datetime)
        return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed

    def optional_datetime(value: Any, _: Any) -> datetime | None:
        parsed = _optional_datetime(value, datetime)
        return None if parsed is None else to_datetime(parsed, datetime)

    return to_datetime, optional_datetime


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


def make_converter(*, strict: bool = False, tz: tzinfo | None = None) -> cattrs.Converter:
    """Build a converter with every rule in the module docstring.

    ``strict=True`` forbids unknown keys and keeps cattrs' detailed validation.
    ``tz`` (the account's zone, e.g. ``ZoneInfo("Europe/Warsaw")``) makes every
    date-time read aware in that zone, and writes aware ones in its wall clock;
    by default they stay naive, as the API sends them.
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
    to_datetime: Callable[[Any, Any], datetime] = _to_datetime
    optional_datetime: Callable[[Any, Any], datetime | None] = _optional_datetime
    write_datetime: Callable[[datetime], str] = format_datetime
    if tz is not None:
        to_datetime, optional_datetime = _zoned(tz)

        def write_datetime(value: datetime) -> str:
            return format_datetime(value.astimezone(tz) if value.tzinfo is not None else value)

    conv.register_structure_hook(datetime, to_datetime)
    conv.register_unstructure_hook(datetime, write_datetime)

    # Registered on the base class: single dispatch then prefers it to ``str``.
    enum_hook = _EnumHook()
    conv.register_structure_hook(WireEnum, enum_hook)
    conv.register_unstructure_hook(WireEnum, lambda member: member.value)

    # ``X | None``: one flat function for the most common field types (the hot
    # path), else None or X's own hook.
    flat_optionals: dict[Any, Callable[[Any, Any], Any]] = {
        str: _optional_str,
        int: _optional_int,
        datetime: optional_datetime,
    }

    def optional_hook_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = next(a for a in get_args(tp) if a is not type(None))
        if inner in flat_optionals:
            return flat_optionals[inner]
        if isinstance(inner, type) and issubclass(inner, WireEnum):
            return enum_hook.optional(inner)
        hook = conv.get_structure_hook(inner)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, inner)

        return structure_optional

    conv.register_structure_hook_factory(_is_optional, optional_hook_factory)

    def tuple_hook_factory(tp: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_hook = conv.get_structure_hook(get_args(tp)[0])
        item_type = get_args(tp)[0]

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if not value:
                return ()  # [] and {} alike
            return tuple([item_hook(item, item_type) for item in _items(value)])

        return structure_tuple

    conv.register_structure_hook_factory(_is_tuple_of, tuple_hook_factory)

    for cls in _MODELS:
        _register_model(conv, cls, strict=strict)
    _register_custom_fields(conv, strict=strict)
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

    def optional(self, cls: type[WireEnum]) -> Callable[[Any, Any], WireEnum | None]:
        """The hook of ``cls | None``, with that class's memory at hand."""
        seen = self._seen.setdefault(cls, {})

        def structure_optional_enum(value: Any, _: Any) -> WireEnum | None:
            if value is None:
                return None
            member = seen.get(value)
            return member if member is not None else self(value, cls)

        return structure_optional_enum


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


# =========================================================================================
# Custom fields (seed 001)
#
# Specs go out as the seed's request examples: ``type``, ``name``, ``required``,
# ``contactType``, then the type's parameters (``isLink``, ``isMultiline``,
# ``minLength``, ``maxLength`` / ``minValue``, ``maxValue`` / ``isMultiple``,
# ``options``). The request tables spell ``minLenght``/``maxLenght``; the examples,
# which we follow, ``minLength``/``maxLength``. Both are accepted when reading.
#
# A list entry is ``{"uuid", "type", "param": {...}, "canDelete": 0/1}``; ``param``
# repeats ``type`` and sometimes ``uuid``. The empty ``{}`` entries the API can
# return are skipped by the caller (``ccrm_async.custom_fields``), not here. A spec
# read from the server is built without the input rules (see ``_read_spec``), and
# an unknown type is kept with ``spec=None`` and its parameters in ``extra``.
# =========================================================================================

# Spec attribute -> wire key, per spec class, in the seed examples' order.
_SPEC_PARAMS: dict[type, dict[str, str]] = {
    custom_fields.TextField: {
        "link": "isLink",
        "multiline": "isMultiline",
        "min_length": "minLength",
        "max_length": "maxLength",
    },
    custom_fields.NumberField: {"min_value": "minValue", "max_value": "maxValue"},
    custom_fields.SelectField: {"multiple": "isMultiple", "options": "options"},
    custom_fields.CheckboxField: {},
    custom_fields.DateField: {},
    custom_fields.DateTimeField: {},
}

# Wire key -> the spelling we send, for the request tables' typos.
_PARAM_ALIASES = {"minLenght": "minLength", "maxLenght": "maxLength"}

# Keys of ``param`` that every type has; ``uuid`` repeats the entry's own.
_COMMON_PARAMS = frozenset({"type", "name", "required", "contactType", "uuid"})
_ENTRY_KEYS = frozenset({"uuid", "type", "param", "canDelete"})


def _read_options(value: Any, _: type) -> tuple[str, ...]:
    return tuple(_to_str(item, str) for item in _items(value))


# How each spec parameter is read from the wire.
_PARAM_READERS: dict[str, Callable[[Any, type], Any]] = {
    "link": _to_bool,
    "multiline": _to_bool,
    "multiple": _to_bool,
    "min_length": _to_int,
    "max_length": _to_int,
    "min_value": _to_number,
    "max_value": _to_number,
    "options": _read_options,
}


def _unstructure_spec(spec: custom_fields.FieldSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": spec.field_type.value,
        "name": spec.name,
        "required": spec.required,
        "contactType": list(spec.contact_types),
    }
    for attribute, wire in _SPEC_PARAMS[type(spec)].items():
        value = getattr(spec, attribute)
        body[wire] = list(value) if isinstance(value, tuple) else value
    return body


def _dealias(param: dict[str, Any]) -> dict[str, Any]:
    if _PARAM_ALIASES.keys().isdisjoint(param):
        return param
    param = dict(param)
    for alias, documented in _PARAM_ALIASES.items():
        if alias in param:
            param.setdefault(documented, param.pop(alias))
    return param


def _read_spec(
    cls: type[custom_fields.FieldSpec],
    common: dict[str, Any],
    param: dict[str, Any],
    *,
    strict: bool,
) -> custom_fields.FieldSpec:
    kwargs = dict(common)
    for attribute, wire in _SPEC_PARAMS[cls].items():
        if wire in param:
            kwargs[attribute] = _PARAM_READERS[attribute](param[wire], object)
    try:
        return cls(**kwargs)
    except ValidationError as exc:
        if strict:
            raise ValueError(f"a {cls.__name__} breaks a rule: {exc.message}") from None
    # The server's field is what it is, even when it breaks the rules we apply to
    # input (say, a contact type this version does not know): keep it as sent.
    # attrs' switch is process-wide; nothing awaits in between, and the client
    # re-checks every spec with validate_spec() before sending it anyway.
    with attrs.validators.disabled():
        return cls(**kwargs)


def _structure_custom_field(
    conv: cattrs.Converter, item: Any, *, strict: bool
) -> custom_fields.CustomField:
    if not isinstance(item, dict):
        raise ValueError(f"a custom field is a {type(item).__name__}, not an object")
    raw_param = item.get("param")
    param = _dealias(raw_param) if isinstance(raw_param, dict) else {}
    field_type = conv.structure(item.get("type") or param["type"], custom_fields.FieldType)
    uuid = item.get("uuid") or param["uuid"]
    cls = custom_fields.SPEC_CLASSES.get(field_type)
    known = _COMMON_PARAMS.union(_SPEC_PARAMS[cls].values()) if cls else _COMMON_PARAMS
    extra = {key: value for key, value in param.items() if key not in known}
    if strict and ((extra and cls) or not _ENTRY_KEYS.issuperset(item)):
        unknown = sorted(set(extra) | (set(item) - _ENTRY_KEYS))
        raise ValueError(f"unknown keys in a custom field: {', '.join(unknown)}")
    common: dict[str, Any] = {
        "name": _to_str(param.get("name", ""), str),
        "contact_types": tuple(_to_str(t, str) for t in _items(param.get("contactType", ()))),
        "required": _to_bool(param.get("required", False), bool),
    }
    return custom_fields.CustomField(
        uuid=_to_str(uuid, str),
        type=field_type,
        can_delete=_to_bool(item.get("canDelete", False), bool),
        spec=_read_spec(cls, common, param, strict=strict) if cls else None,
        extra=extra,
        **common,
    )


def _unstructure_custom_field(field: custom_fields.CustomField) -> dict[str, Any]:
    """A listed field as one flat object: uuid, type, name, required, contactType,
    the type's parameters in wire spelling, unknown parameters, canDelete."""
    body: dict[str, Any] = {
        "uuid": field.uuid,
        "type": field.type.value,
        "name": field.name,
        "required": field.required,
        "contactType": list(field.contact_types),
    }
    if field.spec is not None:
        for attribute, wire in _SPEC_PARAMS[type(field.spec)].items():
            value = getattr(field.spec, attribute)
            body[wire] = list(value) if isinstance(value, tuple) else value
    body.update(field.extra)
    body["canDelete"] = field.can_delete
    return body


def _register_custom_fields(conv: cattrs.Converter, *, strict: bool) -> None:
    for cls in _SPEC_PARAMS:
        conv.register_unstructure_hook(cls, _unstructure_spec)
    conv.register_structure_hook(
        custom_fields.CustomField,
        lambda item, _: _structure_custom_field(conv, item, strict=strict),
    )
    conv.register_unstructure_hook(custom_fields.CustomField, _unstructure_custom_field)


LENIENT = make_converter()
STRICT = make_converter(strict=True)
