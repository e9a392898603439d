"""Phone numbers as directory keys (pure; no I/O).

Thulium sends the caller's number as it got it from the network, usually the 9
national digits of a Polish number (``123975300`` in the seed), and CCRM keeps
whatever people typed (``+48 600 100 200``, ``(22) 123-45-67``). Both sides go
through :func:`normalize_phone`, which gives one canonical key per number: the
number in E.164 form, ``+`` and digits.

The rules, in order:

1. At most 32 characters (:data:`MAX_INPUT_LENGTH`), else "too long".
2. Allowed characters: digits of any script (``unicodedata.decimal``, so
   ``٦٠٠`` and full-width ``６００`` are digits, but ``²`` is not), the
   separators space (any Unicode white space), ``-``, the Unicode dashes
   U+2010..U+2015 and U+2212, ``.``, ``/``, ``(`` and ``)``, and ``+`` (or
   full-width ``＋``) as the very first character other than a separator or
   bracket. Anything else (a letter, ``*``, ``#``, a second ``+``, an
   extension like ``wew. 12``) means "not a phone number".
3. A leading ``+`` or ``00`` starts an international number: country code and
   subscriber number. ``+48``/``0048`` must be followed by exactly 9 digits
   (a Polish number); any other country code gives 7 to 15 digits in all
   (:data:`MIN_E164_DIGITS`, :data:`MAX_E164_DIGITS`), kept as they are.
4. Without a prefix: 9 digits are a Polish national number; 11 digits starting
   ``48`` are a Polish number with the country code but no ``+``; 10 digits
   starting ``0`` are a Polish number with the old trunk ``0`` (``0 22 ...``).
   Any other length is refused: a foreign number needs its ``+`` or ``00``.

So ``600100200``, ``+48 600 100 200``, ``0048-600-100-200``,
``(+48) 600.100.200`` and ``48600100200`` all give ``+48600100200``.
:func:`display_phone` turns a key back into what Thulium shows: the 9
national digits for a Polish number, E.164 for any other. Error messages
never repeat the input, so they are safe to log.
"""

from __future__ import annotations

import unicodedata

from ..errors import ValidationError

__all__ = [
    "MAX_E164_DIGITS",
    "MAX_INPUT_LENGTH",
    "MIN_E164_DIGITS",
    "POLAND",
    "PhoneNumberError",
    "display_phone",
    "mask_phone",
    "normalize_phone",
    "try_normalize_phone",
]

#: Longest input accepted, in characters.
MAX_INPUT_LENGTH = 32
#: Fewest digits (country code included) of a foreign number.
MIN_E164_DIGITS = 7
#: Most digits (country code included) of any number, as E.164 says.
MAX_E164_DIGITS = 15
#: Poland's country code.
POLAND = "48"

_NATIONAL_DIGITS = 9
_SEPARATORS = frozenset(" -./()\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_PLUS = frozenset("+\uff0b")


class PhoneNumberError(ValidationError, ValueError):
    """The text is not a phone number; ``reason`` says why (never the input itself).

    A :class:`~ccrm_async.ValidationError` (``field="phone_number"``) and a
    :class:`ValueError`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"not a phone number: {reason}", field="phone_number")
        self.reason = reason


def _digits(text: str) -> tuple[bool, str]:
    """``(has_plus, ascii_digits)`` of *text*, or :class:`PhoneNumberError`."""
    plus = False
    digits: list[str] = []
    for char in text:
        if char in _SEPARATORS or char.isspace():
            continue
        if char in _PLUS:
            if plus or digits:
                raise PhoneNumberError("'+' is allowed only at the start")
            plus = True
            continue
        value = unicodedata.decimal(char, None)
        if value is None:
            kind = "letter" if char.isalpha() else "character"
            raise PhoneNumberError(f"contains a {kind} that is not a digit or separator")
        digits.append(str(value))
    return plus, "".join(digits)


def normalize_phone(text: str) -> str:
    """The canonical key (E.164, ``+`` and ASCII digits) of the number in *text*.

    Raises :class:`PhoneNumberError` when *text* is not a phone number by the
    rules in the module docstring (too long, a letter, a wrong digit count).
    """
    if not isinstance(text, str):
        raise PhoneNumberError("not text")
    if len(text) > MAX_INPUT_LENGTH:
        raise PhoneNumberError(f"longer than {MAX_INPUT_LENGTH} characters")
    plus, digits = _digits(text)
    if not digits:
        raise PhoneNumberError("no digits")
    if not plus and digits.startswith("00"):
        plus, digits = True, digits[2:]
    if plus:
        if digits.startswith(POLAND):
            national = digits[len(POLAND) :]
            if len(national) != _NATIONAL_DIGITS:
                raise PhoneNumberError(
                    f"a Polish number has {_NATIONAL_DIGITS} digits after the country code"
                )
            return "+" + POLAND + national
        if not MIN_E164_DIGITS <= len(digits) <= MAX_E164_DIGITS or digits[0] == "0":
            raise PhoneNumberError(
                f"an international number has {MIN_E164_DIGITS} to {MAX_E164_DIGITS} digits"
                " and a country code"
            )
        return "+" + digits
    if len(digits) == _NATIONAL_DIGITS:
        return "+" + POLAND + digits
    if len(digits) == len(POLAND) + _NATIONAL_DIGITS and digits.startswith(POLAND):
        return "+" + digits
    if len(digits) == _NATIONAL_DIGITS + 1 and digits[0] == "0":
        return "+" + POLAND + digits[1:]
    raise PhoneNumberError(
        f"a number without '+' must have {_NATIONAL_DIGITS} national digits (Poland)"
    )


def try_normalize_phone(text: str) -> str | None:
    """:func:`normalize_phone`, or ``None`` when *text* is not a phone number."""
    try:
        return normalize_phone(text)
    except PhoneNumberError:
        return None


def display_phone(key: str) -> str:
    """A key as Thulium shows numbers: 9 national digits for Poland, else E.164."""
    if key.startswith("+" + POLAND) and len(key) == 1 + len(POLAND) + _NATIONAL_DIGITS:
        return key[1 + len(POLAND) :]
    return key


def mask_phone(key: str) -> str:
    """*key* with every digit but the last 3 replaced by ``*`` (for logs)."""
    digits = [c for c in key if c.isdigit()]
    hidden = max(len(digits) - 3, 0)
    return "*" * hidden + "".join(digits[hidden:])
