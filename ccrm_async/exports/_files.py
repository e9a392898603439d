"""Reading export files from disk: CSV, XLSX and JSON rows, then typed contacts.

CSV is read as UTF-8 (with or without a BOM) when the whole file decodes as
UTF-8, else as cp1250 (the Windows code page of Polish text); the delimiter
is ``;`` or ``,``, taken from the header line. XLSX needs the optional extra
``ccrm-async[xlsx]`` (openpyxl), imported only when such a file is read. JSON
is a list of objects, or an envelope whose ``data`` is one.

CSV and XLSX rows are streamed; a JSON file is decoded whole.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import os
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from .._core import lenient_json
from .._core.export_files import (
    ExportFormat,
    csv_delimiter,
    detect_format,
    organisation_from_row,
    person_from_row,
)
from ..errors import ExportError
from ..models.contacts import Organisation, Person

__all__ = [
    "csv_encoding",
    "file_format",
    "iter_organisations",
    "iter_people",
    "iter_rows",
]

_SNIFF = 4096
Row = list[tuple[Any, Any]]


def file_format(path: str | os.PathLike[str]) -> ExportFormat:
    """The format of the file at *path*, from its first bytes."""
    with open(path, "rb") as f:
        return detect_format(f.read(_SNIFF))


def csv_encoding(path: str | os.PathLike[str]) -> str:
    """``"utf-8-sig"`` when the whole file is UTF-8 (a BOM is optional), else ``"cp1250"``.

    Reads the file once in 1 MiB blocks; nothing is kept.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1250"
    return "utf-8-sig"


def iter_rows(
    path: str | os.PathLike[str],
    fmt: ExportFormat | str | None = None,
    *,
    encoding: str | None = None,
) -> Iterator[Row]:
    """The rows of an export file as ``(header, cell)`` pairs, header row excluded.

    *fmt* is detected when not given; *encoding* (CSV only) likewise.
    """
    fmt = ExportFormat(fmt) if fmt is not None else file_format(path)
    if fmt is ExportFormat.CSV:
        return _csv_rows(Path(path), encoding or csv_encoding(path))
    if fmt is ExportFormat.XLSX:
        return _xlsx_rows(Path(path))
    return _json_rows(Path(path))


def _csv_rows(path: Path, encoding: str) -> Iterator[Row]:
    errors = "replace" if encoding == "cp1250" else "strict"
    with open(path, encoding=encoding, errors=errors, newline="") as f:
        first = f.readline()
        if not first:
            return
        reader = csv.reader(itertools.chain([first], f), delimiter=csv_delimiter(first))
        header = next(reader, None)
        if header is None:
            return
        header = [h.lstrip("\ufeff").strip() for h in header]
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            yield _pairs(header, cells)


def _pairs(header: list[str], cells: list[Any]) -> Row:
    row: Row = list(zip(header, cells, strict=False))
    if len(cells) < len(header):  # trailing empty cells left out: still the columns
        row.extend((name, None) for name in header[len(cells) :])
    elif len(cells) > len(header):  # cells without a header: keep them by position
        row.extend((f"#{i + 1}", cells[i]) for i in range(len(header), len(cells)))
    return row


def _xlsx_rows(path: Path) -> Iterator[Row]:
    try:
        import openpyxl  # type: ignore[import-untyped]  # the optional extra "xlsx"
    except ImportError:
        raise ExportError(
            "this export is an XLSX file; to read it, install the optional extra: "
            "pip install 'ccrm-async[xlsx]'"
        ) from None
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.active
        if sheet is None:
            return
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None:
            return
        header = ["" if h is None else str(h).strip() for h in first]
        for values in rows:
            cells = [_xlsx_cell(v) for v in values]
            if all(c is None for c in cells):
                continue
            yield _pairs(header, cells)
    finally:
        workbook.close()


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | time):
        return value.isoformat()
    return value


def _json_rows(path: Path) -> Iterator[Row]:
    try:
        payload = lenient_json.loads(path.read_bytes())
    except lenient_json.JSONDecodeError:
        raise ExportError("the export file is not valid JSON") from None
    if isinstance(payload, dict):
        payload = payload.get("data", payload)
    if isinstance(payload, dict):
        payload = list(payload.values())
    if not isinstance(payload, list):
        raise ExportError("the JSON export is not a list of records")
    for item in payload:
        if isinstance(item, dict):
            yield list(item.items())


def iter_people(
    path: str | os.PathLike[str],
    fmt: ExportFormat | str | None = None,
    *,
    encoding: str | None = None,
) -> Iterator[Person]:
    """Each row of a people export file as a :class:`~ccrm_async.models.Person`."""
    for row in iter_rows(path, fmt, encoding=encoding):
        yield person_from_row(row)


def iter_organisations(
    path: str | os.PathLike[str],
    fmt: ExportFormat | str | None = None,
    *,
    encoding: str | None = None,
) -> Iterator[Organisation]:
    """Each row of an organisations export file as an
    :class:`~ccrm_async.models.Organisation`."""
    for row in iter_rows(path, fmt, encoding=encoding):
        yield organisation_from_row(row)
