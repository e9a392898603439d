"""A client belongs to the event loop it was first used in; another loop gets a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ccrm_async import CCRMClient, CCRMError, EventLoopError
from ccrm_async.intum import IntumClient
from ccrm_async.testing import CCRMEmulator, IntumEmulator

from conftest import FAST_RETRY


def _in_two_loops(
    serve: Callable[[], Any],
    connect: Callable[[str, str], Any],
    use: Callable[[Any], Coroutine[Any, Any, object]],
) -> None:
    """Start the server and use the client in loop A; use it again from loop B."""
    first = asyncio.new_event_loop()
    try:
        emulator = serve()
        first.run_until_complete(emulator.start())
        client = connect(emulator.url, emulator.token)
        first.run_until_complete(use(client))  # works: binds the client to *first*

        async def from_another_loop() -> None:
            with pytest.raises(EventLoopError, match="another event loop") as caught:
                await use(client)
            assert isinstance(caught.value, CCRMError)
            with pytest.raises(EventLoopError):
                await client.close()

        asyncio.run(from_another_loop())
        # Still usable, and closable, in its own loop.
        first.run_until_complete(use(client))
        first.run_until_complete(client.close())
        first.run_until_complete(emulator.close())
    finally:
        first.close()


def test_ccrm_client_refuses_a_second_loop() -> None:
    async def use(crm: CCRMClient) -> object:
        return [call async for call in crm.call_history("2024-01-01", "2024-01-01")]

    _in_two_loops(
        lambda: CCRMEmulator(calls=50, days=2),
        lambda url, token: CCRMClient(base_url=url, token=token, retry=FAST_RETRY),
        use,
    )


def test_intum_client_refuses_a_second_loop() -> None:
    async def use(intum: IntumClient) -> object:
        return [deal async for deal in intum.deals.list()]

    _in_two_loops(
        IntumEmulator,
        lambda url, token: IntumClient(base_url=url, token=token, retry=FAST_RETRY),
        use,
    )
