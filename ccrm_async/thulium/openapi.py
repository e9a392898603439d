"""The OpenAPI 3.1 description of the lookup endpoint (pure data).

``openapi_document()`` gives it as a dict (``json.dumps`` it to publish); the
contract tests validate every generated request's answer against it
(RELIABILITY 27). It describes what :func:`~ccrm_async.thulium.create_lookup_app`
can answer under any configuration: every documented Thulium field is
optional, and the statuses that access control and the rate limit add are
listed too.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Collection
from typing import Any

from .fields import ADDRESS_FIELDS, THULIUM_FIELDS
from .phones import MAX_E164_DIGITS, MAX_INPUT_LENGTH, MIN_E164_DIGITS

__all__ = ["CONTENT_TYPE", "DEFAULT_PATH", "METRICS_PATH", "openapi_document", "phone_pattern"]

#: The ``Content-Type`` of every answer, exactly as Thulium's documentation writes it.
CONTENT_TYPE = "application/json;charset=utf-8"
#: The default path of the endpoint.
DEFAULT_PATH = "/customers.json"
#: Where the Prometheus metrics are served when enabled.
METRICS_PATH = "/metrics"

# -- the phone_number pattern ------------------------------------------------------------
#
# normalize_phone's rules as one regular expression over the decoded value, so
# that the document accepts exactly what the server does. A digit is any
# Unicode decimal digit (Python's \d; the classes of one digit value are built
# from the Unicode database), separators may come anywhere, a "+" only before
# the first digit, and the digit count depends on the prefix. The value must
# not start with white space: a form-encoded leading space arrives as a
# literal "+", which the server reads as the country-code plus.

_SEPARATOR = "[\\s\\-./()\u2010-\u2015\u2212]"
_LEADING_SEPARATOR = "[\\-./()\u2010-\u2015\u2212]"
_PLUS_SIGN = "[+\uff0b]"
_ANY_DIGIT = "\\d"


@functools.cache
def _zero_digits() -> tuple[str, ...]:
    """The digit zero of every Unicode script (each starts a run of ten)."""
    return tuple(chr(code) for code in range(0x20000) if unicodedata.decimal(chr(code), None) == 0)


def _digit(values: Collection[int]) -> str:
    """A class of the decimal digits, of any script, whose value is in *values*."""
    wanted = sorted(values)
    runs: list[tuple[int, int]] = []
    for value in wanted:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    parts = []
    for zero in _zero_digits():
        for low, high in runs:
            first, last = chr(ord(zero) + low), chr(ord(zero) + high)
            parts.append(first if low == high else f"{first}-{last}")
    return "[" + "".join(parts) + "]"


def _digits(*tokens: tuple[str, int, int]) -> str:
    """Digit tokens ``(class, min, max)`` with separators allowed between them;
    the first token is one bare digit."""
    (first, low, high), *rest = tokens
    assert low == high == 1
    pattern = first
    for cls, low, high in rest:
        count = f"{{{low}}}" if low == high else f"{{{low},{high}}}"
        pattern += f"(?:{_SEPARATOR}*{cls}){count}"
    return pattern


def _one(*values: int) -> tuple[str, int, int]:
    return (_digit(values), 1, 1)


def _some(low: int, high: int) -> tuple[str, int, int]:
    return (_ANY_DIGIT, low, high)


@functools.cache
def phone_pattern() -> str:
    """The pattern of an accepted ``phone_number`` (with ``maxLength`` 32)."""
    not_zero = tuple(range(1, 10))
    international = (  # after a "+" or "00": country code and number
        (_one(4), _one(8), _some(9, 9)),
        (_one(1, 2, 3, 5, 6, 7, 8, 9), _some(MIN_E164_DIGITS - 1, MAX_E164_DIGITS - 1)),
        (_one(4), _one(0, 1, 2, 3, 4, 5, 6, 7, 9), _some(MIN_E164_DIGITS - 2, MAX_E164_DIGITS - 2)),
    )
    national = (  # no prefix
        *((_one(0), _one(0), *tokens) for tokens in international),
        (_one(*not_zero), _some(8, 8)),  # 9 digits
        (_one(0), _one(*not_zero), _some(7, 7)),  # 9 digits starting with one 0
        (_one(4), _one(8), _some(9, 9)),  # 48 and 9 digits
        (_one(0), _one(*not_zero), _some(8, 8)),  # the old trunk 0 and 9 digits
    )
    plus = "|".join(_digits(*tokens) for tokens in international)
    bare = "|".join(_digits(*tokens) for tokens in national)
    return (
        f"^(?:{_LEADING_SEPARATOR}{_SEPARATOR}*)?"
        f"(?:{_PLUS_SIGN}{_SEPARATOR}*(?:{plus})|(?:{bare})){_SEPARATOR}*$"
    )


_STRING = {"type": "string"}
_ADDRESS = {
    "type": "object",
    "properties": {name: _STRING for name in ADDRESS_FIELDS},
    "additionalProperties": False,
}
_LISTS = ("phone_number", "email")
_ADDRESSES = ("address", "mail_drop_address", "invoice_address")


def _customer_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name in sorted(THULIUM_FIELDS):
        if name in _LISTS:
            properties[name] = {"type": "array", "items": _STRING, "minItems": 1}
        elif name in _ADDRESSES:
            properties[name] = _ADDRESS
        elif name == "custom_fields":
            properties[name] = {
                "type": "object",
                "additionalProperties": {"type": ["string", "null"]},
            }
        elif name == "birthdate":
            properties[name] = {"type": "string", "format": "date"}
        else:
            properties[name] = _STRING
    return {"type": "object", "properties": properties, "additionalProperties": False}


_SAME_HEADERS: dict[str, Any] = {
    "Cache-Control": {
        "description": "Answers are never cached.",
        "required": True,
        "schema": {"type": "string", "const": "no-store"},
    },
    "X-Content-Type-Options": {
        "required": True,
        "schema": {"type": "string", "const": "nosniff"},
    },
}


def _response(
    description: str,
    schema: str,
    headers: dict[str, Any] | None = None,
    *,
    body: bool = True,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {**_SAME_HEADERS, **(headers or {})},
    }
    if body:
        response["content"] = {CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return response


def _responses(*, body: bool) -> dict[str, Any]:
    return {
        "200": _response("The customer, in Thulium's fields.", "Customer", body=body),
        "400": _response(
            "phone_number missing, repeated, empty, not UTF-8, or not a phone number.",
            "Error",
            body=body,
        ),
        "401": _response(
            "Basic credentials required or wrong.",
            "Error",
            {
                "WWW-Authenticate": {
                    "required": True,
                    "schema": {"type": "string", "const": 'Basic realm="thulium", charset="UTF-8"'},
                }
            },
            body=body,
        ),
        "403": _response("Address not allowed, or wrong path token.", "Error", body=body),
        "404": _response("Nobody has this number.", "Error", body=body),
        "429": _response(
            "Too many distinct numbers from this address in a minute.",
            "Error",
            {
                "Retry-After": {
                    "description": "Seconds until a new number is accepted from this address.",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 60},
                }
            },
            body=body,
        ),
    }


def openapi_document(path: str = DEFAULT_PATH, *, path_token: bool = False) -> dict[str, Any]:
    """The endpoint at *path* (``/customers.json``) as an OpenAPI 3.1 document.

    With *path_token* the path is ``/{token}<path>``. ``phone_number`` carries
    :func:`phone_pattern`, the server's rules exactly (evaluated as Python's
    ``re`` does: ``\\d`` and ``\\s`` are Unicode); every status lists its body
    and its headers. ``HEAD`` answers as ``GET`` without a body.
    """
    route = "/{token}" + path if path_token else path
    parameters: list[dict[str, Any]] = [
        {
            "name": "phone_number",
            "in": "query",
            "required": True,
            "description": (
                "The caller's number in any usual form: 9 national digits, 48 and 9"
                " digits, 0 and 9 digits, +48 or 0048 and 9 digits; a foreign number"
                " with + or 00 and 7 to 15 digits. Digits of any script; spaces,"
                " dashes, dots, slashes and brackets anywhere but white space first."
            ),
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_INPUT_LENGTH,
                "pattern": phone_pattern(),
            },
            "example": "123975300",
        }
    ]
    if path_token:
        parameters.insert(
            0,
            {
                "name": "token",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
            },
        )
    operation = {
        "parameters": parameters,
        "security": [{}, {"basicAuth": []}],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Thulium external CRM lookup (ccrm_async)",
            "version": "1",
            "description": (
                "Thulium asks who is calling; the answer comes from CCRM contacts."
                " Every field is optional; PESEL and birth date only when enabled."
            ),
        },
        "paths": {
            route: {
                "get": {
                    "operationId": "lookupCustomer",
                    "summary": "The customer with this phone number",
                    **operation,
                    "responses": _responses(body=True),
                },
                "head": {
                    "operationId": "lookupCustomerHead",
                    "summary": "As GET, without the body",
                    **operation,
                    "responses": _responses(body=False),
                },
            }
        },
        "components": {
            "schemas": {
                "Customer": _customer_schema(),
                "Error": {
                    "type": "object",
                    "properties": {"error": _STRING},
                    "required": ["error"],
                    "additionalProperties": False,
                },
            },
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
        },
    }
