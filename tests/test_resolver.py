"""RELIABILITY 18: the default origin never resolves to a non-public address."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from ccrm_async import CCRMClient, RetryPolicy, TransportError
from ccrm_async.transport import PublicAddressResolver


class SpyResolver(AbstractResolver):
    """Answers every name with fixed addresses and records the questions."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.addresses
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "addresses",
    [
        ("127.0.0.1",),
        ("10.0.0.5",),
        ("169.254.169.254",),
        ("100.100.100.200",),
        ("::1",),
        ("fd00::1",),
        ("::ffff:127.0.0.1",),
        ("93.184.216.34", "10.0.0.5"),  # one public, one private
    ],
)
async def test_private_answers_are_refused_before_connecting(addresses: tuple[str, ...]) -> None:
    spy = SpyResolver(*addresses)
    async with CCRMClient(
        account="acme", token="k", retry=RetryPolicy.no_retries(), _resolver=spy
    ) as crm:
        with pytest.raises(TransportError) as info:
            await crm.notes("x")
    assert spy.asked == ["acme.ccrm.pl"]
    assert not info.value.request_sent  # no connection was made
    assert "cannot connect" in str(info.value)


async def test_public_answers_pass() -> None:
    resolver = PublicAddressResolver(SpyResolver("93.184.216.34", "2606:2800:220:1::1"))
    results: list[Any] = await resolver.resolve("acme.ccrm.pl", 443)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:2800:220:1::1"]


def test_only_the_default_origin_is_guarded() -> None:
    guarded = CCRMClient(account="acme", token="k")
    assert isinstance(guarded.transport._resolver, PublicAddressResolver)
    local = CCRMClient(base_url="http://127.0.0.1:9", token="k")
    assert local.transport._resolver is None
    proxied = CCRMClient(account="acme", token="k", proxy="http://10.0.0.1:3128")
    assert proxied.transport._resolver is None  # the proxy resolves the API's name
