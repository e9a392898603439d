"""Contacts from CCRM export files on disk, for the directory to index.

An export file holds people or organisations; :func:`detect_kind` tells them
apart by their column headers when the caller does not say. Each file becomes
an :class:`ExportFileSource`: an iterable of contacts that counts what it
yielded, so that a command can refuse a file that yielded nothing instead of
serving an empty directory. Any failure to read a file (a format the reader
does not know, a damaged XLSX, bytes that are not text) is raised as
:class:`~ccrm_async.thulium.DirectoryError` naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from .._core.export_columns import ORGANISATION_COLUMNS, PEOPLE_COLUMNS
from .._core.export_files import organisation_from_row, person_from_row
from ..exports import ExportResult, read_rows
from .fields import Contact
from .store import DirectoryError

__all__ = ["ContactKind", "ExportFileSource", "detect_kind", "file_sources", "result_contacts"]

ContactKind = Literal["people", "organisations"]

_PEOPLE_ONLY = frozenset(
    {"firstName", "middleName", "lastName", "pesel", "idDocType", "idDocNumber", "idDocIssuer"}
    | {"organisations"}
)
_ORGANISATIONS_ONLY = frozenset({"name", "nip", "regon", "registry", "people"})
#: Columns that make a row a contact of each kind (anything else is ignored).
_KNOWN: dict[str, frozenset[str]] = {
    "people": frozenset(PEOPLE_COLUMNS) | {"customFields"},
    "organisations": frozenset(ORGANISATION_COLUMNS) | {"customFields"},
}


def _roots(headers: Iterable[str]) -> set[str]:
    return {str(h).strip().split(".", 1)[0] for h in headers}


def detect_kind(headers: Iterable[str]) -> ContactKind:
    """``"people"`` or ``"organisations"`` from an export file's column headers.

    Counts the headers only one kind has (``firstName``, ``lastName``,
    ``pesel``, ``idDoc*``, ``organisations.*`` for people; ``name``, ``nip``,
    ``regon``, ``registry``, ``people.*`` for organisations); raises
    :class:`DirectoryError` when neither wins (e.g. only phones and e-mails).
    """
    roots = _roots(headers)
    people = len(roots & _PEOPLE_ONLY)
    organisations = len(roots & _ORGANISATIONS_ONLY)
    if people > organisations:
        return "people"
    if organisations > people:
        return "organisations"
    raise DirectoryError(
        "cannot tell whether the file holds people or organisations from its columns;"
        " name it as people or organisations explicitly"
    )


class ExportFileSource:
    """The contacts of one export file, read lazily, each pass from the start.

    *kind* ``None`` tells people from organisations by the headers.
    :attr:`count` is how many contacts the last pass yielded. Iterating raises
    :class:`DirectoryError` naming the file when it cannot be read, when its
    columns hold no contact data of the kind (an unrelated CSV), and with
    *require_contacts* when it holds no contact at all (raised at the end of
    the pass, so a build from it is abandoned before it replaces anything).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        kind: ContactKind | None = None,
        *,
        require_contacts: bool = False,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.require_contacts = require_contacts
        self.count = 0

    def __repr__(self) -> str:
        return f"ExportFileSource({str(self.path)!r}, {self.kind!r})"

    def __iter__(self) -> Iterator[Contact]:
        self.count = 0
        try:
            yield from self._contacts()
            if self.require_contacts and self.count == 0:
                raise DirectoryError("no contacts in it: nothing to serve from it")
        except DirectoryError as exc:
            raise DirectoryError(f"{self.path}: {exc.message}") from None
        except (OSError, UnicodeError) as exc:
            raise DirectoryError(f"{self.path}: cannot read it: {_reason(exc)}") from None
        except Exception as exc:  # a damaged XLSX, a JSON of another shape ...
            raise DirectoryError(
                f"{self.path}: not a CCRM export file this version can read ({_reason(exc)})"
            ) from None

    def _contacts(self) -> Iterator[Contact]:
        rows = iter(read_rows(self.path))
        try:
            first = next(rows, None)
            if first is None:
                return  # a header and no rows: nothing to index, whatever the kind
            headers = [str(h) for h, _ in first]
            kind = self.kind or detect_kind(headers)
            if not _roots(headers) & _KNOWN[kind]:
                raise DirectoryError(f"none of its columns is a column of a CCRM {kind} export")
            convert = person_from_row if kind == "people" else organisation_from_row
            yield convert(first)
            self.count = 1
            for row in rows:
                yield convert(row)
                self.count += 1
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or getattr(exc, "message", None) or str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


_Paths = Iterable[str | os.PathLike[str]] | str | os.PathLike[str]


def _paths(value: _Paths) -> list[str | os.PathLike[str]]:
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)


def file_sources(
    paths: _Paths = (),
    *,
    people: _Paths = (),
    organisations: _Paths = (),
    require_contacts: bool = False,
) -> list[ExportFileSource]:
    """One :class:`ExportFileSource` per file: *paths* told apart by their
    headers, *people* and *organisations* as named (*require_contacts*: see
    the class). :class:`FileNotFoundError` (naming the file) when one is missing."""
    kinds: list[
        tuple[ContactKind | None, Iterable[str | os.PathLike[str]] | str | os.PathLike[str]]
    ]
    kinds = [(None, paths), ("people", people), ("organisations", organisations)]
    named = [
        ExportFileSource(p, kind, require_contacts=require_contacts)
        for kind, group in kinds
        for p in _paths(group)
    ]
    for source in named:
        if not source.path.is_file():
            raise FileNotFoundError(f"no such export file: {source.path}")
    return named


def result_contacts(result: ExportResult) -> Iterator[Contact]:
    """The contacts of a downloaded export (its ``kind`` says which)."""
    convert = person_from_row if result.kind == "people" else organisation_from_row
    for row in read_rows(result.path, result.format):
        yield convert(row)
