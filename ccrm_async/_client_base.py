"""What every API client of the library shares: credentials from arguments or
the environment, one :class:`~ccrm_async.transport.Transport`, the async context
manager, and a ``repr`` and pickling that never give the key away."""

from __future__ import annotations

import os
import re
from types import TracebackType
from typing import Self

import attrs

from .config import Timeouts
from .transport import Transport

__all__ = ["APIClient", "Credentials", "resolve_credentials", "timeouts"]

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
    URL becomes ``https://`` + that host. Raises ``ValueError`` for a missing
    account, an account name that is not one DNS label, or a missing token.
    """
    account = account or os.environ.get(f"{env_prefix}_ACCOUNT") or None
    base_url = base_url or os.environ.get(f"{env_prefix}_BASE_URL") or None
    token = token or os.environ.get(f"{env_prefix}_TOKEN") or None
    default_origin = base_url is None
    if base_url is None:
        if account is None:
            raise ValueError(
                f"no {product} account: pass account= or base_url=, "
                f"or set {env_prefix}_ACCOUNT or {env_prefix}_BASE_URL"
            )
        if not _ACCOUNT.match(account):
            article = "an" if product[0] in "aeiou" else "a"
            raise ValueError(f"not {article} {product} account name: {account!r}")
        base_url = "https://" + host.format(account=account)
    if not token:
        raise ValueError(f"no API token: pass token= or set {env_prefix}_TOKEN")
    return Credentials(
        account=account, base_url=base_url, token=token, default_origin=default_origin
    )


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
