"""Response bodies to models: pure functions over bytes (no I/O).

Everything that can go wrong while reading a body is raised as
:class:`~ccrm_async.ResponseError`: a page is either parsed whole or not at all.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs

from ._core.responses import parse_envelope
from .converter import LENIENT
from .errors import ResponseError
from .pagination import Page

__all__ = ["parse_page", "structure_records"]

T = TypeVar("T")


def structure_records(
    items: list[Any], cls: type[T], converter: cattrs.Converter = LENIENT
) -> list[T]:
    """Structure a ``data`` list; a record that cannot be read fails the lot."""
    hook = converter.get_structure_hook(cls)
    try:
        return [hook(item, cls) for item in items]
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ResponseError(
            f"a {cls.__name__} record could not be read: {_describe(exc)}"
        ) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return type(exc).__name__


def parse_page(
    body: bytes, cls: type[T], number: int, converter: cattrs.Converter = LENIENT
) -> Page[T]:
    """A paged answer: the envelope, ``data`` as a list, ``otherData.totalCount``."""
    envelope = parse_envelope(body, data_type=list)
    total = envelope.total_count
    if total is None:
        raise ResponseError("otherData.totalCount is missing from a paged answer")
    return Page(
        number=number, records=structure_records(envelope.data, cls, converter), total=total
    )
