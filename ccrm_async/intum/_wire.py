"""The intum wire format: paths, JSON both ways, and the map from a response to
an error. Pure functions, no I/O.

- Bodies are decoded by the standard library's :mod:`json` with
  ``parse_float=Decimal``: orjson would turn ``12300.10`` into a float and lose
  cents. intum bodies are small (one deal, or a page of 100).
- Money is sent as an exact JSON number, like the seed's example
  (``"total_amount_gross": 12300.00``): an :class:`orjson.Fragment` holding the
  ``Decimal``'s own digits, so ``Decimal("12300.10")`` goes out as ``12300.10``.
  Dates go out as ``"YYYY-MM-DD"``.
- Answers are read leniently: a deal bare or wrapped as ``{"deal": {...}}``, a
  list as an array or ``{"deals": [...]}``; amounts as numbers or strings (Rails
  renders decimals as strings), ids as ints or digit strings, dates also as
  ISO date-times; unknown keys are ignored and a value that cannot be read is
  dropped (``None``) rather than failing the deal.
- Error bodies: ``{"code": "error", "message": {field: [...]}}`` (the style of
  intum's sister products), ``{"errors": {...}}`` (Rails), or a plain
  ``"message"``/``"error"`` string; all are read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

import orjson

from ..errors import (
    AuthenticationError,
    CCRMError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    ValidationError,
)
from .models import DATE_FIELDS, DEAL_FIELDS, TEXT_FIELDS, Deal, convert_field

__all__ = [
    "DEALS_PATH",
    "PER_PAGE",
    "changes_to_wire",
    "deal_from_wire",
    "deal_path",
    "deal_to_wire",
    "decode",
    "error_for_status",
    "external_path",
    "parse_created",
    "parse_deal",
    "parse_deals",
    "parse_updated",
    "read_error",
    "to_json",
]

DEALS_PATH: Final = "/crm/deals.json"

#: Deals asked for per page (``per_page``); intum's sister products cap it at 100.
PER_PAGE: Final = 100

_MAX_MESSAGE = 200


def deal_path(deal_id: int) -> str:
    return f"/crm/deals/{deal_id}.json"


def external_path(app_code: str, external_id: str) -> str:
    """``/crm/deals/e/{app_code}/{external_id}.json``, each segment
    percent-encoded (a ``/`` in an external id stays inside its segment)."""
    return f"/crm/deals/e/{quote(app_code, safe='')}/{quote(external_id, safe='')}.json"


# -- out ---------------------------------------------------------------------


def to_json(value: object) -> object:
    """*value* made serialisable by orjson without losing a digit: a finite
    ``Decimal`` becomes the exact JSON number it spells, a ``date`` or
    ``datetime`` an ISO string; mappings and sequences are walked (the deal's
    own ``fields``). Anything else raises ``ValueError``."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a non-finite Decimal has no JSON form")
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    raise ValueError(f"a {type(value).__name__} has no JSON form")


def deal_to_wire(deal: Deal) -> dict[str, object]:
    """The ``deal`` object of a create: every field that is set, ``id`` never."""
    return {
        name: to_json(value) for name in DEAL_FIELDS if (value := getattr(deal, name)) is not None
    }


def changes_to_wire(changes: Mapping[str, object]) -> dict[str, object]:
    """The ``deal`` object of an update: exactly the given fields (``None`` is
    sent as ``null``, clearing the field)."""
    return {name: to_json(value) for name, value in changes.items()}


# -- in ----------------------------------------------------------------------


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def decode(body: bytes) -> Any:
    """The JSON of a body, floats as ``Decimal``. A body that is not JSON raises
    a transient :class:`ResponseError` (a cut-off body or a proxy's page)."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        error = ResponseError(f"body is not JSON ({len(body)} bytes)")
        error.transient = True
        raise error from None


_NOT_TEXT: Final = frozenset(("id", *DEAL_FIELDS)) - set(TEXT_FIELDS)


def _wire_value(name: str, value: Any) -> Any:
    """Undo the spellings a server may use before the model's conversion."""
    if name in _NOT_TEXT and value == "":
        return None
    if name in DATE_FIELDS and isinstance(value, str) and len(value) > 10 and value[10] in "T ":
        return value[:10]  # a date-time where a date was meant
    if name in TEXT_FIELDS and isinstance(value, Decimal | float):
        return str(value)
    return value


def deal_from_wire(obj: Mapping[str, Any]) -> Deal:
    """A :class:`Deal` from the API's JSON object; see the module docstring."""
    values: dict[str, Any] = {}
    for name in ("id", *DEAL_FIELDS):
        if name in obj:
            try:
                values[name] = convert_field(name, _wire_value(name, obj[name]))
            except ValueError:
                continue  # unreadable: left as None rather than failing the deal
    return Deal(**values)


def _unwrap(payload: Any, key: str) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get(key), dict | list):
        return payload[key]
    return payload


def parse_deal(body: bytes) -> Deal:
    """One deal from a 2xx body (``{...}`` or ``{"deal": {...}}``)."""
    obj = _unwrap(decode(body), "deal")
    if not isinstance(obj, dict):
        raise ResponseError(f"expected a deal object, got a JSON {type(obj).__name__}")
    return deal_from_wire(obj)


def parse_deals(body: bytes) -> list[Deal]:
    """A page of deals from a 2xx body (``[...]`` or ``{"deals": [...]}``)."""
    items = _unwrap(decode(body), "deals")
    if not isinstance(items, list):
        raise ResponseError(f"expected a list of deals, got a JSON {type(items).__name__}")
    deals = []
    for item in items:
        obj = _unwrap(item, "deal")
        if not isinstance(obj, dict):
            raise ResponseError(f"expected a deal object, got a JSON {type(obj).__name__}")
        deals.append(deal_from_wire(obj))
    return deals


def parse_created(body: bytes) -> Deal:
    """The deal a create answered with. Any problem with a 2xx body marks the
    error ``ambiguous``: the server did take the request."""
    try:
        return parse_deal(body)
    except ResponseError as error:
        error.ambiguous = True
        raise


def parse_updated(body: bytes) -> Deal | None:
    """The deal an update answered with, or ``None`` for an empty body."""
    return parse_deal(body) if body.strip() else None


# -- errors ------------------------------------------------------------------


def _clean(text: str) -> str:
    """A server message fit for an exception: one line, bounded length."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text[:_MAX_MESSAGE] + ("…" if len(text) > _MAX_MESSAGE else "")


def _messages(value: object) -> list[str]:
    if isinstance(value, str):
        return [_clean(value)] if value else []
    if isinstance(value, list | tuple):
        return [m for item in value for m in _messages(item)]
    if value is None or isinstance(value, Mapping):
        return []
    return [_clean(str(value))]


def _by_field(value: object) -> dict[str, list[str]] | None:
    """Field-level messages as ``{field: [message, ...]}``, or ``None``."""
    if isinstance(value, Mapping):
        found = {_clean(str(k)): _messages(v) for k, v in value.items()}
        return {k: v for k, v in found.items() if v} or None
    messages = _messages(value)
    return {"base": messages} if messages else None


def read_error(body: bytes) -> tuple[str, dict[str, list[str]] | None]:
    """The message and the field-level messages of an error body."""
    try:
        payload = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return "", None
    if not isinstance(payload, dict):
        return "", None
    errors = None
    message = ""
    for key in ("errors", "message", "error"):
        value = payload.get(key)
        if isinstance(value, str) and value and not message:
            message = _clean(value)
        elif value is not None and errors is None and not isinstance(value, str):
            errors = _by_field(value)
    if errors and not message:
        message = "; ".join(
            f"{field} {text}" if field != "base" else text
            for field, texts in errors.items()
            for text in texts
        )
        message = _clean(message)
    return message, errors


def error_for_status(
    status: int,
    body: bytes,
    *,
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> CCRMError | None:
    """The error a non-2xx intum answer stands for; ``None`` for a 2xx.

    401 :class:`AuthenticationError`, 403 :class:`PermissionDeniedError` (the
    token lacks the ``crm`` permission), 404 :class:`NotFoundError`, 400/422
    :class:`ValidationError` with the server's messages in ``errors``, 429
    :class:`RateLimitError`, 5xx :class:`ServerError`, anything else
    :class:`ResponseError`.
    """
    if 200 <= status < 300:
        return None
    message, errors = read_error(body)
    kw: dict[str, Any] = {"status": status, "method": method, "path": path}
    if status == 401:
        return AuthenticationError(message or "Unauthorized (wrong or revoked API token)", **kw)
    if status == 403:
        return PermissionDeniedError(
            message or "Forbidden (the token may lack the crm permission)", **kw
        )
    if status == 404:
        return NotFoundError(message or "Not Found", **kw)
    if status in (400, 422):
        field = next((f for f in errors or () if f != "base"), None)
        return ValidationError(
            message or "the server rejected the request", field=field, errors=errors, **kw
        )
    if status == 429:
        return RateLimitError(message or "Too Many Requests", retry_after=retry_after, **kw)
    if status >= 500:
        return ServerError(message or "server error", **kw)
    return ResponseError(message or f"unexpected HTTP status {status}", **kw)
