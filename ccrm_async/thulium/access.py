"""Who may ask the lookup endpoint, and how often (pure decisions; no I/O).

API-NOTES: Thulium's documentation does not say how it authenticates to us.
So every check is optional and they combine:

- an IP allow-list of addresses and CIDR networks (IPv4-mapped IPv6 peers are
  matched as IPv4), refused with 403;
- a secret: HTTP Basic credentials (refused with 401 and a
  ``WWW-Authenticate`` challenge) and/or a token as the first path segment
  (``/<token>/customers.json``; refused with 403). Secrets are compared with
  :func:`hmac.compare_digest`, user and password both, always both;
- against enumeration, :class:`DistinctNumberLimiter`: at most *limit*
  distinct numbers per source in a sliding *window*; asking again for a number
  already counted is free. Over the limit: 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterable

import attrs

__all__ = [
    "AccessControl",
    "DistinctNumberLimiter",
    "IPNetwork",
    "basic_auth_matches",
    "ip_allowed",
    "parse_networks",
    "secret_matches",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8"``, ``"192.0.2.7"``, ``"2001:db8::/32"`` as networks;
    :class:`ValueError` for anything else (host bits set are allowed)."""
    if isinstance(items, str):
        items = [items]
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
    return tuple(networks)


def ip_allowed(remote: str | None, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether the peer address *remote* is in one of *networks*."""
    if remote is None:
        return False
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


def secret_matches(given: str | None, expected: str) -> bool:
    """*given* equals *expected*, compared in constant time (as UTF-8 bytes)."""
    candidate = (given or "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(candidate, expected.encode("utf-8"))


def basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Whether an ``Authorization`` header carries Basic *user*:*password*.

    Both parts are always compared, in constant time; a malformed header is
    compared against nothing and fails the same way.
    """
    given_user, given_password = b"", b""
    if header is not None:
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            given_user, _, given_password = decoded.partition(b":")
    user_ok = hmac.compare_digest(given_user, user.encode("utf-8"))
    password_ok = hmac.compare_digest(given_password, password.encode("utf-8"))
    return user_ok & password_ok


def _networks(value: Iterable[str] | tuple[IPNetwork, ...] | None) -> tuple[IPNetwork, ...] | None:
    if value is None:
        return None
    items = tuple(value)
    if all(isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network) for item in items):
        return items  # type: ignore[return-value]
    return parse_networks(str(item) for item in items)


def _secret(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError("a secret must be a non-empty string")
    return value


def _path_token(value: str | None) -> str | None:
    value = _secret(value)
    if value is not None and (len(value) < 16 or "/" in value or not value.isprintable()):
        raise ValueError("path_token must be at least 16 printable characters, without '/'")
    return value


@attrs.frozen(repr=False)
class AccessControl:
    """Optional checks, all off by default (the endpoint is then open).

    - ``allow_ips``: addresses and CIDR networks that may ask (None: any);
    - ``basic_user`` and ``basic_password``: required HTTP Basic credentials;
    - ``path_token``: a secret first path segment, at least 16 characters.

    ``repr()`` never shows a secret.
    """

    allow_ips: tuple[IPNetwork, ...] | None = attrs.field(default=None, converter=_networks)
    basic_user: str | None = attrs.field(default=None, converter=_secret)
    basic_password: str | None = attrs.field(default=None, converter=_secret)
    path_token: str | None = attrs.field(default=None, converter=_path_token)

    def __attrs_post_init__(self) -> None:
        if (self.basic_user is None) != (self.basic_password is None):
            raise ValueError("basic_user and basic_password go together")

    def __repr__(self) -> str:
        ips = None if self.allow_ips is None else [str(n) for n in self.allow_ips]
        return (
            f"AccessControl(allow_ips={ips}, basic_auth={self.basic_user is not None}, "
            f"path_token={self.path_token is not None})"
        )

    @property
    def open(self) -> bool:
        """True when no check is configured."""
        return self.allow_ips is None and self.basic_user is None and self.path_token is None

    def decide(
        self, remote: str | None, authorization: str | None, token: str | None
    ) -> int | None:
        """``None`` when the request may proceed, else the status to answer:
        403 for an address outside the allow-list or a wrong path token, 401
        for missing or wrong Basic credentials. Every configured check runs."""
        status: int | None = None
        if self.path_token is not None and not secret_matches(token, self.path_token):
            status = 403
        if (
            self.basic_user is not None
            and self.basic_password is not None
            and not basic_auth_matches(authorization, self.basic_user, self.basic_password)
        ):
            status = status or 401
        if self.allow_ips is not None and not ip_allowed(remote, self.allow_ips):
            status = 403
        return status


class DistinctNumberLimiter:
    """At most *limit* distinct numbers per source within *window* seconds.

    ``allow(source, key, now)`` counts *key* for *source* and says whether it
    may be looked up: a key already counted in the window is always allowed
    (Thulium asks again when a caller calls again), a new one only while the
    source has fewer than *limit* in the window. Refused keys are not counted.
    At most *max_sources* sources (1,000) are tracked, so memory stays below
    ``max_sources * limit`` keys; the least recently seen source is forgotten
    first. *now* is any monotonic clock, in seconds.
    """

    def __init__(self, limit: int, window: float = 60.0, *, max_sources: int = 1000) -> None:
        if limit < 1 or window <= 0 or max_sources < 1:
            raise ValueError("limit, window and max_sources must be positive")
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()

    def _window_of(self, source: str, now: float) -> dict[str, float]:
        seen = self._seen.get(source)
        if seen is None:
            seen = self._seen[source] = {}
            while len(self._seen) > self.max_sources:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(source)
        horizon = now - self.window
        while seen:
            key, first = next(iter(seen.items()))
            if first > horizon:
                break
            del seen[key]
        return seen

    def allow(self, source: str, key: str, now: float) -> bool:
        """Whether *source* may look *key* up at *now* (counting it if so)."""
        seen = self._window_of(source, now)
        if key in seen:
            return True
        if len(seen) >= self.limit:
            return False
        seen[key] = now
        return True

    def retry_after(self, source: str, now: float) -> int:
        """Whole seconds until *source* may ask for a new number (at least 1)."""
        seen = self._window_of(source, now)
        if len(seen) < self.limit or not seen:
            return 1
        oldest = next(iter(seen.values()))
        return max(1, math.ceil(oldest + self.window - now))
