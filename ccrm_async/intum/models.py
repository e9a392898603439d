"""The intum deal (seed 004), with the API's own field names.

:class:`Deal` holds clean Python values: money as :class:`~decimal.Decimal`,
dates as :class:`datetime.date`, ids as ``int``. Its constructor takes the
obvious other spellings too (``"10000.00"`` or ``10000`` for money,
``"2026-03-15"`` for a date, ``"123"`` for an id) and raises
:class:`~ccrm_async.ValidationError` naming the field for anything else; a
``float`` is refused for money because it cannot hold most cents exactly.

The business rules of a deal (amounts required and below 1e12, gross at least
net, tax required, ``closed`` one of ``win``/``lost``/empty) are not checked
here, so that a deal read from the server always parses; they live in
:mod:`ccrm_async.intum.validation` and run before every create and update.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from ..errors import ValidationError

__all__ = [
    "CLOSED_VALUES",
    "DATE_FIELDS",
    "DEAL_FIELDS",
    "ID_FIELDS",
    "MONEY_FIELDS",
    "TEXT_FIELDS",
    "Deal",
    "coerce_field",
    "convert_field",
    "to_date",
    "to_fields",
    "to_id",
    "to_money",
    "to_text",
]

#: The values ``closed`` may take; ``""`` (and ``None``) means still open.
CLOSED_VALUES: Final = ("win", "lost", "")

MONEY_FIELDS: Final = ("total_amount_net", "total_amount_gross")
DATE_FIELDS: Final = ("date", "date_from", "date_to")
ID_FIELDS: Final = (
    "client_id",
    "contact_id",
    "status_id",
    "responsible_id",
    "department_id",
    "project_id",
    "task_id",
    "next_deal_id",
)
TEXT_FIELDS: Final = (
    "name",
    "description",
    "tax",
    "currency",
    "closed",
    "number",
    "invoice_no",
    "url",
    "origin",
    "external_id",
)

#: Every writable field of a deal, in the order of the API's documentation.
DEAL_FIELDS: Final = (
    "name",
    "description",
    "total_amount_net",
    "total_amount_gross",
    "tax",
    "currency",
    "closed",
    "date",
    "date_from",
    "date_to",
    "number",
    "invoice_no",
    "url",
    "origin",
    "external_id",
    "client_id",
    "contact_id",
    "status_id",
    "responsible_id",
    "department_id",
    "project_id",
    "task_id",
    "next_deal_id",
    "fields",
)


# -- coercion: pure functions, ValueError with a message that names no value --


def to_money(value: Decimal | int | str | None) -> Decimal | None:
    """A money amount as an exact ``Decimal``: from a ``Decimal``, an ``int`` or a
    numeric string (``"12300.10"`` keeps its two decimals). ``None`` stays ``None``."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a Decimal, an int or a numeric string, not bool")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError("is not a number") from None
    if isinstance(value, float):
        raise ValueError("must be a Decimal, an int or a numeric string, not float (inexact)")
    raise ValueError(f"must be a Decimal, an int or a numeric string, not {type(value).__name__}")


def to_date(value: dt.date | str | None) -> dt.date | None:
    """A calendar date: a ``date``, the date part of a ``datetime``, or ``"YYYY-MM-DD"``."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
        raise ValueError("must be a date in the form YYYY-MM-DD")
    raise ValueError(f"must be a date or a YYYY-MM-DD string, not {type(value).__name__}")


def to_id(value: int | str | None) -> int | None:
    """A record id: a positive ``int``, or a string of digits."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be an integer id, not bool")
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int):
        raise ValueError(f"must be an integer id, not {type(value).__name__}")
    if value < 1:
        raise ValueError("must be a positive integer id")
    return value


def to_text(value: str | int | None) -> str | None:
    """A string field; an ``int`` (a tax rate ``23``, a numeric external id) is
    taken as its decimal digits."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"must be a string, not {type(value).__name__}")


def to_fields(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The deal's own custom fields (a JSON object); copied into a new ``dict``."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError("must be a mapping with string keys")
    return dict(value)


_COERCE: Final[dict[str, Callable[[Any], object]]] = {
    "id": to_id,
    **dict.fromkeys(MONEY_FIELDS, to_money),
    **dict.fromkeys(DATE_FIELDS, to_date),
    **dict.fromkeys(ID_FIELDS, to_id),
    **dict.fromkeys(TEXT_FIELDS, to_text),
    "fields": to_fields,
}


def convert_field(name: str, value: object) -> object:
    """*value* converted for the deal field *name* (``id`` included);
    ``ValueError`` with a message naming neither field nor value when it
    cannot be, ``KeyError`` for a name that is not a deal field."""
    return _COERCE[name](value)


def coerce_field(name: str, value: object) -> object:
    """Like :func:`convert_field`, but raising :class:`ValidationError`
    (``field=name``) for a bad value or an unknown name."""
    try:
        return convert_field(name, value)
    except KeyError:
        raise ValidationError(f"{name}: not a deal field", field=name) from None
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}", field=name) from None


@attrs.frozen(kw_only=True)
class Deal:
    """One deal ("interes") of an intum CRM account.

    Every attribute is optional and named as in the API; ``id`` is set by the
    server (ignored when creating). Money: ``total_amount_net`` and
    ``total_amount_gross`` (``Decimal``, exact; below 1e12). ``tax`` is the VAT
    rate as the API spells it (``"23"``). ``closed`` is ``"win"``, ``"lost"``
    or empty. ``fields`` holds the account's own fields (a JSON object) and is
    left out of the hash, so deals stay hashable.
    """

    id: int | None = attrs.field(default=None, converter=to_id)
    name: str | None = attrs.field(default=None, converter=to_text)
    description: str | None = attrs.field(default=None, converter=to_text)
    total_amount_net: Decimal | None = attrs.field(default=None, converter=to_money)
    total_amount_gross: Decimal | None = attrs.field(default=None, converter=to_money)
    tax: str | None = attrs.field(default=None, converter=to_text)
    currency: str | None = attrs.field(default=None, converter=to_text)
    closed: str | None = attrs.field(default=None, converter=to_text)
    date: dt.date | None = attrs.field(default=None, converter=to_date)
    date_from: dt.date | None = attrs.field(default=None, converter=to_date)
    date_to: dt.date | None = attrs.field(default=None, converter=to_date)
    number: str | None = attrs.field(default=None, converter=to_text)
    invoice_no: str | None = attrs.field(default=None, converter=to_text)
    url: str | None = attrs.field(default=None, converter=to_text)
    origin: str | None = attrs.field(default=None, converter=to_text)
    external_id: str | None = attrs.field(default=None, converter=to_text)
    client_id: int | None = attrs.field(default=None, converter=to_id)
    contact_id: int | None = attrs.field(default=None, converter=to_id)
    status_id: int | None = attrs.field(default=None, converter=to_id)
    responsible_id: int | None = attrs.field(default=None, converter=to_id)
    department_id: int | None = attrs.field(default=None, converter=to_id)
    project_id: int | None = attrs.field(default=None, converter=to_id)
    task_id: int | None = attrs.field(default=None, converter=to_id)
    next_deal_id: int | None = attrs.field(default=None, converter=to_id)
    fields: dict[str, Any] | None = attrs.field(default=None, converter=to_fields, hash=False)

    def __attrs_pre_init__(self, **values: object) -> None:
        # The converters below raise a bare ValueError; checking here first
        # turns it into a ValidationError that names the field.
        for name, value in values.items():
            coerce_field(name, value)
