"""Response bodies to models: pure functions over bytes (no I/O).

A page is read whole before any of it is used: an envelope that is not the
documented one raises :class:`~ccrm_async.ResponseError` (and the page is
retried or the pull fails), never an early "end of data". Inside a good
envelope each record is read on its own (see :mod:`ccrm_async.converter`): a
record in PHP's spelling is read and its bent values noted; a record that
still cannot be read becomes a :class:`~ccrm_async.RejectedRecord` and the
others are kept, unless *strict*, where the first one raises
:class:`~ccrm_async.ResponseError` naming the page, the uuid and the field path.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import attrs
import cattrs

from ._core.php import Bends, Unreadable
from ._core.responses import parse_envelope
from .converter import LENIENT, read_record, read_refused
from .errors import ResponseError
from .models import RejectedRecord

__all__ = ["Page", "parse_page", "structure_records"]

T = TypeVar("T")


@attrs.frozen
class Page(Generic[T]):
    """One parsed page: its records, the total the server stated with it (None
    when it stated none), and what it took to read it.

    ``size`` is the number of records the answer held, rejected ones included;
    ``rejected`` the records that could not be read; ``bends`` the values bent
    to fit, per record (index in ``records`` -> its bends); ``envelope_bends``
    those of the envelope (a byte-order mark, ``"data": {}``, ...).
    """

    number: int
    records: list[T]
    total: int | None
    size: int = -1
    rejected: list[RejectedRecord] = attrs.field(factory=list)
    bends: dict[int, Bends] = attrs.field(factory=dict)
    envelope_bends: Bends = attrs.field(factory=list)

    @property
    def count(self) -> int:
        """Records the answer held (``size``, or ``records`` when not given)."""
        return self.size if self.size >= 0 else len(self.records)


def structure_records(
    items: list[Any], cls: type[T], converter: cattrs.Converter = LENIENT
) -> list[T]:
    """Structure a ``data`` list; a record that cannot be read fails the lot
    with :class:`~ccrm_async.ResponseError` naming its position and field path."""
    records = []
    for index, item in enumerate(items):
        try:
            record, _ = read_record(converter, item, cls)
        except Unreadable as exc:
            raise ResponseError(
                f"{cls.__name__} record {index + 1} could not be read: {exc}"
            ) from None
        records.append(record)
    return records


def _data_items(data: Any) -> tuple[list[Any], Bends]:
    """``data`` as a list: PHP's ``{}`` and index-keyed objects are lists too."""
    if isinstance(data, list):
        return data, []
    if isinstance(data, dict) and all(isinstance(k, str) and k.isdigit() for k in data):
        what = "an empty object for a list" if not data else "a list keyed by index"
        return [data[k] for k in sorted(data, key=int)], [("data", what)]
    raise ResponseError(f"data is {type(data).__name__}, not a list")


def parse_page(
    body: bytes,
    cls: type[T],
    number: int,
    converter: cattrs.Converter = LENIENT,
    *,
    strict: bool = False,
) -> Page[T]:
    """A paged answer: the envelope, ``data`` as a list, ``otherData.totalCount``.

    Raises :class:`~ccrm_async.ResponseError` for a body that is not a paged
    answer, and under *strict* for the first record that cannot be read.
    """
    envelope = parse_envelope(body, data_type=None)
    items, envelope_bends = _data_items(envelope.data)
    envelope_bends[:0] = envelope.bends
    total = envelope.total_count
    if total is None:
        envelope_bends.append(("otherData.totalCount", "missing: paged until a short page"))
    hook = converter.get_structure_hook(cls)
    try:  # the hot path: every record in the documented spelling
        records: list[T] = [hook(item, cls) for item in items]
    except Exception:
        return _read_one_by_one(items, cls, number, converter, total, envelope_bends, strict=strict)
    return Page(
        number=number, records=records, total=total, size=len(items), envelope_bends=envelope_bends
    )


def _read_one_by_one(
    items: list[Any],
    cls: type[T],
    number: int,
    converter: cattrs.Converter,
    total: int | None,
    envelope_bends: Bends,
    *,
    strict: bool,
) -> Page[T]:
    """A page with a record the fast hook refused: each record read on its own."""
    records: list[T] = []
    rejected: list[RejectedRecord] = []
    bends: dict[int, Bends] = {}
    kind = cls.__name__
    hook = converter.get_structure_hook(cls)
    for item in items:
        if type(item) is dict:
            try:
                records.append(hook(item, cls))
                continue
            except Exception:  # noqa: S110 - refused: read it the slow way below
                pass
        try:
            record, record_bends = read_refused(converter, item, cls)
        except Unreadable as exc:
            reject = RejectedRecord(
                kind=kind,
                page=number,
                uuid=RejectedRecord.uuid_of(item),
                path=exc.path,
                reason=str(exc),
                raw=item,
            )
            if strict:
                raise ResponseError(
                    f"page {number}: {kind} {reject.uuid or '(no uuid)'} could not be "
                    f"read: {reject.reason}"
                ) from None
            rejected.append(reject)
            continue
        if record_bends:
            bends[len(records)] = record_bends
        records.append(record)
    return Page(
        number=number,
        records=records,
        total=total,
        size=len(items),
        rejected=rejected,
        bends=bends,
        envelope_bends=envelope_bends,
    )
