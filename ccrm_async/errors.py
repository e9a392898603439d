"""The error tree of ccrm_async.

Every exception the library raises on purpose derives from :class:`CCRMError`::

    CCRMError
    ├── ConfigurationError       a missing or malformed setting (a token with a control
    │                            character, an account that is not a host name, a host
    │                            that does not resolve); also a ValueError
    ├── AuthenticationError      401: wrong key, caller IP not allowed, or API off
    ├── PermissionDeniedError    403 that is not the rate limit
    ├── RateLimitError           403 "Request limit has been exceeded" (after retries,
    │                            or at once when Retry-After is above the maximum)
    ├── NotFoundError            404
    ├── ValidationError          bad input caught before sending, or 400 / 422
    │   ├── thulium.PhoneNumberError   not a phone number (also a ValueError)
    │   └── thulium.QueryError         a lookup query without one usable phone_number
    ├── ServerError              5xx after retries
    ├── TransportError           connection errors and timeouts after retries
    ├── ResponseError            a body that is not the documented envelope
    │                            (not JSON, "success": false, "data" of the wrong type)
    ├── EventLoopError           a client used from an event loop other than its own
    ├── thulium.DirectoryError   a contact directory file cannot be built or read
    └── ExportError              an export job failed
        ├── ExportTimeout        no callback before the job's deadline
        ├── ExportCancelled      the job or its receiver was closed first
        └── DownloadError        the export file could not be fetched or kept

Messages never carry the API key, a callback token or the full request URL's
secrets: the transport translates aiohttp's exceptions into these at the
boundary and raises them unchained, so that no aiohttp exception (whose
``request_info`` holds the ``Authorization`` header) reaches a traceback.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CCRMError",
    "ConfigurationError",
    "DownloadError",
    "EventLoopError",
    "ExportCancelled",
    "ExportError",
    "ExportTimeout",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "TransportError",
    "ValidationError",
]


class CCRMError(Exception):
    """Base of every error raised by ccrm_async.

    ``status`` is the HTTP status when the error came from a response (else
    ``None``); ``method`` and ``path`` name the request without its query.
    ``ambiguous`` is True when a non-idempotent request (a create) failed in a
    way that it may nonetheless have taken effect on the server.
    """

    ambiguous: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{where}{status}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword arguments across pickling (multiprocessing, logging queues).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[CCRMError], message: str, state: dict[str, object]) -> CCRMError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(CCRMError, ValueError):
    """A setting is missing or malformed: the token, the account, the base URL,
    a host name that does not resolve, a constructor value out of range.

    Raised before any request (a host that does not resolve: on the first one,
    never retried). The message is one line naming the setting (``CCRM_TOKEN``,
    ``account=``...) and what to do. Also a :class:`ValueError`, as these
    errors were before it existed.
    """


class AuthenticationError(CCRMError):
    """401: the key is wrong, the caller's IP is not on the account's allow-list,
    or the API is switched off. The API does not say which; never retried."""


class PermissionDeniedError(CCRMError):
    """403 whose message is not the rate limit; never retried."""


class RateLimitError(CCRMError):
    """The API's rate-limit 403 persisted through every retry, or asked for a
    wait (``retry_after``, seconds) above the policy's maximum."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NotFoundError(CCRMError):
    """404: the resource does not exist."""


class ValidationError(CCRMError):
    """Input rejected before sending (``status`` is None) or by the server (400/422).

    ``field`` names the offending argument or field when known; ``errors`` holds
    the server's messages when it sent any.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: object = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.field = field
        self.errors = errors


class ServerError(CCRMError):
    """5xx answers that persisted through every retry."""


class TransportError(CCRMError):
    """The request never got a complete answer: connection refused or reset,
    DNS failure, timeout. Raised after retries.

    ``request_sent`` is False only when the connection was never established,
    so the server cannot have seen the request.
    """

    request_sent: bool = True


class ResponseError(CCRMError):
    """The server answered, but not with the documented envelope: a body that is
    not JSON, ``"success": false`` with a 2xx, or ``data`` of the wrong type.

    ``transient`` is True when the body could not be decoded at all (a cut-off
    body, a proxy's HTML page): such answers are retried.
    """

    transient: bool = False


class EventLoopError(CCRMError, RuntimeError):
    """A client was used from an event loop other than the one it was first used
    in. Its session, connections and request gate belong to that loop; make the
    client inside the loop that uses it (``asyncio.run``, a thread, a framework
    that runs coroutines on a loop of its own, such as dlt). Never retried."""


class ExportError(CCRMError):
    """An export job failed."""


class ExportTimeout(ExportError):
    """No valid callback arrived before the job's deadline; its token is revoked."""


class ExportCancelled(ExportError):
    """The job was cancelled, or its receiver closed while it was pending."""


class DownloadError(ExportError):
    """The export file could not be downloaded completely and kept.

    ``reason`` says why, for code that reacts to it:

    - ``"too_large"``: over the size cap; ``"incomplete"``: fewer bytes than
      ``Content-Length`` (or the body was cut off);
    - ``"refused"``: the storage answered 401, 403, 404 or another error status
      (``status`` holds it); ``"redirect"``: sent to another origin, or too far;
    - ``"network"``: the connection failed after retries; ``"disk"``: the file
      could not be created, written or moved into place;
    - ``"unknown"``: anything else (a job restored as failed, a bug).
    """

    def __init__(self, message: str, *, reason: str = "unknown", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.reason = reason
