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

PHP-isms, and the two paths a record takes
------------------------------------------

The API is PHP (API-NOTES, "The API is PHP"): a field can come as a one-element
list, ``[]``/``{}`` for an absent object, a list keyed ``"0"``, ``"1"``, ...,
``null`` or a string for a number or flag, a comma decimal, a zero date. Each
of these has one reading, and it is read, but it is *bent*: counted per field
path, never silently taken for the documented form.

The hooks registered here take only the documented spellings (the fast path,
the one clean records take, at full speed) and raise on any PHP-ism. A record
they refuse is then read by :func:`ccrm_async._core.php.read_value` against its
:class:`~ccrm_async._core.php.Shape` (built from the model by :func:`shape_of`),
which rewrites it into the documented spelling and lists every bent value with
its path, or raises :class:`~ccrm_async._core.php.Unreadable` naming the field
path and the problem. :func:`read_record` does both and returns the bends;
``converter.structure(value, CallRecord)`` does the same and drops them.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from functools import cache
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._core.dates import format_datetime, parse_datetime
from ._core.php import ZERO_DATE_PREFIX, Bends, Shape, Unreadable, read_value
from ._hooks import HookWriter, Scalar, UnstructureWriter
from .errors import ValidationError
from .models import calls, custom_fields, notes
from .models._enum import WireEnum

__all__ = [
    "LENIENT",
    "STRICT",
    "WireConverter",
    "make_converter",
    "read_record",
    "read_refused",
    "shape_of",
    "to_camel",
]

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


class _Unfit(ValueError):
    """A value not in its documented spelling: the record takes the slow path."""


def _to_bool(value: Any, _: type) -> bool:
    if value is True or value is False:
        return value
    if type(value) is int and (value == 0 or value == 1):  # the documented spelling
        return value == 1
    raise _Unfit


def _to_int(value: Any, _: type) -> int:
    if type(value) is int:
        return value
    raise _Unfit


def _to_number(value: Any, _: type) -> int | float:
    if type(value) is int or type(value) is float:
        return value
    raise _Unfit


def _optional_number(value: Any, _: type) -> int | float | None:
    if value is None or type(value) is int or type(value) is float:
        return value
    raise _Unfit


def _to_str(value: Any, _: type) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numberNotFormatted: the seed sends numbers for strings
    raise _Unfit


def _optional_str(value: Any, _: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    return _to_str(value, str)


def _optional_int(value: Any, _: Any) -> int | None:
    if value is None or type(value) is int:
        return value
    raise _Unfit


def _to_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and not value.startswith(ZERO_DATE_PREFIX):
        return parse_datetime(value)
    raise _Unfit


def _optional_datetime(value: Any, _: type) -> datetime | None:
    if value is None or value == "":
        return None  # "" for an absent date-time: the documented spelling
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
    """Custom-field parameter lists: a list, or PHP's object keyed by index."""
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, dict):  # PHP serialises an empty or index-keyed array as an object
        return value.values()
    raise ValueError(f"not a list: {type(value).__name__}")


def _to_bool_lenient(value: Any, _: type) -> bool:
    """Custom-field flags: 0/1, true/false, or their strings."""
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
    raise ValueError(f"not a boolean: {type(value).__name__}")


def _to_int_lenient(value: Any, _: type) -> int:
    """Custom-field lengths: an integer, or a string or float holding one."""
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
    raise ValueError(f"not an integer: {type(value).__name__}")


def _to_number_lenient(value: Any, _: type) -> int | float:
    """Custom-field bounds: a number, or a string holding one (comma decimals too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        number = float(text)
        return int(number) if number.is_integer() and "." not in text else number
    raise ValueError(f"not a number: {type(value).__name__}")


def _is_optional(tp: Any) -> bool:
    args = get_args(tp)
    return len(args) == 2 and type(None) in args and get_origin(tp) in (UnionType, Union)


def _is_tuple_of(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


class WireConverter(cattrs.Converter):
    """A cattrs converter whose :meth:`structure` also reads PHP-isms.

    The registered hooks (``get_structure_hook``) are the fast path and take
    documented spellings only; :meth:`structure` falls back to
    :func:`read_record` for a record they refuse (its bends are dropped: use
    :func:`read_record` to see them).
    """

    def structure(self, obj: Any, cl: Any) -> Any:
        try:
            return super().structure(obj, cl)
        except Exception:
            if cl not in _SHAPED:
                raise
        normalised, _ = _normalised(obj, cl)
        return super().structure(normalised, cl)


def make_converter(
    *, strict: bool = False, tz: tzinfo | None = None, generated_hooks: bool | None = None
) -> WireConverter:
    """Build a converter with every rule in the module docstring.

    ``strict=True`` forbids unknown keys and keeps cattrs' detailed validation.
    ``generated_hooks`` (default: on unless strict) structures the record models
    and writes them back with the functions :mod:`ccrm_async._hooks` writes for
    them, the lenient fast path; off, with cattrs' generated hooks (the same
    rules, slower: the strict converter's, and the tests' reference).
    ``tz`` (the account's zone, e.g. ``ZoneInfo("Europe/Warsaw")``) makes every
    date-time read aware in that zone, and writes aware ones in its wall clock;
    by default they stay naive, as the API sends them.
    """
    conv = WireConverter(
        detailed_validation=strict,
        forbid_extra_keys=strict,
        prefer_attrib_converters=False,
    )
    conv.register_structure_hook(bool, _to_bool)
    conv.register_structure_hook(int, _to_int)
    conv.register_structure_hook(str, _to_str)
    conv.register_structure_hook(int | float, _to_number)
    conv.register_structure_hook(int | float | None, _optional_number)
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
        bool: _optional_bool,
        datetime: optional_datetime,
    }

    def optional_hook_factory(tp: Any) -> Callable[[Any, Any], Any]:
        inner = next(a for a in get_args(tp) if a is not type(None))
        if inner in flat_optionals:
            return flat_optionals[inner]
        if isinstance(inner, type) and issubclass(inner, WireEnum):
            return enum_hook.optional(inner)
        hook = conv.get_structure_hook(inner)
        if attrs.has(inner):

            def structure_optional_model(value: Any, _: Any) -> Any:
                if value is None:
                    return None
                if type(value) is not dict or not value:
                    raise _Unfit  # [{...}], [] or {}: read by the slow path
                return hook(value, inner)

            return structure_optional_model

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, inner)

        return structure_optional

    conv.register_structure_hook_factory(_is_optional, optional_hook_factory)

    def tuple_hook_factory(tp: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_hook = conv.get_structure_hook(get_args(tp)[0])
        item_type = get_args(tp)[0]
        of_models = attrs.has(item_type)

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                if type(value) is dict and not value:
                    return ()  # {}: PHP's empty array, as the seed sends it
                raise _Unfit
            if of_models:
                for item in value:
                    if type(item) is not dict:
                        raise _Unfit
            return tuple([item_hook(item, item_type) for item in value])

        return structure_tuple

    conv.register_structure_hook_factory(_is_tuple_of, tuple_hook_factory)

    for cls in _MODELS:
        _register_model(conv, cls, strict=strict)
    if strict and generated_hooks:
        raise ValueError("generated hooks do not forbid unknown keys: not with strict=True")
    if generated_hooks is None:
        generated_hooks = not strict
    if generated_hooks:
        writer = HookWriter(
            conv, names=wire_names, aliases=_ALIASES, scalars=_SCALARS, unfit=_Unfit
        )
        unstructure = UnstructureWriter(conv, names=wire_names)
        for cls in _MODELS:
            conv.register_structure_hook(cls, writer[cls])
            conv.register_unstructure_hook(cls, unstructure[cls])
    _register_custom_fields(conv, strict=strict)
    return conv


# Scalar field types the generated hooks check inline: the wire types taken as
# they are, and the helper (the one cattrs' hooks use) for anything else.
_SCALARS: dict[Any, Scalar] = {
    str: Scalar((str,), _to_str),
    int: Scalar((int,), _to_int),
    bool: Scalar((bool,), _to_bool),
    int | float: Scalar((int, float), _to_number),
}


def _optional_bool(value: Any, _: Any) -> bool | None:
    if value is None:
        return None
    return _to_bool(value, bool)


# -- the slow path: shapes and read_record ------------------------------------------------

_SHAPED = frozenset(_MODELS)


def _scalar_kind(tp: Any) -> str:
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if tp is str:
        return "str"
    if tp is datetime:
        return "datetime"
    if tp == int | float:
        return "number"
    if isinstance(tp, type) and issubclass(tp, WireEnum):
        return "enum"
    raise TypeError(f"no wire kind for {tp!r}")


def _shape_of_type(tp: Any, *, required: bool) -> Shape:
    optional = False
    args = get_args(tp)
    if get_origin(tp) in (UnionType, Union) and type(None) in args:
        optional = True
        rest = tuple(a for a in args if a is not type(None))
        tp = rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007 - built at run time
    if _is_tuple_of(tp):
        item = _shape_of_type(get_args(tp)[0], required=False)
        return Shape("list", optional=optional, required=required, item=item)
    if attrs.has(tp):
        model = shape_of(tp)
        return Shape("object", optional=optional, required=required, fields=model.fields)
    return Shape(_scalar_kind(tp), optional=optional, required=required)


@cache
def shape_of(cls: type) -> Shape:
    """The wire :class:`~ccrm_async._core.php.Shape` of a record model."""
    hints = typing.get_type_hints(cls)
    names = wire_names(cls)
    fields = tuple(
        (
            names[field.name],
            _shape_of_type(hints[field.name], required=field.default is attrs.NOTHING),
        )
        for field in attrs.fields(cls)
    )
    return Shape("object", fields=fields)


def _read_nested_aliases(value: Any, shape: Shape, cls: type) -> Any:
    # Flags may spell ``relUuid`` as ``reluuid``: the shape knows only the former.
    if cls is calls.CallRecord and isinstance(value, dict) and isinstance(value.get("flags"), list):
        value = dict(value)
        value["flags"] = [
            _dealiased(f, _ALIASES[calls.Flag]) if isinstance(f, dict) else f
            for f in value["flags"]
        ]
    return value


def _normalised(value: Any, cls: type) -> tuple[Any, Bends]:
    """*value* rewritten in the documented spelling, and its bends."""
    if not isinstance(value, dict):
        raise Unreadable("", f"{type(value).__name__} for a record")
    bends: Bends = []
    shape = shape_of(cls)
    return read_value(_read_nested_aliases(value, shape, cls), shape, "", bends), bends


def read_record(converter: cattrs.Converter, value: Any, cls: type[T]) -> tuple[T, Bends]:
    """Read one record of *cls*, PHP-isms included: the record and its bends,
    each ``(field path, what was bent)``; the list is empty for a record in the
    documented spelling. Raises :class:`~ccrm_async._core.php.Unreadable`
    (a ``ValueError``) naming the field path when the record cannot be read."""
    if type(value) is dict and cls in _SHAPED:
        try:
            return converter.get_structure_hook(cls)(value, cls), []
        except Exception:  # noqa: S110 - refused by the fast path: read it the slow way
            pass
    return read_refused(converter, value, cls)


def read_refused(converter: cattrs.Converter, value: Any, cls: type[T]) -> tuple[T, Bends]:
    """:func:`read_record` for a record the fast hook of *cls* refused (the
    page parser tries the hook itself first, to keep the hot path flat)."""
    hook = converter.get_structure_hook(cls)
    if cls not in _SHAPED:  # a model without PHP rules (custom fields): as it is
        try:
            return hook(value, cls), []
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Unreadable("", _describe(exc)) from None
    normalised, bends = _normalised(value, typing.cast(type, cls))
    try:
        return hook(normalised, cls), bends
    except cattrs.BaseValidationError as exc:
        raise Unreadable("", _describe_validation(exc)) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Unreadable("", _describe(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return f"unreadable ({type(exc).__name__})"


def _describe_validation(exc: cattrs.BaseValidationError) -> str:
    from cattrs.errors import ForbiddenExtraKeysError

    for inner in exc.exceptions:
        if isinstance(inner, ForbiddenExtraKeysError):
            return f"unknown keys: {', '.join(sorted(inner.extra_fields))}"
    return f"unreadable ({type(exc).__name__})"


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


def _dealiased(value: Any, aliases: dict[str, str]) -> Any:
    """*value* with each alias key renamed to its documented key (a copy, only
    when an alias is present; the documented key wins when both are)."""
    if not isinstance(value, dict) or aliases.keys().isdisjoint(value):
        return value
    value = dict(value)
    for alias, documented in aliases.items():
        if alias in value:
            value.setdefault(documented, value.pop(alias))
    return value


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
            return base(_dealiased(value, aliases), tp)

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
    "link": _to_bool_lenient,
    "multiline": _to_bool_lenient,
    "multiple": _to_bool_lenient,
    "min_length": _to_int_lenient,
    "max_length": _to_int_lenient,
    "min_value": _to_number_lenient,
    "max_value": _to_number_lenient,
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
    param = _dealiased(raw_param, _PARAM_ALIASES) if isinstance(raw_param, dict) else {}
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
        "required": _to_bool_lenient(param.get("required", False), bool),
    }
    return custom_fields.CustomField(
        uuid=_to_str(uuid, str),
        type=field_type,
        can_delete=_to_bool_lenient(item.get("canDelete", False), bool),
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
