"""RELIABILITY 46: configuration errors are ours: ``ConfigurationError`` (a
``CCRMError``, still a ``ValueError``) with one line naming the setting."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from ccrm_async import CCRMClient, CCRMError, ConfigurationError, RetryPolicy, Timeouts
from ccrm_async.intum import IntumClient
from ccrm_async.testing import CCRMEmulator

CANARY = "ccrm_TESTKEY_5f2a9c"
FIX = "copy the key again, without line breaks or tabs"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for product in ("CCRM", "INTUM"):
        for name in ("ACCOUNT", "TOKEN", "BASE_URL"):
            monkeypatch.delenv(f"{product}_{name}", raising=False)
    yield


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"token": "k"},
            "no CCRM account: pass account= or base_url=, or set CCRM_ACCOUNT or CCRM_BASE_URL",
        ),
        ({"account": "acme"}, "no API token: pass token= or set CCRM_TOKEN"),
        ({"account": "acme", "token": " \t\r\n"}, "no API token: pass token= or set CCRM_TOKEN"),
        (
            {"account": "acme", "token": CANARY[:5] + "\x07" + CANARY[5:]},
            f"the API token (token= or CCRM_TOKEN) has a control character at position 6: {FIX}",
        ),
        (
            {"account": "acme", "token": CANARY + "\r\nX-Injected: 1"},
            "the API token (token= or CCRM_TOKEN) has a control character at position "
            f"{len(CANARY) + 1}: {FIX}",
        ),
        (
            {"account": "acme", "token": CANARY + "ł"},
            f"the API token (token= or CCRM_TOKEN) has a non-ASCII character at position "
            f"{len(CANARY) + 1}: copy the key again from the account's API settings",
        ),
        (
            {"account": "Acme Corp", "token": "k"},
            "the CCRM account 'acme corp' (account= or CCRM_ACCOUNT) is not a host name: "
            "give the NAME of https://NAME.ccrm.pl (letters, digits and inner hyphens, at most 63)",
        ),
        (
            {"account": "acme.ccrm.pl", "token": "k"},
            "the CCRM account 'acme.ccrm.pl' (account= or CCRM_ACCOUNT) is not a host name: "
            "give the NAME of https://NAME.ccrm.pl (letters, digits and inner hyphens, at most 63)",
        ),
        (
            {"base_url": "acme.ccrm.pl", "token": "k"},
            "the base URL 'acme.ccrm.pl' (base_url= or CCRM_BASE_URL) is not an absolute "
            "http(s) URL, e.g. https://acme.ccrm.pl or http://127.0.0.1:8080",
        ),
        (
            {"account": "acme", "token": "k", "concurrency": 0},
            "concurrency= must be a whole number >= 1, got 0",
        ),
        (
            {"account": "acme", "token": "k", "lookahead": 0},
            "lookahead= must be a whole number >= 1, got 0",
        ),
        ({"account": "acme", "token": "k", "max_rps": 0}, "max_rps must be > 0, got 0"),
        ({"account": "acme", "token": "k", "timeout": -1}, "connect must be > 0, got -1.0"),
    ],
)
def test_ccrm_configuration_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        CCRMClient(**kwargs)
    assert str(raised.value) == message
    assert isinstance(raised.value, CCRMError) and isinstance(raised.value, ValueError)
    assert CANARY not in repr(raised.value)


def test_values_validate_with_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"^max_attempts must be >= 1, got 0$"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match=r"^sock_read must be > 0, got 0$"):
        Timeouts(sock_read=0)


def test_surrounding_whitespace_is_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Windows env file leaves a CR at the end of every value."""
    monkeypatch.setenv("CCRM_TOKEN", CANARY + "\r")
    monkeypatch.setenv("CCRM_ACCOUNT", " Acme\r")
    crm = CCRMClient()
    assert crm.base_url == "https://acme.ccrm.pl"
    assert crm.transport.auth_headers() == {"Authorization": f"Bearer {CANARY}"}


def test_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTUM_TOKEN", "abc\x1bdef")
    with pytest.raises(ConfigurationError) as raised:
        IntumClient(account="acme")
    assert str(raised.value) == (
        f"the API token (token= or INTUM_TOKEN) has a control character at position 4: {FIX}"
    )
    with pytest.raises(ConfigurationError) as raised:
        IntumClient(account="-acme", token="k")
    assert str(raised.value) == (
        "the intum account '-acme' (account= or INTUM_ACCOUNT) is not a host name: "
        "give the NAME of https://NAME.intum.com (letters, digits and inner hyphens, at most 63)"
    )


class _Unresolvable(AbstractResolver):
    """A resolver stub: every name fails like a typo in the account does."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_a_host_that_does_not_resolve_is_named_and_not_retried() -> None:
    resolver = _Unresolvable()
    async with CCRMClient(account="acme-typo", token=CANARY, _resolver=resolver) as crm:
        with pytest.raises(ConfigurationError) as raised:
            await crm.notes("d6c1b7d0-0000-4000-8000-000000000000")
    assert str(raised.value) == (
        "the host acme-typo.ccrm.pl does not resolve (Name or service not known): check "
        "the account (account=, --account or CCRM_ACCOUNT) or base_url (CCRM_BASE_URL)"
    )
    assert resolver.asked == ["acme-typo.ccrm.pl"]  # once: not retried
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_a_proxy_that_does_not_resolve_is_named(emulator: CCRMEmulator) -> None:
    resolver = _Unresolvable()
    async with CCRMClient(
        base_url=emulator.url,
        token=emulator.token,
        proxy="http://proxy.invalid:3128",
        _resolver=resolver,
    ) as crm:
        with pytest.raises(ConfigurationError) as raised:
            await crm.custom_fields.list("person")
    assert str(raised.value) == (
        "the host proxy.invalid does not resolve (Name or service not known): "
        "check the proxy (proxy=, --proxy or HTTPS_PROXY)"
    )
    assert resolver.asked == ["proxy.invalid"] and emulator.log == []
