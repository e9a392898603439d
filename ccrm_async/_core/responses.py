"""Reading CCRM responses: the envelope, and the one map from a response to an error.

The envelope is ``{"success": bool, "data": ..., "otherData": {...}, "message": str}``.
A 2xx with ``"success": false``, a body that is not JSON, or ``data`` of the wrong
type is a :class:`~ccrm_async.ResponseError`, never an empty result.
"""

from __future__ import annotations

from typing import Any

import attrs

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
from . import lenient_json

__all__ = [
    "Envelope",
    "error_for_status",
    "is_rate_limit_message",
    "parse_envelope",
    "server_message",
]

_MAX_MESSAGE = 200


@attrs.frozen
class Envelope:
    """A decoded, checked response body."""

    data: Any
    other_data: dict[str, Any]
    message: str
    #: PHP-isms of the envelope, as ``(path, what)``: a byte-order mark
    #: (``body``), ``otherData`` that is not an object, a string ``totalCount``.
    bends: tuple[tuple[str, str], ...] = ()

    @property
    def total_count(self) -> int | None:
        """``otherData.totalCount`` as an int, when present and numeric."""
        value = self.other_data.get("totalCount")
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return None


def _clean(message: object) -> str:
    """A server message fit for an exception: one line, bounded length."""
    text = message if isinstance(message, str) else ""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text[:_MAX_MESSAGE] + ("…" if len(text) > _MAX_MESSAGE else "")


def is_rate_limit_message(message: str) -> bool:
    """True for CCRM's rate-limit 403 message, "Request limit has been exceeded"."""
    lowered = message.lower()
    return "limit" in lowered and "exceed" in lowered


def server_message(body: bytes) -> str:
    """The ``message`` of an error body, or ``""`` when there is none."""
    try:
        payload = lenient_json.loads(body)
    except lenient_json.JSONDecodeError:
        return ""
    if isinstance(payload, dict):
        return _clean(payload.get("message"))
    return ""


def error_for_status(
    status: int,
    body: bytes,
    *,
    method: str | None = None,
    path: str | None = None,
    retry_after: float | None = None,
) -> CCRMError | None:
    """The error a non-2xx response stands for; ``None`` for a 2xx."""
    if 200 <= status < 300:
        return None
    message = server_message(body)
    kw: dict[str, Any] = {"status": status, "method": method, "path": path}
    if status == 401:
        return AuthenticationError(
            message or "Unauthorized (wrong key, IP not allowed, or API disabled)", **kw
        )
    if status == 403:
        if is_rate_limit_message(message):
            return RateLimitError(message, retry_after=retry_after, **kw)
        return PermissionDeniedError(message or "Forbidden", **kw)
    if status == 429:
        return RateLimitError(message or "Too Many Requests", retry_after=retry_after, **kw)
    if status == 404:
        return NotFoundError(message or "Not Found", **kw)
    if status in (400, 422):
        errors = _error_details(body)
        return ValidationError(message or "the server rejected the request", errors=errors, **kw)
    if status >= 500:
        return ServerError(message or "server error", **kw)
    return ResponseError(message or f"unexpected HTTP status {status}", **kw)


def _error_details(body: bytes) -> object:
    try:
        payload = lenient_json.loads(body)
    except lenient_json.JSONDecodeError:
        return None
    if isinstance(payload, dict):
        return payload.get("errors") or payload.get("data") or None
    return None


def parse_envelope(
    body: bytes,
    *,
    data_type: type | tuple[type, ...] | None = list,
    method: str | None = None,
    path: str | None = None,
) -> Envelope:
    """Decode and check a 2xx body; raise :class:`ResponseError` when it is not
    the documented envelope or ``data`` is not of ``data_type``."""
    kw: dict[str, Any] = {"method": method, "path": path}
    bends: list[tuple[str, str]] = []
    if body.startswith(lenient_json.BOM):
        bends.append(("body", "a byte-order mark"))
    try:
        payload = lenient_json.loads(body)
    except lenient_json.JSONDecodeError:
        error = ResponseError(f"body is not JSON ({len(body)} bytes)", **kw)
        error.transient = True  # a cut-off body or a proxy's error page: worth a retry
        raise error from None
    if not isinstance(payload, dict):
        raise ResponseError(f"body is a JSON {type(payload).__name__}, not an object", **kw)
    success = payload.get("success")
    if success is not True and success not in (1, "true"):
        raise ResponseError(
            f"success is {success!r}: {_clean(payload.get('message')) or 'no message'}", **kw
        )
    data = payload.get("data")
    if data_type is not None and not isinstance(data, data_type):
        raise ResponseError(f"data is a {type(data).__name__}, expected {data_type}", **kw)
    other = payload.get("otherData")
    if not isinstance(other, dict):
        if other is not None:
            bends.append(("otherData", f"{type(other).__name__} for an object"))
        other = {}
    elif isinstance(other.get("totalCount"), str):
        bends.append(("otherData.totalCount", "a number as a string"))
    return Envelope(
        data=data,
        other_data=other,
        message=_clean(payload.get("message")),
        bends=tuple(bends),
    )
