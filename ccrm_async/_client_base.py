"""What every API client of the library shares: credentials from arguments or
the environment, one :class:`~ccrm_async.transport.Transport`, the async context
manager, and a ``repr`` and pickling that never give the key away."""

from __future__ import annotations

import os
import re
import unicodedata
from types import TracebackType
from typing import Self

import attrs
from yarl import URL

from .config import Timeouts
from .errors import ConfigurationError
from .transport import Transport

__all__ = [
    "APIClient",
    "Credentials",
    "check_at_least_one",
    "check_base_url",
    "check_token",
    "resolve_credentials",
    "timeouts",
]

_ACCOUNT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@attrs.frozen(repr=False)
class Credentials:
    account: str | None
    base_url: str
    token: str
    default_origin: bool  # base_url was built from the account name

    def __repr__(self) -> str:
        return f"Credentials(account={self.account!r}, base_url={self.base_url!r})"


def resolve_credentials(
    account: str | None,
    token: str | None,
    base_url: str | None,
    *,
    product: str,
    env_prefix: str,
    host: str,
) -> Credentials:
    """Arguments first, then ``{env_prefix}_ACCOUNT`` / ``_TOKEN`` / ``_BASE_URL``.

    *host* is the default host template, e.g. ``"{account}.ccrm.pl"``; the base
    URL becomes ``https://`` + that host. Surrounding whitespace of every value
    is stripped (a Windows env file leaves a CR). Raises
    :class:`~ccrm_async.ConfigurationError` for a missing account, an account
    name that is not one DNS label, a base URL that is not an absolute http(s)
    URL, and a missing token or one with a character no header can carry.
    """
    account = _setting(account, f"{env_prefix}_ACCOUNT")
    base_url = _setting(base_url, f"{env_prefix}_BASE_URL")
    token = _setting(token, f"{env_prefix}_TOKEN")
    default_origin = base_url is None
    if base_url is None:
        if account is None:
            raise ConfigurationError(
                f"no {product} account: pass account= or base_url=, "
                f"or set {env_prefix}_ACCOUNT or {env_prefix}_BASE_URL"
            )
        account = account.lower()  # host names are case-insensitive
        if not _ACCOUNT.match(account):
            raise ConfigurationError(
                f"the {product} account {account!r} (account= or {env_prefix}_ACCOUNT) "
                f"is not a host name: give the NAME of https://{host.format(account='NAME')} "
                "(letters, digits and inner hyphens, at most 63)"
            )
        base_url = "https://" + host.format(account=account)
    else:
        check_base_url(base_url, f"base_url= or {env_prefix}_BASE_URL")
    if token is None:
        raise ConfigurationError(f"no API token: pass token= or set {env_prefix}_TOKEN")
    check_token(token, f"{env_prefix}_TOKEN")
    return Credentials(
        account=account, base_url=base_url, token=token, default_origin=default_origin
    )


def _setting(value: str | None, env: str) -> str | None:
    """*value*, else the environment variable *env*; stripped, ``None`` when empty."""
    if value is None:
        value = os.environ.get(env)
    value = value.strip() if value is not None else None
    return value or None


def check_token(token: str, env: str) -> None:
    """Refuse a token no ``Authorization`` header can carry, naming *env* and
    the position (never the token or the character itself)."""
    for position, char in enumerate(token, 1):
        if unicodedata.category(char) == "Cc":
            raise ConfigurationError(
                f"the API token (token= or {env}) has a control character at position "
                f"{position}: copy the key again, without line breaks or tabs"
            )
        if not char.isascii():
            raise ConfigurationError(
                f"the API token (token= or {env}) has a non-ASCII character at position "
                f"{position}: copy the key again from the account's API settings"
            )


def check_base_url(base_url: str, setting: str) -> None:
    """Refuse a base URL that is not an absolute ``http(s)://host`` URL."""
    try:
        url = URL(base_url)
    except (TypeError, ValueError):
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"the base URL {base_url!r} ({setting}) is not an absolute http(s) URL, "
            "e.g. https://acme.ccrm.pl or http://127.0.0.1:8080"
        )


def check_at_least_one(name: str, value: int) -> None:
    """A count option (``concurrency``...) must be a whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}= must be a whole number >= 1, got {value!r}")


def timeouts(timeout: float | Timeouts | None) -> Timeouts:
    """``None``: the defaults; a number: that many seconds for one attempt (and at
    most 10 s to connect, 60 s of silence); a :class:`Timeouts` as it is."""
    if timeout is None:
        return Timeouts()
    if isinstance(timeout, Timeouts):
        return timeout
    seconds = float(timeout)
    return Timeouts(connect=min(10.0, seconds), sock_read=min(60.0, seconds), total=seconds)


class APIClient:
    """Base of the API clients: owns one :class:`Transport` and closes it."""

    _transport: Transport
    concurrency: int

    def __repr__(self) -> str:
        local = f", local_addr={self.local_addr!r}" if self.local_addr else ""
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"concurrency={self.concurrency}{local})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError(
            f"a {type(self).__name__} cannot be pickled: it holds a session and the API key"
        )

    @property
    def base_url(self) -> str:
        return str(self._transport.base_url)

    @property
    def local_addr(self) -> str | None:
        return self._transport.local_addr

    @property
    def transport(self) -> Transport:
        """The HTTP layer: session, connector, request gate. For extensions."""
        return self._transport

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session and its connections."""
        await self._transport.close()
