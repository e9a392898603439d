"""The notes fan-out (:func:`ccrm_async.pagination.fan_out`) as a unit: details
are fetched ahead while the consumer does not ask, in item order, bounded, and
errors or closing stop every detail at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ccrm_async.pagination import fan_out


async def _items(n: int, *, fail_at: int | None = None) -> AsyncIterator[int]:
    for i in range(n):
        if i == fail_at:
            raise LookupError(f"item {i}")
        await asyncio.sleep(0)
        yield i


async def _turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_details_are_fetched_while_the_consumer_is_busy_elsewhere() -> None:
    """A window opened ahead asks for its first pair only; its other notes must
    still be requested meanwhile (else the gate idles at each window's end)."""
    asked: list[int] = []

    async def detail(item: int) -> list[str]:
        asked.append(item)
        return [f"note {item}"]

    pairs = fan_out(_items(10), detail, wanted=lambda i: i % 2 == 0, size=4)
    assert await anext(pairs) == (0, ["note 0"])
    await _turns()  # the consumer is away: the feeder goes on up to the bound
    assert asked == [0, 2, 4]  # items 1..4 wait (size 4): details of 2 and 4 asked
    rest = [pair async for pair in pairs]
    assert rest == [(i, [f"note {i}"] if i % 2 == 0 else []) for i in range(1, 10)]
    assert asked == [0, 2, 4, 6, 8]


async def test_an_error_reading_items_is_raised_at_once_and_cancels_details() -> None:
    cancelled: list[int] = []
    started = asyncio.Event()

    async def detail(item: int) -> list[int]:
        try:
            if item == 0:
                return []
            started.set()
            await asyncio.Event().wait()  # never answers
            raise AssertionError("unreachable")
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    pairs = fan_out(_items(10, fail_at=3), detail, wanted=lambda _: True, size=8)
    assert await anext(pairs) == (0, [])
    with pytest.raises(LookupError, match="item 3"):
        await anext(pairs)  # item 1's detail never answers: the error does not wait for it
    assert 1 in cancelled and set(cancelled) <= {1, 2}  # 2's may go before it ran
    await pairs.aclose()


async def test_a_failed_detail_cancels_the_others_and_stops_the_feeder() -> None:
    asked: list[int] = []

    async def detail(item: int) -> list[int]:
        asked.append(item)
        if item == 2:
            raise ValueError("notes of 2")
        await asyncio.Event().wait()
        return []

    pairs = fan_out(_items(1000), detail, wanted=lambda _: True, size=5)
    with pytest.raises(ValueError, match="notes of 2"):
        await anext(pairs)
    await _turns()
    assert max(asked) < 5  # nothing submitted after the failure
    await pairs.aclose()


async def test_closing_cancels_details_and_closes_items() -> None:
    closed = asyncio.Event()
    cancelled: list[int] = []

    async def items() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i
        finally:
            closed.set()

    async def detail(item: int) -> list[int]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return []

    pairs = fan_out(items(), detail, wanted=lambda i: i > 0, size=6)
    assert await anext(pairs) == (0, [])
    await _turns()
    await pairs.aclose()
    assert closed.is_set()
    assert sorted(cancelled) == [1, 2, 3, 4, 5, 6]
