"""The ``phone_number`` parameter from a raw query string (pure; no I/O).

Read from the query string as sent, not from a form-decoded mapping, because
of ``+``: a form decoder turns ``?phone_number=+44...`` into a space and the
country code's ``+`` is lost. Here a literal ``+`` at the start of the value
stays a plus; any other literal ``+`` is a space, as form encoding means it
(``600+100+200``); ``%2B`` is always a plus. The value must be UTF-8 once
percent-decoded, must not start with white space, and the parameter must
appear exactly once.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..errors import ValidationError

__all__ = ["PARAMETER", "QueryError", "phone_parameter"]

#: The query parameter Thulium sends.
PARAMETER = "phone_number"


class QueryError(ValidationError, ValueError):
    """The query string has no usable ``phone_number``; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field=PARAMETER)
        self.reason = reason


def _decode(raw: str) -> str:
    try:
        return unquote(raw, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise QueryError("the query string is not UTF-8") from None


def phone_parameter(query_string: str, name: str = PARAMETER) -> str:
    """The decoded value of *name* in the raw *query_string*.

    Raises :class:`QueryError` when the parameter is missing, empty, given
    more than once, or not UTF-8 after percent-decoding.
    """
    found: list[str] = []
    for part in query_string.split("&"):
        key, _, value = part.partition("=")
        if _decode(key.replace("+", " ")) == name:
            found.append(value)
    if not found:
        raise QueryError(f"the {name} parameter is required")
    if len(found) > 1:
        raise QueryError(f"the {name} parameter is given more than once")
    raw = found[0]
    lead = "+" if raw.startswith("+") else ""
    value = _decode(lead + raw[len(lead) :].replace("+", " "))
    if not value.strip():
        raise QueryError(f"the {name} parameter is empty")
    if value[0].isspace():
        # A form-encoded leading space arrives as "+", read as the country-code
        # plus above; refusing white space first keeps the two from mixing up.
        raise QueryError(f"the {name} parameter starts with white space")
    return value  # not stripped: the 32-character limit counts what was sent
