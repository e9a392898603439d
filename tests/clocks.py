"""A fake clock for the transport: sleeping advances time at once."""

import asyncio

from ccrm_async.transport import Clock


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


class ManualClock(Clock):
    """Monotonic time that moves only when the test says so (:meth:`advance`);
    sleepers wake when their time has come, in order. Its epoch time starts at
    :data:`EPOCH` and moves with it."""

    EPOCH = 1_700_000_000.0

    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    def time(self) -> float:
        return self.EPOCH + self.t

    @property
    def sleepers(self) -> int:
        """Tasks asleep on this clock now."""
        return sum(1 for _, f in self._sleepers if not f.done())

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.t + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        self.t += seconds
        for wake, future in sorted(self._sleepers, key=lambda s: s[0]):
            if wake <= self.t and not future.done():
                future.set_result(None)
        self._sleepers = [(w, f) for w, f in self._sleepers if not f.done()]
        for _ in range(5):
            await asyncio.sleep(0)
