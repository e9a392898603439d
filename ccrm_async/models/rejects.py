"""A record the library could not read, kept as it was received."""

from __future__ import annotations

from typing import Any

import attrs
import orjson

__all__ = ["RejectedRecord"]


@attrs.frozen
class RejectedRecord:
    """One record of a paged answer that could not be read, even leniently.

    - ``kind``: the model it should have become (``"CallRecord"``, ``"Note"``);
    - ``page``: the page it came on (from 1);
    - ``uuid``: its ``uuid`` when it has a readable one, else None;
    - ``path``: the field path at fault (``callDate``, ``to.number``,
      ``flags[].uuid``; ``""`` for the record as a whole);
    - ``reason``: the path and the problem, e.g. ``"duration: a string that is
      not a number"``; it never quotes the value, which may be personal data;
    - ``raw``: the record as received (decoded JSON, keys in their order).
    """

    kind: str
    page: int
    uuid: str | None
    path: str
    reason: str
    raw: Any = attrs.field(repr=False)

    @property
    def raw_json(self) -> str:
        """``raw`` as JSON text, keys in the order received."""
        return orjson.dumps(self.raw).decode()

    @property
    def key(self) -> str:
        """What identifies the record across repair passes: its uuid, else its JSON."""
        return self.uuid if self.uuid is not None else self.raw_json

    @staticmethod
    def uuid_of(raw: Any) -> str | None:
        """The ``uuid`` of a raw record, when it has a usable one."""
        value = raw.get("uuid") if isinstance(raw, dict) else None
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return None
