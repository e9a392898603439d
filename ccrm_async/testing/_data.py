"""Deterministic fake CCRM data, in the wire format, quirks included.

Everything derives from a seed: the same seed gives the same calls, notes and
uuids on every machine. The records carry the quirks of the vendor's examples
(enum case mixed, ``numberNotFormatted`` as a number, ``reluuid``, notes as
Draft.js JSON strings, ``files`` as ``{}``), so the client is always tested
against them. Names and numbers are synthetic.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

__all__ = ["CallDataset", "draft_js"]

_FIRST = ["Adam", "Ewa", "Piotr", "Zofia", "Marek", "Hanna", "Tomasz", "Alicja"]
_LAST = ["Testowy", "Przykładowa", "Próbny", "Wzorcowa", "Fikcyjny", "Zmyślona"]
_ORGS = ["Demo sp. z o.o.", "Przykład S.A.", "Test-Bud s.c."]
_DIRECTIONS = ["in", "IN", "out", "OUT", "internal"]
_SERVICES = ["CALL", "call", "CALL", "SMS", "sms", "FAX"]
_STATUSES = ["answered", "ANSWERED", "noAnswer", "busy", "BUSY", "NO_ANSWER"]
_TALK = ["queue", "noQueue", "internal"]
_DESTINATIONS = {"in": "Połączenie Przychodzące", "out": "Połączenie Wychodzące"}
_FLAGS = [("Billing", "#fa702e"), ("VIP", "#2e8bfa"), ("Reklamacja", "#e0245e")]
_NOTE_TEXTS = [
    "Klient prosi o kontakt jutro.",
    "Wysłano ofertę e-mailem.",
    "Notatka do tego połączenia",
    "Reklamacja przekazana do działu technicznego.",
]

WIRE_FORMAT = "%Y-%m-%d %H:%M:%S"


def draft_js(text: str, key: str = "be2bp") -> str:
    """*text* as a Draft.js raw-content document, serialised as the API does."""
    blocks = [
        {
            "key": key,
            "text": line,
            "type": "unstyled",
            "depth": 0,
            "inlineStyleRanges": [],
            "entityRanges": [],
            "data": {},
        }
        for line in text.split("\n")
    ]
    return orjson.dumps({"blocks": blocks, "entityMap": {}}).decode()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _number(rng: random.Random) -> tuple[str, int | str]:
    digits = f"48{rng.randint(500_000_000, 799_999_999)}"
    formatted = f"+48 {digits[2:5]} {digits[5:8]} {digits[8:]}"
    # The example sends the unformatted number as a JSON number; mostly keep that.
    return formatted, (int(digits) if rng.random() < 0.8 else digits)


def _caller(rng: random.Random) -> dict[str, Any]:
    formatted, raw = _number(rng)
    kind = rng.choice(["unknown", "unknown", "person", "organisation"])
    caller: dict[str, Any] = {"type": kind, "number": formatted, "numberNotFormatted": raw}
    if kind == "person":
        caller.update(uuid=_uuid(rng), firstName=rng.choice(_FIRST), lastName=rng.choice(_LAST))
        caller["avatar"] = None
    elif kind == "organisation":
        caller.update(uuid=_uuid(rng), name=rng.choice(_ORGS))
    return caller


class CallDataset:
    """Calls of a period, newest first, as the API pages them.

    ``count`` calls spread over ``days`` days from ``start``; ``notes_ratio`` of
    them have notes (1–3 each, generated on demand from the call's uuid).
    Records can be inserted at the head or deleted while a pull runs; every
    change bumps :attr:`version`.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        count: int = 5000,
        start: datetime = datetime(2024, 1, 1),
        days: int = 31,
        notes_ratio: float = 0.3,
    ) -> None:
        self.seed = seed
        self.start = start
        self.end = start + timedelta(days=days) - timedelta(seconds=1)
        self.notes_ratio = notes_ratio
        self._rng = random.Random(seed)
        span = int((self.end - start).total_seconds())
        moments = sorted((self._rng.randrange(span + 1) for _ in range(count)), reverse=True)
        self.calls: list[dict[str, Any]] = [
            self._call(start + timedelta(seconds=s)) for s in moments
        ]
        self.version = 0
        self._index: list[str] | None = None
        self._by_uuid: dict[str, dict[str, Any]] | None = None

    def _call(self, when: datetime) -> dict[str, Any]:
        rng = self._rng
        direction = rng.choice(_DIRECTIONS)
        service = rng.choice(_SERVICES)
        status = rng.choice(_STATUSES)
        answered = status.lower() == "answered"
        formatted, raw = _number(rng)
        flag_key = "relUuid" if rng.random() < 0.5 else "reluuid"
        flags = [
            {"name": name, "uuid": _uuid(rng), "color": color, flag_key: _uuid(rng)}
            for name, color in rng.sample(_FLAGS, rng.choice([0, 0, 0, 1, 2]))
        ]
        receivers = [
            {
                "internal": rng.randint(100, 130),
                "uuid": _uuid(rng),
                "firstName": rng.choice(_FIRST),
                "lastName": rng.choice(_LAST),
            }
        ]
        return {
            "to": _caller(rng),
            "from": _caller(rng),
            "userTalk": {"status": rng.choice(_TALK), "receivers": receivers},
            "uuid": _uuid(rng),
            "callDirection": direction,
            "callDate": when.strftime(WIRE_FORMAT),
            "duration": rng.randint(5, 1800) if answered else 0,
            "destination": _DESTINATIONS.get(direction.lower(), "Połączenie Wewnętrzne"),
            "cost": 0,
            "service": service,
            "smsData": "Dziękujemy za kontakt." if service.lower() == "sms" else None,
            "note": 1 if rng.random() < self.notes_ratio else 0,
            "externalNumber": {
                "numberNotFormatted": raw,
                "numberFormatted": formatted,
                "type": rng.choice(["unknown", "person", "organisation"]),
            },
            "flags": flags,
            "status": status,
        }

    # -- queries -------------------------------------------------------------

    def _dates(self) -> list[str]:
        # Ascending call dates, for bisecting the newest-first list.
        if self._index is None:
            self._index = [c["callDate"] for c in reversed(self.calls)]
        return self._index

    def select(self, date_from: str, date_to: str) -> list[dict[str, Any]]:
        """The calls with ``date_from <= callDate <= date_to``, newest first."""
        dates = self._dates()
        lo = bisect.bisect_left(dates, date_from)
        hi = bisect.bisect_right(dates, date_to)
        n = len(dates)
        return self.calls[n - hi : n - lo]

    def by_uuid(self, call_uuid: str) -> dict[str, Any] | None:
        if self._by_uuid is None:
            self._by_uuid = {c["uuid"]: c for c in self.calls}
        return self._by_uuid.get(call_uuid)

    def notes_for(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        """The notes of a call (none unless its ``note`` flag is 1)."""
        if not call.get("note"):
            return []
        rng = random.Random(f"{self.seed}:{call['uuid']}")
        when = datetime.strptime(call["callDate"], WIRE_FORMAT)
        notes = []
        for i in range(rng.randint(1, 3)):
            created = when + timedelta(minutes=rng.randint(1, 120) + i)
            text = rng.choice(_NOTE_TEXTS)
            number = call["externalNumber"]
            notes.append(
                {
                    "text": draft_js(text) if rng.random() < 0.85 else text,
                    "created": created.strftime(WIRE_FORMAT),
                    "uuid": _uuid(rng),
                    "user": {
                        "firstName": rng.choice(_FIRST),
                        "lastName": rng.choice(_LAST),
                        "uuid": _uuid(rng),
                    },
                    "status": "exist",
                    "call": {
                        "uuid": call["uuid"],
                        "callDate": call["callDate"],
                        "callDirection": call["callDirection"].upper(),
                        "service": call["service"].upper(),
                        "externalNumber": {
                            "numberNotFormatted": number["numberNotFormatted"],
                            "numberFormatted": number["numberFormatted"],
                        },
                    },
                    "organisation": None,
                    "person": None,
                    "pin": rng.choice([0, 0, 1]),
                    "files": {}
                    if rng.random() < 0.7
                    else [
                        {
                            "uuid": _uuid(rng),
                            "uploadedAt": created.strftime(WIRE_FORMAT),
                            "relatedTo": "note",
                            "mimeType": "application/pdf",
                            "fileExtension": "pdf",
                            "fileSize": rng.randint(1_000, 900_000),
                            "fileDescription": "",
                            "fileName": "oferta.pdf",
                        }
                    ],
                    "edit": rng.choice([0, 1]),
                }
            )
        return notes

    # -- changes while a pull runs --------------------------------------------

    def insert_head(self, count: int) -> list[str]:
        """Insert *count* new calls at the head (newer than any), return their uuids."""
        newest = (
            datetime.strptime(self.calls[0]["callDate"], WIRE_FORMAT) if self.calls else self.end
        )
        new = [self._call(min(self.end, newest + timedelta(seconds=i + 1))) for i in range(count)]
        new.reverse()
        self.calls[:0] = new
        self._changed()
        return [c["uuid"] for c in new]

    def delete_head(self, count: int) -> list[str]:
        """Delete the *count* newest calls, return their uuids."""
        gone, self.calls[:count] = self.calls[:count], []
        self._changed()
        return [c["uuid"] for c in gone]

    def _changed(self) -> None:
        self._index = None
        self._by_uuid = None
        self.version += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.calls)

    def __len__(self) -> int:
        return len(self.calls)
