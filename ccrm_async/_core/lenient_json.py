"""JSON decoding that survives the quirks of the CCRM documentation's examples.

The fast path is :func:`orjson.loads`. Only when that fails does
:func:`repair` rewrite the text, fixing exactly these defects seen in the
vendor's examples:

- a string value that holds a JSON document *unescaped*
  (``"text":"{"blocks":[...]}"``, the Draft.js note text);
- raw control characters (line breaks) inside strings;
- trailing commas before ``}`` or ``]``;
- unquoted object keys (``{ url: "..." }``, the export callback).

A UTF-8 byte-order mark before the document (PHP files saved "with BOM" print
one) is skipped.

It never closes an unclosed bracket or string, so truncated or HTML bodies still
fail: a repaired body is one a person would read the same way.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["BOM", "JSONDecodeError", "loads", "repair"]

#: The UTF-8 byte-order mark.
BOM = b"\xef\xbb\xbf"


class JSONDecodeError(ValueError):
    """The text is not JSON, even after repair."""


_WS = " \t\r\n"
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def loads(data: bytes | str) -> Any:
    """Decode JSON, repairing the documented example defects when needed."""
    if isinstance(data, bytes):
        if data.startswith(BOM):
            data = data[3:]
    elif data.startswith("\ufeff"):
        data = data[1:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        fixed = repair(text)
        return orjson.loads(fixed)
    except (UnicodeDecodeError, orjson.JSONDecodeError, _RepairError, RecursionError) as exc:
        raise JSONDecodeError("not valid JSON") from exc


class _RepairError(ValueError):
    pass


def repair(text: str) -> str:
    """Return *text* with the defects listed in the module docstring fixed."""
    return _Repairer(text).run()


class _Repairer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.out: list[str] = []

    def run(self) -> str:
        self._value()
        self._ws()
        if self.i != len(self.s):
            raise _RepairError("trailing data")
        return "".join(self.out)

    def _ws(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i] in _WS:
            i += 1
        self.i = i

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _value(self) -> None:
        self._ws()
        c = self._peek()
        if c == "{":
            self._container("{", "}", keyed=True)
        elif c == "[":
            self._container("[", "]", keyed=False)
        elif c == '"':
            self.out.append(self._string_value())
        elif c:
            self._scalar()
        else:
            raise _RepairError("unexpected end")

    def _container(self, open_: str, close: str, *, keyed: bool) -> None:
        self.i += 1
        self.out.append(open_)
        first = True
        while True:
            self._ws()
            c = self._peek()
            if c == close:
                self.i += 1
                self.out.append(close)
                return
            if not c:
                raise _RepairError("unclosed container")
            if not first:
                if c != ",":
                    raise _RepairError("missing comma")
                self.i += 1
                self._ws()
                if self._peek() == close:  # trailing comma: drop it
                    continue
                self.out.append(",")
            first = False
            if keyed:
                self._key()
                self._ws()
                if self._peek() != ":":
                    raise _RepairError("missing colon")
                self.i += 1
                self.out.append(":")
            self._value()

    def _key(self) -> None:
        c = self._peek()
        if c == '"':
            self.out.append(self._plain_string())
            return
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_$"):
            self.i += 1
        if self.i == start:
            raise _RepairError("bad key")
        self.out.append(orjson.dumps(self.s[start : self.i]).decode())

    def _scalar(self) -> None:
        start = self.i
        while self.i < len(self.s) and self.s[self.i] not in ",]}" + _WS:
            self.i += 1
        token = self.s[start : self.i]
        orjson.loads(token)  # validates numbers, true/false/null
        self.out.append(token)

    def _string_value(self) -> str:
        # An unescaped JSON document inside a string: "{...}" or "[...]".
        if self.s.startswith('"{', self.i) or self.s.startswith('"[', self.i):
            end = _balanced_end(self.s, self.i + 1)
            if end is not None and end < len(self.s) and self.s[end] == '"':
                after = end + 1
                while after < len(self.s) and self.s[after] in _WS:
                    after += 1
                if after == len(self.s) or self.s[after] in ",}]":
                    inner = self.s[self.i + 1 : end]
                    self.i = end + 1
                    return orjson.dumps(inner).decode()
        return self._plain_string()

    def _plain_string(self) -> str:
        s = self.s
        i = self.i + 1
        parts = ['"']
        while i < len(s):
            c = s[i]
            if c == "\\":
                parts.append(s[i : i + 2])
                i += 2
                continue
            if c == '"':
                self.i = i + 1
                parts.append('"')
                return "".join(parts)
            if c < " ":
                parts.append(_CONTROL_ESCAPES.get(c, f"\\u{ord(c):04x}"))
            else:
                parts.append(c)
            i += 1
        raise _RepairError("unterminated string")


def _balanced_end(s: str, start: int) -> int | None:
    """Index just past the bracketed document starting at ``s[start]``."""
    depth = 0
    i = start
    in_string = False
    while i < len(s):
        c = s[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None
