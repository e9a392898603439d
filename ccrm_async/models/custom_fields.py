"""Custom fields of contacts (seed 001): what to create, and what the API lists.

A *spec* describes a field to create or to change, one class per documented
type: :class:`TextField`, :class:`NumberField`, :class:`SelectField`,
:class:`CheckboxField`, :class:`DateField` and :class:`DateTimeField`. Specs
check themselves when they are built, and the client checks them again before
sending, so a spec the API would refuse never reaches the network; every
problem is a :class:`~ccrm_async.ValidationError` whose ``field`` names the
offending argument (``"name"``, ``"max_length"``, ``"options"`` ...).

The rules (the API's documentation states none of them; these are the ones
that make a field usable):

- ``name`` is a non-blank string;
- ``contact_types`` is a non-empty subset of ``"person"`` and
  ``"organisation"`` (a single string is one type; repeats are dropped);
- text lengths are integers ``>= 0`` with ``min_length <= max_length``;
- number bounds are finite numbers with ``min_value <= max_value``;
- select ``options`` are a non-empty list of non-blank strings, no two equal.

:class:`CustomField` is one entry of a list answer: the field's identity and
flags, plus the spec of its type (``None`` for a type this version does not
know; its parameters are then kept in ``extra``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeAlias

import attrs

from ..errors import ValidationError
from ._enum import WireEnum

__all__ = [
    "CONTACT_TYPES",
    "CheckboxField",
    "CustomField",
    "DateField",
    "DateTimeField",
    "FieldSpec",
    "FieldType",
    "NumberField",
    "SelectField",
    "TextField",
    "validate_spec",
]

#: The contact types a custom field can belong to.
CONTACT_TYPES: tuple[str, ...] = ("person", "organisation")

#: Default ``max_length`` of a :class:`TextField`, in characters.
DEFAULT_MAX_LENGTH = 255
#: Default ``min_value`` of a :class:`NumberField`.
DEFAULT_MIN_VALUE = 0
#: Default ``max_value`` of a :class:`NumberField`: the largest signed 32-bit integer.
DEFAULT_MAX_VALUE = 2_147_483_647


class FieldType(WireEnum):
    """The type of a custom field; an unknown type from the server is kept."""

    TEXT = "text"
    NUMBER = "number"
    SELECT = "select"
    CHECKBOX = "checkbox"
    DATE = "date"
    DATETIME = "datetime"


# -- the rules, as attrs validators (each names its attribute) -----------------------


def _check_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{attribute.name} must be a non-blank string", field=attribute.name)


def _check_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"{attribute.name} must be True or False, got {type(value).__name__}",
            field=attribute.name,
        )


def _as_tuple(value: Any) -> tuple[Any, ...]:
    # A single string is one item, not one item per character; None is no item;
    # anything else that is not iterable is left for the validator to name.
    if isinstance(value, str):
        return (value,)
    if value is None:
        return ()
    try:
        return tuple(value)
    except TypeError:
        return (value,)


def _contact_types(value: str | Iterable[str]) -> tuple[str, ...]:
    """A single type or any iterable of types, as a tuple without repeats."""
    unique: list[Any] = []
    for item in _as_tuple(value):
        # str() turns a StrEnum member (e.g. ContactType.PERSON) into its plain value.
        plain = str(item) if isinstance(item, str) else item
        if plain not in unique:
            unique.append(plain)
    return tuple(unique)


def _check_contact_types(
    _: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]
) -> None:
    if not value:
        raise ValidationError(
            f"{attribute.name} must name at least one of: {', '.join(CONTACT_TYPES)}",
            field=attribute.name,
        )
    unknown = [item for item in value if item not in CONTACT_TYPES]
    if unknown:
        raise ValidationError(
            f"unknown contact type {unknown[0]!r} in {attribute.name}; "
            f"known: {', '.join(CONTACT_TYPES)}",
            field=attribute.name,
        )


def _check_length(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{attribute.name} must be an integer", field=attribute.name)
    if value < 0:
        raise ValidationError(f"{attribute.name} must be >= 0, got {value}", field=attribute.name)


def _check_length_order(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # attrs runs validators once every attribute is set, so min_length is there.
    if inst.min_length > value:
        raise ValidationError(
            f"min_length ({inst.min_length}) is greater than {attribute.name} ({value})",
            field=attribute.name,
        )


def _check_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        raise ValidationError(f"{attribute.name} must be a finite number", field=attribute.name)


def _check_value_order(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if inst.min_value > value:
        raise ValidationError(
            f"min_value ({inst.min_value}) is greater than {attribute.name} ({value})",
            field=attribute.name,
        )


def _options(value: Iterable[str]) -> tuple[str, ...]:
    return _as_tuple(value)


def _check_options(_: object, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    name = attribute.name
    if not value:
        raise ValidationError(f"{name} must not be empty", field=name)
    seen: set[str] = set()
    for index, option in enumerate(value):
        if not isinstance(option, str) or not option.strip():
            raise ValidationError(f"{name}[{index}] must be a non-blank string", field=name)
        if option in seen:
            raise ValidationError(f"{name} repeats {option!r}", field=name)
        seen.add(option)


# -- the specs ---------------------------------------------------------------------------


@attrs.frozen
class _Spec:
    """What every field type has: a name, the contact types, the required flag."""

    field_type: ClassVar[FieldType]

    name: str = attrs.field(validator=_check_name)
    contact_types: tuple[str, ...] = attrs.field(
        converter=_contact_types, validator=_check_contact_types
    )
    required: bool = attrs.field(default=False, validator=_check_bool)


@attrs.frozen
class TextField(_Spec):
    """A text field of ``min_length`` (0) to ``max_length`` (255) characters,
    one line unless ``multiline`` (False); ``link`` (False) makes the value a link."""

    field_type: ClassVar[FieldType] = FieldType.TEXT

    min_length: int = attrs.field(default=0, validator=_check_length)
    max_length: int = attrs.field(
        default=DEFAULT_MAX_LENGTH, validator=[_check_length, _check_length_order]
    )
    multiline: bool = attrs.field(default=False, validator=_check_bool)
    link: bool = attrs.field(default=False, validator=_check_bool)


@attrs.frozen
class NumberField(_Spec):
    """A number field accepting ``min_value`` (0) to ``max_value``
    (2147483647, the largest signed 32-bit integer), both inclusive."""

    field_type: ClassVar[FieldType] = FieldType.NUMBER

    min_value: int | float = attrs.field(default=DEFAULT_MIN_VALUE, validator=_check_number)
    max_value: int | float = attrs.field(
        default=DEFAULT_MAX_VALUE, validator=[_check_number, _check_value_order]
    )


@attrs.frozen
class SelectField(_Spec):
    """A drop-down list of ``options`` (required, at least one, no repeats);
    ``multiple`` (False) allows choosing more than one."""

    field_type: ClassVar[FieldType] = FieldType.SELECT

    options: tuple[str, ...] = attrs.field(default=(), converter=_options, validator=_check_options)
    multiple: bool = attrs.field(default=False, validator=_check_bool)


@attrs.frozen
class CheckboxField(_Spec):
    """A yes/no field."""

    field_type: ClassVar[FieldType] = FieldType.CHECKBOX


@attrs.frozen
class DateField(_Spec):
    """A date field."""

    field_type: ClassVar[FieldType] = FieldType.DATE


@attrs.frozen
class DateTimeField(_Spec):
    """A date-and-time field."""

    field_type: ClassVar[FieldType] = FieldType.DATETIME


FieldSpec: TypeAlias = (
    TextField | NumberField | SelectField | CheckboxField | DateField | DateTimeField
)

#: Spec class of each known field type.
SPEC_CLASSES: Mapping[FieldType, type[FieldSpec]] = {
    cls.field_type: cls
    for cls in (TextField, NumberField, SelectField, CheckboxField, DateField, DateTimeField)
}


def validate_spec(spec: object) -> None:
    """Raise :class:`~ccrm_async.ValidationError` unless *spec* is a valid spec.

    Runs every rule of the spec's class again, whether or not attrs validators
    were switched off when it was built; the client calls it before sending.
    """
    if not isinstance(spec, _Spec) or type(spec) not in SPEC_CLASSES.values():
        raise ValidationError(
            f"expected a field spec (TextField, NumberField, ...), got {type(spec).__name__}",
            field="spec",
        )
    for attribute in attrs.fields(type(spec)):
        if attribute.validator is not None:
            attribute.validator(spec, attribute, getattr(spec, attribute.name))


# -- what the API lists --------------------------------------------------------------------


@attrs.frozen
class CustomField:
    """One custom field as listed by the API.

    ``type`` is a :class:`FieldType` (an unknown type is kept as an unlisted
    member); ``spec`` is the field's definition as a spec, or ``None`` for a type
    this version does not know. ``spec`` is read as the server sent it, without
    the input rules, so an odd field on the account never fails a list.
    ``can_delete`` is the wire's ``canDelete`` (sent as 0/1). ``extra`` keeps the
    field's parameters this version does not read, by their wire key.
    """

    uuid: str
    type: FieldType
    name: str = ""
    required: bool = False
    contact_types: tuple[str, ...] = ()
    can_delete: bool = False
    spec: FieldSpec | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
