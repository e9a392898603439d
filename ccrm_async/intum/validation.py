"""The rules of the intum deals API, as pure functions.

The client runs them before sending anything, so bad input raises
:class:`~ccrm_async.ValidationError` without a request; the emulator
(:class:`ccrm_async.testing.IntumEmulator`) runs :func:`deal_problems` on what it
receives and answers 422 with the same messages. The rules (seed 004):

- ``total_amount_net`` and ``total_amount_gross`` are required on create, and
  cannot be cleared by an update;
- both are finite numbers below 1e12 in absolute value (the API says "< 1e12";
  the bound is the column's precision, so it is applied to the magnitude);
- ``total_amount_gross >= total_amount_net``;
- ``tax`` is required on create and cannot be cleared;
- ``closed`` is ``"win"``, ``"lost"`` or empty (``""`` or ``None``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from ..errors import ValidationError
from .models import (
    CLOSED_VALUES,
    DATE_FIELDS,
    DEAL_FIELDS,
    ID_FIELDS,
    MONEY_FIELDS,
    TEXT_FIELDS,
    Deal,
    coerce_field,
    convert_field,
)

__all__ = [
    "FILTERS",
    "MONEY_LIMIT",
    "deal_problems",
    "filter_params",
    "validate_app_code",
    "validate_changes",
    "validate_deal",
    "validate_external_ref",
    "validate_id",
]

#: Amounts must stay below this in absolute value (1e12).
MONEY_LIMIT: Final = Decimal(10) ** 12

#: The documented list filters (seed 004, "Filtrowanie").
FILTERS: Final = (
    "q",
    "client_id",
    "status_id",
    "responsible_id",
    "department_id",
    "project_id",
    "main_date_from",
    "main_date_to",
    "total_amount_gross_from",
    "total_amount_gross_to",
)

_REQUIRED: Final = (*MONEY_FIELDS, "tax")
# Fields whose type alone is checked (money, tax and closed have their own rules).
_TYPED: Final = (
    *DATE_FIELDS,
    *ID_FIELDS,
    *(name for name in TEXT_FIELDS if name != "closed"),
    "fields",
)
_APP_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_MAX_EXTERNAL_ID = 255


def _amount(value: object) -> Decimal:
    """A finite amount below :data:`MONEY_LIMIT`, or ``ValueError``."""
    amount = convert_field("total_amount_net", value)
    if not isinstance(amount, Decimal):
        raise ValueError("is required")
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    if abs(amount) >= MONEY_LIMIT:
        raise ValueError("must be below 1e12")
    return amount


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def deal_problems(values: Mapping[str, object], *, partial: bool = False) -> dict[str, list[str]]:
    """What is wrong with a deal's fields, as ``{field: [message, ...]}``; empty
    when nothing is.

    *values* are the fields being sent, by their API names: a deal's values,
    or JSON as the server receives it (amounts as ``Decimal``, ``int`` or
    numeric strings, dates as ``"YYYY-MM-DD"``, ids as ints or digit strings).
    With ``partial=False`` (a create) the required fields must be there; with
    ``partial=True`` (an update) only the given fields are checked, and
    ``gross >= net`` only when both are given. Unknown keys are ignored, as
    the API ignores them. Messages never repeat the values.
    """
    problems: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    for name in _REQUIRED:
        if (name in values or not partial) and _blank(values.get(name)):
            add(name, "is required")

    amounts: dict[str, Decimal] = {}
    for name in MONEY_FIELDS:
        value = values.get(name)
        if not _blank(value):
            try:
                amounts[name] = _amount(value)
            except ValueError as exc:
                add(name, str(exc))
    if len(amounts) == 2 and amounts["total_amount_gross"] < amounts["total_amount_net"]:
        add("total_amount_gross", "must be greater than or equal to total_amount_net")

    closed = values.get("closed")
    if closed is not None and closed not in CLOSED_VALUES:
        add("closed", "must be win, lost or empty")

    for name in _TYPED:  # the wire can carry anything
        if name in values and name not in problems:
            try:
                convert_field(name, values[name])
            except ValueError as exc:
                add(name, str(exc))
    return problems


def _raise(problems: dict[str, list[str]], what: str) -> None:
    if problems:
        summary = "; ".join(
            f"{field} {message}" for field, messages in problems.items() for message in messages
        )
        raise ValidationError(
            f"invalid {what}: {summary}", field=next(iter(problems)), errors=problems
        )


def validate_deal(deal: Deal) -> None:
    """Check a deal before it is created; the :class:`ValidationError` names the
    first offending field in ``field`` and carries every problem in ``errors``."""
    values = {name: getattr(deal, name) for name in DEAL_FIELDS}
    _raise(deal_problems({k: v for k, v in values.items() if v is not None}), "deal")


def validate_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Check an update's fields and return them converted (as :class:`Deal`'s
    constructor would). Unknown names, ``id``, clearing a required field and
    an empty update raise :class:`ValidationError`."""
    if not changes:
        raise ValidationError("no changes given")
    if "id" in changes:
        raise ValidationError("id: cannot be changed", field="id")
    converted = {name: coerce_field(name, value) for name, value in changes.items()}
    _raise(deal_problems(converted, partial=True), "changes")
    return converted


def validate_id(value: object) -> int:
    """A deal id as a positive ``int`` (an ``int`` or a string of digits)."""
    deal_id = coerce_field("id", value)
    if not isinstance(deal_id, int):
        raise ValidationError("id: is required", field="id")
    return deal_id


def validate_app_code(app_code: object) -> str:
    """An integrating system's code: 1-100 characters of ``A-Z a-z 0-9 _ . -``,
    starting with a letter or digit (it becomes one path segment)."""
    if not isinstance(app_code, str) or not _APP_CODE.match(app_code):
        raise ValidationError(
            "app_code: must be 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field="app_code",
        )
    return app_code


def validate_external_ref(app_code: object, external_id: object) -> tuple[str, str]:
    """The two path segments of a lookup by external id, checked: the app code
    (see :func:`validate_app_code`), and an external id given as a string (or
    an int) of 1-255 printable characters, percent-encoded in the path."""
    code = validate_app_code(app_code)
    text = coerce_field("external_id", external_id)
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_EXTERNAL_ID or not text.isprintable():
        raise ValidationError(
            f"external_id: must be 1-{_MAX_EXTERNAL_ID} printable characters",
            field="external_id",
        )
    return code, text


def filter_params(filters: Mapping[str, object]) -> dict[str, str]:
    """The query parameters for the list filters (``None`` values are left
    out). An undocumented filter, a value of the wrong type, or a range whose
    start is after its end raises :class:`ValidationError`."""
    params: dict[str, str] = {}
    days: dict[str, dt.date] = {}
    amounts: dict[str, Decimal] = {}
    for name, value in filters.items():
        if name not in FILTERS:
            raise ValidationError(
                f"unknown filter {name!r}; the API documents: {', '.join(FILTERS)}", field=name
            )
        if value is None:
            continue
        try:
            if name == "q":
                if not isinstance(value, str):
                    raise ValueError(f"must be a string, not {type(value).__name__}")
                params[name] = value
            elif name.endswith("_id"):
                params[name] = str(convert_field(name, value))
            elif name.startswith("main_date_"):
                day = convert_field("date", value)
                assert isinstance(day, dt.date)
                days[name] = day
                params[name] = day.isoformat()
            else:
                amounts[name] = _amount(value)
                params[name] = format(amounts[name], "f")
        except ValueError as exc:
            raise ValidationError(f"{name}: {exc}", field=name) from None
    if days.keys() == {"main_date_from", "main_date_to"} and (
        days["main_date_from"] > days["main_date_to"]
    ):
        raise ValidationError(
            "main_date_from: must not be after main_date_to", field="main_date_from"
        )
    if amounts.keys() == {"total_amount_gross_from", "total_amount_gross_to"} and (
        amounts["total_amount_gross_from"] > amounts["total_amount_gross_to"]
    ):
        raise ValidationError(
            "total_amount_gross_from: must not be above total_amount_gross_to",
            field="total_amount_gross_from",
        )
    return params
