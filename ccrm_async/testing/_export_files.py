"""The files the emulator's exports serve: CSV (semicolons or commas, with or
without a BOM, UTF-8 or cp1250), JSON and XLSX, rendered from wire-form
contacts the way the vendor's exporter lays them out."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import attrs
import orjson

from .._core.export_columns import is_custom_field

__all__ = ["ExportFile", "render_export"]

_CHUNK = 1 << 18
_MAX_LINKS = 3  # at most 3 addresses, and as many linked contacts in a flat file
_ADDRESS_FIELDS = (
    "name",
    "street",
    "city",
    "postcode",
    "building_no",
    "local_no",
    "voivodeship",
    "country",
    "district",
)


@attrs.frozen
class ExportFile:
    """A file as ``head`` then ``block`` repeated ``repeat`` times (large files
    are never held whole)."""

    head: bytes
    block: bytes = b""
    repeat: int = 0
    content_type: str = "text/csv"
    extension: str = "csv"

    @property
    def size(self) -> int:
        return len(self.head) + len(self.block) * self.repeat

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.head), _CHUNK):
            yield self.head[start : start + _CHUNK]
        if self.repeat and self.block:
            per = max(1, _CHUNK // len(self.block))
            full, rest = divmod(self.repeat, per)
            group = self.block * per
            for _ in range(full):
                yield group
            if rest:
                yield self.block * rest

    def data(self) -> bytes:
        return b"".join(self.chunks())

    def chunks_from(self, offset: int) -> Iterator[bytes]:
        """The bytes from *offset* on, in chunks."""
        skip = offset
        for chunk in self.chunks():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0


def _custom_value(record: dict[str, Any], field_uuid: str) -> str | None:
    digest = sum(ord(c) for c in record["uuid"] + field_uuid)
    return None if digest % 5 == 0 else f"wartość {digest % 97}"


def _flat_header(columns: list[str], records: list[dict[str, Any]]) -> list[str]:
    header: list[str] = []
    for column in columns:
        if column == "addresses":
            header += [f"addresses.{i}.{f}" for i in range(_MAX_LINKS) for f in _ADDRESS_FIELDS]
        elif column in ("organisations", "people"):
            header += [f"{column}.{i}" for i in range(_MAX_LINKS)]
        elif column == "supervisors":
            count = max((len(r.get("supervisors", [])) for r in records), default=0)
            header += [
                f"supervisors.{i}.{field}"
                for i in range(max(count, 1))
                for field in ("user", "role")
            ]
        else:
            header.append(column)
    return header


def _flat_cell(record: dict[str, Any], header: str) -> Any:
    if is_custom_field(header):
        return _custom_value(record, header.partition(".")[2])
    parts = header.split(".")
    if len(parts) == 1:
        return record.get(header)
    items = record.get(parts[0]) or []
    index = int(parts[1])
    if index >= len(items):
        return None
    item = items[index]
    return item.get(parts[2]) if len(parts) == 3 else item


def _json_cell(record: dict[str, Any], column: str) -> Any:
    if is_custom_field(column):
        return _custom_value(record, column.partition(".")[2])
    value = record.get(column)
    if isinstance(value, list):
        return orjson.dumps(value).decode() if value else None
    return value


def _csv_bytes(rows: list[list[Any]], delimiter: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([["" if c is None else c for c in row] for row in rows])
    return buffer.getvalue().encode("utf-8" if encoding == "utf-8-sig" else encoding, "replace")


def render_export(
    columns: list[str],
    records: list[dict[str, Any]],
    *,
    format: str = "csv",
    encoding: str = "utf-8-sig",
    nested: str = "flat",
    size: int | None = None,
) -> ExportFile:
    """The file an export of *columns* of *records* gives: *format* ``"csv"``
    (semicolons), ``"csv_comma"``, ``"json"`` or ``"xlsx"``; *encoding* of a
    CSV; *nested* lists ``"flat"`` (``addresses.0.city``) or as ``"json"``
    cells; *size*: about that many bytes, the rows repeated (benchmarks)."""
    if format == "json":
        items = []
        for record in records:
            item: dict[str, Any] = {}
            for column in columns:
                if is_custom_field(column):
                    field = column.partition(".")[2]
                    item.setdefault("customFields", {})[field] = _custom_value(record, field)
                else:
                    item[column] = record.get(column)
            items.append(item)
        return ExportFile(orjson.dumps(items), content_type="application/json", extension="json")
    if nested == "json":
        header = list(columns)
        rows = [[_json_cell(r, c) for c in columns] for r in records]
    else:
        header = _flat_header(columns, records)
        rows = [[_flat_cell(r, h) for h in header] for r in records]
    if format == "xlsx":
        return _xlsx(header, rows)
    delimiter = "," if format == "csv_comma" else ";"
    bom = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    head = bom + _csv_bytes([header], delimiter, encoding)
    block = _csv_bytes(rows, delimiter, encoding)
    if size is not None and block:
        repeat = max(1, math.ceil((size - len(head)) / len(block)))
        return ExportFile(head, block, repeat)
    return ExportFile(head + block)


def _xlsx(header: list[str], rows: list[list[Any]]) -> ExportFile:
    import openpyxl  # type: ignore[import-untyped]  # the optional extra "xlsx"

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("export")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return ExportFile(
        buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        extension="xlsx",
    )
