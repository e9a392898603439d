"""Export files as data: format detection and rows to typed contacts (no I/O).

The export file format is not documented (see API-NOTES). The vendor's UI
exports CSV, so we detect the format from the first bytes: ``PK\\x03\\x04`` is
XLSX (a zip), ``[`` or ``{`` after an optional BOM and blanks is JSON, anything
else CSV. A row is a mapping from header to cell; it becomes a
:class:`~ccrm_async.models.Person` or :class:`~ccrm_async.models.Organisation`
by these rules:

- scalar columns by their documented camelCase name (``firstName``, ``nip``);
- ``phone1``..``phone3`` with ``phone<n>Name``, and the same for ``email``, as
  ordered tuples of :class:`Phone` / :class:`Email` (empty slots left out);
- nested columns either flattened (``addresses.0.city``, ``supervisors.1.role``,
  ``organisations.0``; the index may be missing, meaning 0) or as JSON text in
  one cell (``addresses`` = ``[{"city": ...}]``); lists of uuids may also be
  plain text separated by commas, semicolons or blanks;
- ``customFields.<uuid>`` cells (or one ``customFields`` cell holding a JSON
  object or a list of ``{"uuid", "value"}``) into ``custom_fields``;
- everything else, known or not, is kept in ``extra`` by its header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

import orjson

from ..models.contacts import (
    Address,
    Email,
    Organisation,
    Person,
    Phone,
    Supervisor,
    SupervisorRole,
)
from . import lenient_json

__all__ = [
    "ExportFormat",
    "csv_delimiter",
    "detect_format",
    "organisation_from_row",
    "person_from_row",
]


class ExportFormat(StrEnum):
    """The format of a downloaded export file, detected from its content."""

    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


_BOM = b"\xef\xbb\xbf"


def detect_format(head: bytes) -> ExportFormat:
    """The format of a file that starts with *head* (a few KiB are plenty)."""
    if head.startswith(b"PK\x03\x04"):
        return ExportFormat.XLSX
    text = head[len(_BOM) :] if head.startswith(_BOM) else head
    stripped = text.lstrip(b" \t\r\n")
    if stripped[:1] in (b"[", b"{"):
        return ExportFormat.JSON
    return ExportFormat.CSV


def csv_delimiter(first_line: str) -> str:
    """``;`` or ``,``: whichever separates more header cells outside quotes
    (``;`` on a tie, as in the vendor's Polish-locale CSV)."""
    counts = {";": 0, ",": 0}
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return "," if counts[","] > counts[";"] else ";"


# -- rows to records -------------------------------------------------------------

_PERSON_SCALARS = {
    "firstName": "first_name",
    "middleName": "middle_name",
    "lastName": "last_name",
    "pesel": "pesel",
    "description": "description",
    "idDocType": "id_doc_type",
    "idDocNumber": "id_doc_number",
    "idDocIssuer": "id_doc_issuer",
}
_ORGANISATION_SCALARS = {
    "name": "name",
    "description": "description",
    "nip": "nip",
    "regon": "regon",
    "registry": "registry",
}
_ADDRESS_FIELDS = {
    "name": "name",
    "street": "street",
    "building_no": "building_no",
    "buildingNo": "building_no",
    "local_no": "local_no",
    "localNo": "local_no",
    "postcode": "postcode",
    "city": "city",
    "district": "district",
    "voivodeship": "voivodeship",
    "country": "country",
}
_SUPERVISOR_FIELDS = {"user": "user", "role": "role"}
_SLOT = re.compile(r"(phone|email)([1-9])(Name)?")
_SPLIT = re.compile(r"[\s,;]+")
_CUSTOM = "customFields"


def _text(value: Any) -> str | None:
    """A cell as text: blanks are ``None``, numbers keep integer form."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode() if value else None
    return str(value)


def _structured(value: Any) -> Any:
    """A nested cell: JSON text decoded (``None`` when it is not JSON), or the
    value itself when the file was JSON already."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[0] not in "[{":
            return _NOT_JSON
        try:
            return lenient_json.loads(text)
        except lenient_json.JSONDecodeError:
            return _NOT_JSON
    return value


_NOT_JSON = object()


def _items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # PHP's index-keyed "array"
        return list(value.values())
    return [value]


class _Row:
    """Collects one row's cells by kind before the record is built."""

    def __init__(self, scalars: Mapping[str, str], links: str) -> None:
        self.scalar_names = scalars
        self.links_name = links
        self.scalars: dict[str, str | None] = {}
        self.slots: dict[tuple[str, int], dict[str, str | None]] = {}
        self.addresses: dict[int, dict[str, str | None]] = {}
        self.supervisors: dict[int, dict[str, str | None]] = {}
        self.links: dict[int, str] = {}
        self.custom: dict[str, str | None] = {}
        self.extra: dict[str, str | None] = {}

    def add(self, header: str, value: Any) -> None:
        header = header.strip() if isinstance(header, str) else str(header)
        attr = self.scalar_names.get(header)
        if attr is not None:
            self.scalars[attr] = _text(value)
            return
        slot = _SLOT.fullmatch(header)
        if slot is not None:
            kind, number, is_name = slot.groups()
            self.slots.setdefault((kind, int(number)), {})["name" if is_name else "value"] = _text(
                value
            )
            return
        root, _, rest = header.partition(".")
        handled = False
        if root == "addresses":
            handled = self._nested(header, rest, value, self.addresses, _ADDRESS_FIELDS)
        elif root == "supervisors":
            handled = self._nested(
                header, rest, value, self.supervisors, {"user": "user", "role": "role"}
            )
        elif root == self.links_name:
            handled = self._links(rest, value)
        elif root == _CUSTOM:
            handled = self._custom(rest, value)
        if not handled:
            self.extra[header] = _text(value)

    def _nested(
        self,
        header: str,
        rest: str,
        value: Any,
        into: dict[int, dict[str, str | None]],
        fields: Mapping[str, str],
    ) -> bool:
        if not rest:  # the whole list in one cell
            decoded = _structured(value)
            if decoded is None:
                return True
            if decoded is _NOT_JSON:
                return False
            base = len(into)
            for offset, item in enumerate(_items(decoded)):
                if not isinstance(item, dict):
                    return False
                entry = into.setdefault(base + offset, {})
                for key, cell in item.items():
                    name = fields.get(key)
                    if name is not None:
                        entry[name] = _text(cell)
            return True
        index_text, _, field = rest.partition(".")
        if not field:  # addresses.city: the first entry
            index_text, field = "0", index_text
        if not index_text.isdigit():
            return False
        name = fields.get(field)
        if name is None:
            return False
        into.setdefault(int(index_text), {})[name] = _text(value)
        return True

    def _links(self, rest: str, value: Any) -> bool:
        if rest:
            index_text, _, field = rest.partition(".")
            if not index_text.isdigit() or field not in ("", "uuid"):
                return False
            text = _text(value)
            if text is not None:
                self.links[int(index_text)] = text
            return True
        decoded = _structured(value)
        if decoded is None:
            return True
        if decoded is _NOT_JSON:
            decoded = [part for part in _SPLIT.split(str(value)) if part]
        base = len(self.links)
        for offset, item in enumerate(_items(decoded)):
            if isinstance(item, dict):
                item = item.get("uuid")
            text = _text(item)
            if text is not None:
                self.links[base + offset] = text
        return True

    def _custom(self, rest: str, value: Any) -> bool:
        if rest:
            key = rest[: -len(".uuid")] if rest.endswith(".uuid") else rest
            self.custom[key] = _text(value)
            return True
        decoded = _structured(value)
        if decoded is None:
            return True
        if isinstance(decoded, dict):
            for key, cell in decoded.items():
                self.custom[str(key)] = _text(cell)
            return True
        if isinstance(decoded, list):
            for item in decoded:
                if not isinstance(item, dict) or "uuid" not in item:
                    return False
                self.custom[str(item["uuid"])] = _text(item.get("value"))
            return True
        return False

    def phones_and_emails(self) -> tuple[tuple[Phone, ...], tuple[Email, ...]]:
        phones: list[Phone] = []
        emails: list[Email] = []
        for (kind, number), cells in sorted(self.slots.items()):
            value = cells.get("value")
            if value is None:
                if cells.get("name") is not None:  # a label without a number: keep it
                    self.extra[f"{kind}{number}Name"] = cells["name"]
                continue
            if kind == "phone":
                phones.append(Phone(value, cells.get("name")))
            else:
                emails.append(Email(value, cells.get("name")))
        return tuple(phones), tuple(emails)

    def address_list(self) -> tuple[Address, ...]:
        return tuple(
            Address(**cells)
            for _, cells in sorted(self.addresses.items())
            if any(v is not None for v in cells.values())
        )

    def supervisor_list(self) -> tuple[Supervisor, ...]:
        result = []
        for _, cells in sorted(self.supervisors.items()):
            user = cells.get("user")
            if user is None:
                continue
            role = cells.get("role")
            result.append(Supervisor(user, SupervisorRole(role) if role else None))
        return tuple(result)

    def link_list(self) -> tuple[str, ...]:
        return tuple(v for _, v in sorted(self.links.items()))


def _collect(row: Mapping[Any, Any] | Iterable[tuple[Any, Any]], into: _Row) -> _Row:
    pairs = row.items() if isinstance(row, Mapping) else row
    for header, value in pairs:
        if header is None or header == "":
            continue
        into.add(header, value)
    return into


def person_from_row(row: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> Person:
    """A :class:`Person` from one row (header -> cell) of a people export."""
    cells = _collect(row, _Row(_PERSON_SCALARS, "organisations"))
    phones, emails = cells.phones_and_emails()
    return Person(
        **cells.scalars,
        phones=phones,
        emails=emails,
        addresses=cells.address_list(),
        organisations=cells.link_list(),
        supervisors=cells.supervisor_list(),
        custom_fields=cells.custom,
        extra=cells.extra,
    )


def organisation_from_row(row: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> Organisation:
    """An :class:`Organisation` from one row of an organisations export."""
    cells = _collect(row, _Row(_ORGANISATION_SCALARS, "people"))
    phones, emails = cells.phones_and_emails()
    return Organisation(
        **cells.scalars,
        phones=phones,
        emails=emails,
        addresses=cells.address_list(),
        people=cells.link_list(),
        supervisors=cells.supervisor_list(),
        custom_fields=cells.custom,
        extra=cells.extra,
    )
