"""PHP habits for the emulator: answers spelled the way the real API spells them.

The real API is PHP behind nginx (API-NOTES, "The API is PHP"). :class:`PhpHabits`
switches its habits on in :class:`~ccrm_async.testing.CCRMEmulator` answers;
:func:`php_spelling` and :func:`unreadable` are the per-record rewrites, usable
on their own in your tests (they never change what a record means: a readable
value stays readable, only its spelling changes).
"""

from __future__ import annotations

import copy
import random
from typing import Any

import attrs

__all__ = ["RECORD_HABITS", "PhpHabits", "php_spelling", "unreadable"]

#: The record-level habits :func:`php_spelling` can apply.
RECORD_HABITS = (
    "wrap_objects",  # "to": [{...}] - an object in a one-element list
    "empty_objects",  # an absent object ("to": null) as [] or {}
    "keyed_lists",  # "flags": {"0": {...}, "1": {...}}
    "null_lists",  # an empty list as null
    "string_numbers",  # "duration": "125", "note": "1"
    "float_numbers",  # "duration": 125.0
    "comma_decimals",  # "cost": "0,50"
    "empty_numbers",  # an absent number (null) as ""
    "zero_dates",  # an absent date-time (null) as "0000-00-00 00:00:00"
    "wrap_scalars",  # "destination": ["..."]
)

_OBJECTS = ("to", "from", "userTalk", "externalNumber")


@attrs.define
class PhpHabits:
    """PHP habits of the emulator's answers; change them at any time.

    - ``bom``: a UTF-8 byte-order mark before every call-history and notes body;
    - ``no_total_count``: ``"otherData": []`` on paged answers (no ``totalCount``);
    - ``empty_data_object``: ``"data": {}`` for an empty page;
    - ``record_rate``: share of records spelled the PHP way (each with a random
      set of :data:`RECORD_HABITS`); drawn per record uuid from ``seed``, so a
      record is spelled the same on every request;
    - ``unreadable_rate``: share of call records made unreadable (see
      :func:`unreadable`), also drawn per uuid;
    - ``unreadable_uuids``: call records made unreadable, by uuid;
    - ``zero_date_uuids``: call records whose ``callDate`` is sent as the MySQL
      zero date ``0000-00-00 00:00:00`` (still selected by their real date).
    """

    bom: bool = False
    no_total_count: bool = False
    empty_data_object: bool = False
    record_rate: float = 0.0
    unreadable_rate: float = 0.0
    unreadable_uuids: frozenset[str] = frozenset()
    zero_date_uuids: frozenset[str] = frozenset()
    seed: int = 0

    @property
    def active(self) -> bool:
        """True when any habit is on."""
        return bool(
            self.bom
            or self.no_total_count
            or self.empty_data_object
            or self.record_rate
            or self.unreadable_rate
            or self.unreadable_uuids
            or self.zero_date_uuids
        )

    def spell(self, record: dict[str, Any], *, spoil: bool = True) -> dict[str, Any]:
        """*record* as this emulator sends it today (the stored record is
        untouched); *spoil* False never makes it unreadable (notes)."""
        uuid = str(record.get("uuid"))
        rng = random.Random(f"{self.seed}:{uuid}")
        spoiled = rng.random() < self.unreadable_rate or uuid in self.unreadable_uuids
        if spoil and spoiled:
            return unreadable(record, rng)
        if uuid in self.zero_date_uuids:
            record = {**record, "callDate": "0000-00-00 00:00:00"}
        if rng.random() < self.record_rate:
            habits = [h for h in RECORD_HABITS if rng.random() < 0.5] or ["wrap_objects"]
            return php_spelling(record, habits, rng)
        return record


def php_spelling(
    record: dict[str, Any], habits: list[str] | tuple[str, ...], rng: random.Random
) -> dict[str, Any]:
    """A deep copy of a call or note record with *habits* (from
    :data:`RECORD_HABITS`) applied; *rng* picks among equivalent spellings."""
    unknown = set(habits) - set(RECORD_HABITS)
    if unknown:
        raise ValueError(f"unknown habits: {', '.join(sorted(unknown))}")
    out = copy.deepcopy(record)
    on = set(habits)
    for key in _OBJECTS:
        value = out.get(key)
        if value is None and key in out and "empty_objects" in on:
            out[key] = rng.choice([[], {}])
        elif isinstance(value, dict) and value and "wrap_objects" in on:
            out[key] = [value]
    for key, holder in (("flags", out), ("files", out)):
        _respell_list(holder, key, on, rng)
    talk = out.get("userTalk")
    talk = talk[0] if isinstance(talk, list) and talk else talk
    if isinstance(talk, dict):
        _respell_list(talk, "receivers", on, rng)
    for key in ("duration", "cost", "fileSize"):
        value = out.get(key)
        if value is None and key in out and "empty_numbers" in on:
            out[key] = ""
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "comma_decimals" in on:
                out[key] = f"{float(value):.2f}".replace(".", ",")
            elif "string_numbers" in on:
                out[key] = str(value)
            elif "float_numbers" in on and isinstance(value, int):
                out[key] = float(value)
    for key in ("note", "pin", "edit"):
        value = out.get(key)
        if isinstance(value, int | bool) and "string_numbers" in on:
            out[key] = str(int(value))
    for key in ("callDate", "created", "uploadedAt"):
        if key in out and out[key] is None and "zero_dates" in on:
            out[key] = "0000-00-00 00:00:00"
    if isinstance(out.get("destination"), str) and "wrap_scalars" in on:
        out["destination"] = [out["destination"]]
    return out


def _respell_list(holder: dict[str, Any], key: str, on: set[str], rng: random.Random) -> None:
    value = holder.get(key)
    if isinstance(value, list):
        if not value and "null_lists" in on:
            holder[key] = None
        elif value and "keyed_lists" in on:
            holder[key] = {str(i): item for i, item in enumerate(value)}


def unreadable(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of a call record with one field no reading can save: a
    ``duration`` that is not a number, a ``callDate`` that is not a date, or a
    ``to`` that is a bare string. Its uuid is kept."""
    out = dict(record)
    field = rng.choice(["duration", "callDate", "to"])
    out[field] = {"duration": "n/a", "callDate": "yesterday", "to": "somebody"}[field]
    return out
