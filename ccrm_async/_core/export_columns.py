"""The exportable columns of seed 000, and the check run before an export is sent.

People and organisations have different lists. Nested data is asked for by its
top-level name (``addresses``, ``supervisors``, ``organisations`` for people,
``people`` for organisations); a custom field by ``customFields.<uuid>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from ..errors import ValidationError

__all__ = [
    "CUSTOM_FIELD_PREFIX",
    "ORGANISATION_COLUMNS",
    "PEOPLE_COLUMNS",
    "ExportKind",
    "allowed_columns",
    "is_custom_field",
    "validate_columns",
]

ExportKind = Literal["people", "organisations"]

CUSTOM_FIELD_PREFIX = "customFields."

_CONTACT_SLOTS = tuple(
    f"{kind}{n}{suffix}"
    for kind in ("phone", "email")
    for n in (1, 2, 3)
    for suffix in ("", "Name")
)

#: Columns a people export may ask for, in the documentation's order.
PEOPLE_COLUMNS: tuple[str, ...] = (
    "firstName",
    "middleName",
    "lastName",
    "pesel",
    "description",
    *_CONTACT_SLOTS,
    "idDocType",
    "idDocNumber",
    "idDocIssuer",
    "addresses",
    "organisations",
    "supervisors",
)

#: Columns an organisations export may ask for, in the documentation's order.
ORGANISATION_COLUMNS: tuple[str, ...] = (
    "name",
    "description",
    *_CONTACT_SLOTS,
    "nip",
    "regon",
    "registry",
    "addresses",
    "people",
    "supervisors",
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def allowed_columns(kind: ExportKind) -> tuple[str, ...]:
    """The documented columns of *kind* (custom fields aside)."""
    if kind == "people":
        return PEOPLE_COLUMNS
    if kind == "organisations":
        return ORGANISATION_COLUMNS
    raise ValueError(f"export kind must be 'people' or 'organisations', got {kind!r}")


def is_custom_field(column: str) -> bool:
    """``customFields.<uuid>``."""
    return column.startswith(CUSTOM_FIELD_PREFIX) and bool(
        _UUID.fullmatch(column[len(CUSTOM_FIELD_PREFIX) :])
    )


def validate_columns(kind: ExportKind, columns: Iterable[str]) -> tuple[str, ...]:
    """*columns* as a tuple, or :class:`~ccrm_async.ValidationError` listing the
    allowed ones when a column is unknown, repeated, or the list is empty."""
    allowed = allowed_columns(kind)
    if isinstance(columns, str):
        raise ValidationError(
            "columns must be a list of column names, not a string", field="columns"
        )
    given = tuple(columns)
    if not given:
        raise ValidationError("at least one column is required", field="columns")
    known = set(allowed)
    unknown = [
        c for c in given if not isinstance(c, str) or (c not in known and not is_custom_field(c))
    ]
    listing = ", ".join(allowed) + ", customFields.<uuid>"
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        raise ValidationError(
            f"unknown column(s) for a {kind} export: {names}; allowed: {listing}",
            field="columns",
            errors={"unknown": unknown, "allowed": [*allowed, "customFields.<uuid>"]},
        )
    seen: set[str] = set()
    repeated: list[str] = []
    for column in given:
        if column in seen:
            repeated.append(column)
        seen.add(column)
    if repeated:
        raise ValidationError(
            f"column(s) listed more than once: {', '.join(repeated)}", field="columns"
        )
    return given
