"""The export callback, as pure functions: tokens, ``pushUrl``, body and URL checks.

CCRM announces a finished export by POSTing ``{"url": "https://{account}.ccrm.pl/
api/storage/download/<id>"}`` to the ``pushUrl`` we sent. The callback is not
signed, so the only proof that it comes from CCRM is the unguessable per-job
URL: ``{public_url}/{path}/{job id}/{token}`` with a fresh token of 256 bits from
:mod:`secrets`, stored only as its SHA-256 digest and compared with
:func:`hmac.compare_digest`.

The ``url`` in the body is then checked as a string, never resolved or fetched
as given: it must be the trusted API origin (scheme, host and port exactly as
in the client's base URL; ``https://{account}.ccrm.pl`` by default) followed by
``/api/storage/download/<id>``, where ``<id>`` has the 8-4-4-4-12 shape of a
uuid. Only printable ASCII is allowed, so userinfo, a backslash, percent
escapes, a query, a fragment, another port, a trailing dot, an IP literal in
any notation or an IDN look-alike host all fail one comparison or another,
without a single DNS look-up. The download URL is rebuilt from the trusted
origin and the id: nothing else of the callback's text reaches the network.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from typing import Any

import attrs
from yarl import URL

from . import lenient_json

__all__ = [
    "DOWNLOAD_PATH",
    "MAX_CALLBACK_BODY",
    "TOKEN_BYTES",
    "CallbackRejected",
    "Origin",
    "check_public_url",
    "check_route_path",
    "download_url",
    "new_job_id",
    "new_token",
    "origin_of",
    "parse_callback_body",
    "plausible_ids",
    "push_url",
    "redirect_target",
    "token_digest",
    "token_matches",
    "validate_download_url",
]

#: Random bytes in a callback token (256 bits; the requirement is at least 128).
TOKEN_BYTES = 32
#: The largest callback body accepted, in bytes (4 KiB).
MAX_CALLBACK_BODY = 4096
#: The documented path of an export file on the API origin.
DOWNLOAD_PATH = "/api/storage/download/"

_MAX_URL = 2048
# The seed's own example id, d333a333-f9f8-4d33-a333-fb3b3333attb, is not hex:
# accept ASCII letters and digits in the uuid's 8-4-4-4-12 shape.
_FILE_ID = re.compile(
    r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}"
)
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_NBSP = "\u00a0".encode()
_NOT_JSON = object()
_DUMMY_DIGEST = hashlib.sha256(b"no such job").hexdigest()


class CallbackRejected(ValueError):
    """A callback that must not start a download; ``status`` is the HTTP answer
    (400 or 413) and ``reason`` a short text safe to log (it never quotes the body)."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@attrs.frozen
class Origin:
    """A trusted origin: lower-case scheme and host, and the port only when the
    base URL spelled one out. ``str()`` gives ``scheme://host[:port]``."""

    scheme: str
    host: str
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{host}{port}"


def origin_of(base_url: str | URL) -> Origin:
    """The origin of an API base URL (``https://acme.ccrm.pl/`` ->
    ``Origin("https", "acme.ccrm.pl")``); userinfo and path are dropped."""
    url = URL(str(base_url))
    if not url.is_absolute() or url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError("the API base URL must be an absolute http(s) URL")
    return Origin(url.scheme.lower(), url.raw_host.lower(), url.explicit_port)


def new_token() -> str:
    """A fresh callback token: :data:`TOKEN_BYTES` random bytes, URL-safe base64."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_job_id() -> str:
    """A fresh job id (a random uuid4; not a secret, it names the job)."""
    return str(uuid.uuid4())


def token_digest(token: str) -> str:
    """The SHA-256 hex digest kept instead of the token itself."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def token_matches(token: str, digest: str | None) -> bool:
    """Whether *token* hashes to *digest*, compared in constant time.

    ``digest=None`` (no such job) still performs one comparison, against a
    dummy, so the answer takes the same time whether or not the job exists.
    """
    expected = digest if digest is not None else _DUMMY_DIGEST
    match = hmac.compare_digest(token_digest(token), expected)
    return match and digest is not None


def push_url(public_url: str, path: str, job_id: str, token: str) -> str:
    """``{public_url}/{path}/{job_id}/{token}``, the URL given to the API."""
    base = public_url.rstrip("/")
    segments = path.strip("/")
    return f"{base}/{segments}/{job_id}/{token}" if segments else f"{base}/{job_id}/{token}"


def check_public_url(public_url: str) -> str:
    """*public_url* without a trailing slash, after checking that it is an
    absolute http(s) URL with no userinfo, query or fragment."""
    url = URL(public_url)
    if (
        not url.is_absolute()
        or url.scheme not in ("http", "https")
        or not url.raw_host
        or url.raw_user is not None
        or url.raw_query_string
        or url.raw_fragment
    ):
        raise ValueError("public_url must be an absolute http(s) URL without query or fragment")
    return public_url.rstrip("/")


def check_route_path(path: str) -> str:
    """A callback route prefix like ``/ccrm-export`` (letters, digits, ``._~-``)."""
    segments = [s for s in path.split("/") if s]
    if not segments or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError("path must be one or more URL-safe segments, like '/ccrm-export'")
    return "/" + "/".join(segments)


def plausible_ids(job_id: str, token: str) -> bool:
    """Cheap shape check of a callback path's two segments (no secret involved)."""
    return bool(_JOB_ID.fullmatch(job_id) and _TOKEN.fullmatch(token))


def parse_callback_body(body: bytes) -> Any:
    """The ``url`` value of a callback body; raises :class:`CallbackRejected`.

    The body must be at most :data:`MAX_CALLBACK_BODY` bytes (else 413) and a
    JSON object with a ``url`` string; the documentation's own example, with
    an unquoted key and a no-break space (``{ url:\u00a0"..." }``), is accepted.
    """
    if len(body) > MAX_CALLBACK_BODY:
        raise CallbackRejected("body too large", status=413)
    payload = _decode(body)
    if payload is _NOT_JSON and _NBSP in body:
        # The seed prints a no-break space after "url:"; read it as a blank.
        payload = _decode(body.replace(_NBSP, b" "))
    if payload is _NOT_JSON:
        raise CallbackRejected("body is not JSON")
    if not isinstance(payload, dict):
        raise CallbackRejected("body is not a JSON object")
    if "url" not in payload:
        raise CallbackRejected("body has no url")
    url = payload["url"]
    if not isinstance(url, str):
        raise CallbackRejected("url is not a string")
    return url


def _decode(body: bytes) -> Any:
    try:
        return lenient_json.loads(body)
    except lenient_json.JSONDecodeError:
        return _NOT_JSON


def validate_download_url(url: object, origin: Origin) -> str:
    """The file id of a download URL from a callback; raises :class:`CallbackRejected`.

    Accepted only: ``{origin}/api/storage/download/<id>``, printable ASCII,
    scheme and host in any letter case, nothing after the id. Pure string
    work, no DNS.
    """
    if not isinstance(url, str):
        raise CallbackRejected("url is not a string")
    if len(url) > _MAX_URL:
        raise CallbackRejected("url too long")
    if not all("!" <= c <= "~" for c in url):
        raise CallbackRejected("url has characters outside printable ASCII")
    base = str(origin)
    if url[: len(base)].lower() != base:
        raise CallbackRejected("url is not on the API origin")
    rest = url[len(base) :]
    if not rest.startswith(DOWNLOAD_PATH):
        raise CallbackRejected("url is not a download path on the API origin")
    file_id = rest[len(DOWNLOAD_PATH) :]
    if not _FILE_ID.fullmatch(file_id):
        raise CallbackRejected("url does not end with a file id")
    return file_id


def download_url(origin: Origin, file_id: str) -> str:
    """The URL a file is fetched from, rebuilt from the trusted origin."""
    if not _FILE_ID.fullmatch(file_id):
        raise ValueError("not a file id")
    return f"{origin}{DOWNLOAD_PATH}{file_id}"


def redirect_target(current: str, location: str | None, origin: Origin) -> str | None:
    """Where a redirect from *current* may be followed, or ``None`` to refuse it.

    Only same-origin targets are followed: relative or absolute, the result
    must have exactly the trusted origin's scheme, host and port, no userinfo,
    and *location* must be printable ASCII without a backslash.
    """
    if not location or len(location) > _MAX_URL:
        return None
    if not all("!" <= c <= "~" for c in location) or "\\" in location:
        return None
    try:
        target = URL(current).join(URL(location))
    except (ValueError, TypeError):
        return None
    if target.raw_user is not None or target.raw_password is not None:
        return None
    if not target.raw_host or not target.raw_path.startswith("/"):
        return None
    base = str(origin)
    candidate = str(target.with_fragment(None))
    if candidate[: len(base)].lower() != base or candidate[len(base) : len(base) + 1] != "/":
        return None
    if (target.scheme.lower(), target.raw_host.lower(), target.explicit_port) != (
        origin.scheme,
        origin.host,
        origin.port,
    ):
        return None
    return candidate
