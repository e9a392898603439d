"""Call-history pulls against the emulator over a real socket (RELIABILITY items 1-15)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ccrm_async import (
    AuthenticationError,
    CCRMClient,
    Event,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from ccrm_async import _prefetch as prefetch
from ccrm_async.testing import CCRMEmulator, Faults

from clocks import FakeClock
from conftest import emulator_client as client

CALLS = "/publicApi/callHistory"
RANGE = ("2024-01-01", "2024-01-31")


@pytest.fixture
async def big() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=50_000, notes_ratio=0.0) as emu:
        yield emu


async def test_every_record_once_in_the_api_order(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    pull = crm.call_history(*RANGE)
    uuids = [call.uuid async for call in pull]
    assert uuids == [c["uuid"] for c in emulator.dataset.select(*_wire(RANGE))]
    assert len(uuids) == 3000
    s = pull.stats
    assert (s.records, s.pages, s.total_first, s.suspected_misses) == (3000, 3, 3000, 0)
    assert not s.drift
    # Page 1 alone, then the others; nothing fetched twice.
    pages = [r.page for r in emulator.requests(CALLS)]
    assert sorted(pages) == [1, 2, 3] and pages[0] == 1
    assert "page" not in emulator.requests(CALLS)[0].query


def _wire(r: tuple[str, str]) -> tuple[str, str]:
    return f"{r[0]} 00:00:00", f"{r[1]} 23:59:59"


async def test_empty_range(crm: CCRMClient) -> None:
    pull = crm.call_history("2023-01-01", "2023-01-02")
    assert [c async for c in pull] == []
    assert pull.stats.pages == 1


async def test_date_from_after_date_to_sends_nothing(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    with pytest.raises(ValidationError):
        crm.call_history("2024-02-01", "2024-01-01")
    with pytest.raises(ValidationError):
        crm.call_history_with_notes("2024-02-01", "2024-01-01")
    assert emulator.log == []


async def test_exactly_once_under_faults(big: CCRMEmulator) -> None:
    """RELIABILITY 1: 20 % 503, 5 % resets mid-body, 5 % rate-limit 403s."""
    big.faults = Faults(error_rate=0.20, reset_rate=0.05, rate_limit_rate=0.05, seed=7)
    async with client(big, concurrency=4) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [call.uuid async for call in pull]
    assert len(uuids) == 50_000 and len(set(uuids)) == 50_000
    assert set(uuids) == {c["uuid"] for c in big.dataset}
    served = Counter(r.page for r in big.requests(CALLS) if r.status == 200 and r.fault is None)
    assert served == Counter(range(1, 51))  # no page answered successfully was fetched again
    faults = Counter(r.fault for r in big.requests(CALLS) if r.fault)
    assert faults["503"] and faults["reset"] and faults["rate_limit"]
    assert pull.stats.retries == sum(faults.values())
    assert pull.stats.rate_limit_pauses == faults["rate_limit"]


@pytest.mark.parametrize(
    ("fault", "error"), [("401", AuthenticationError), ("403", PermissionDeniedError)]
)
async def test_fatal_answers_are_not_retried(
    emulator: CCRMEmulator, fault: str, error: type[Exception]
) -> None:
    """RELIABILITY 2: one request, no sleep."""
    clock = FakeClock()
    emulator.faults.script(CALLS, [fault])
    async with client(emulator, _clock=clock) as crm:
        with pytest.raises(error):
            [c async for c in crm.call_history(*RANGE)]
    assert len(emulator.log) == 1 and clock.sleeps == []


async def test_rate_limit_403_is_retried(emulator: CCRMEmulator) -> None:
    emulator.faults.script(CALLS, ["rate_limit", "rate_limit"], page=1)
    async with client(emulator) as crm:
        pull = crm.call_history(*RANGE)
        assert len([c async for c in pull]) == 3000
    assert pull.stats.rate_limit_pauses == 2 and pull.stats.retries == 2


async def test_retry_after_above_maximum_fails_fast(emulator: CCRMEmulator) -> None:
    """RELIABILITY 4: Retry-After 3600 -> RateLimitError(retry_after=3600), no sleep."""
    clock = FakeClock()
    emulator.faults.retry_after = "3600"
    emulator.faults.script(CALLS, ["rate_limit"])
    async with client(emulator, retry=RetryPolicy(), _clock=clock) as crm:
        with pytest.raises(RateLimitError) as info:
            [c async for c in crm.call_history(*RANGE)]
    assert info.value.retry_after == 3600
    assert clock.sleeps == [] and len(emulator.log) == 1


async def test_retry_after_is_honoured(emulator: CCRMEmulator) -> None:
    clock = FakeClock()
    emulator.faults.retry_after = "7"
    emulator.faults.script(CALLS, ["rate_limit"], page=1)
    async with client(emulator, retry=RetryPolicy(), _clock=clock) as crm:
        assert len([c async for c in crm.call_history(*RANGE)]) == 3000
    assert 7.0 in clock.sleeps


async def test_rate_limit_pauses_every_request_then_halves_the_rate() -> None:
    """RELIABILITY 3: nothing is sent during the cool-down; then at most half.

    On a fake clock, in the order things happen (no wall-clock windows, which a
    busy machine stretches): every request sent after the rate-limit answer
    was handled is sent once the cool-down has passed, with at most half the
    concurrency in flight during the hold."""
    clock = FakeClock()
    policy = RetryPolicy(rate_limit_cooldown=0.4, ramp_hold=1.0, backoff_base=0.01)
    sends: list[tuple[float, int]] = []  # (fake time, requests in flight) per send
    pauses: list[tuple[int, float]] = []  # (sends so far, fake time) per rate-limit answer

    def on_event(event: Event) -> None:
        if event.kind == "rate_limit":
            pauses.append((len(sends), clock.t))

    async with CCRMEmulator(calls=30_000, notes_ratio=0.0) as emu:
        emu.faults.latency = 0.03
        emu.faults.script(CALLS, ["rate_limit"], page=6)
        async with client(
            emu, concurrency=4, retry=policy, lookahead=8, _clock=clock, on_event=on_event
        ) as crm:
            transport = crm.transport
            send = transport._send

            async def spy(*args: Any) -> tuple[int, str | None, bytes]:
                sends.append((clock.t, transport.gate.in_flight))
                return await send(*args)

            transport._send = spy  # type: ignore[method-assign]
            assert len([c async for c in crm.call_history(*RANGE)]) == 30_000
    ((sent_before, limited_at),) = pauses
    before, after = sends[:sent_before], sends[sent_before:]
    assert max(in_flight for _, in_flight in before) == 4
    assert after  # the rest of the pull, the rate-limited page again included
    # Nothing new for the cool-down, from any task ...
    assert all(at >= limited_at + policy.rate_limit_cooldown for at, _ in after)
    # ... then, during the hold, at most half the concurrency.
    hold_ends = limited_at + policy.rate_limit_cooldown + policy.ramp_hold
    assert all(in_flight <= 2 for at, in_flight in after if at < hold_ends)


async def test_no_retry_storm(emulator: CCRMEmulator) -> None:
    """RELIABILITY 5: 100 % 503: bounded attempts, then the retry quota empties and
    calls fail fast."""
    clock = FakeClock()
    emulator.faults = Faults(error_rate=1.0, max_per_request=10**9)
    policy = RetryPolicy()
    async with client(emulator, retry=policy, _clock=clock) as crm:
        with pytest.raises(ServerError):
            [c async for c in crm.call_history(*RANGE)]
        assert len(emulator.log) == policy.max_attempts
        assert clock.t <= policy.deadline
        for _ in range(200):
            if crm.transport.quota.available < policy.quota_retry_cost:
                break
            with pytest.raises(ServerError):
                [c async for c in crm.call_history(*RANGE)]
        assert crm.transport.quota.available < policy.quota_retry_cost
        sent = len(emulator.log)
        with pytest.raises(ServerError):
            [c async for c in crm.call_history(*RANGE)]
        assert len(emulator.log) == sent + 1  # fail fast: one attempt, no retry


async def test_short_page_in_the_middle_is_repaired(big: CCRMEmulator) -> None:
    """RELIABILITY 7: page 17 has 999 records once; the pull goes on, sees the
    gap, and a repair pass finds the missing record."""
    big.faults.script(CALLS, ["short"], page=17)
    async with client(big, concurrency=4) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [c.uuid async for c in pull]
    assert len(uuids) == 50_000 == len(set(uuids))
    assert {r.page for r in big.requests(CALLS)} == set(range(1, 51))
    s = pull.stats
    assert (s.total_last, s.suspected_misses, s.repair_passes, s.repaired) == (50_000, 0, 1, 1)


async def test_insertions_at_the_head_cause_no_duplicate_and_no_miss(big: CCRMEmulator) -> None:
    """RELIABILITY 8: 3 records inserted between pages 10 and 11."""
    original = [c["uuid"] for c in big.dataset]
    big.faults.insert_after_page(10, 3)
    async with client(big, concurrency=4) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [c.uuid async for c in pull]
    assert len(uuids) == len(set(uuids))  # 0 duplicates
    assert set(original) <= set(uuids)  # 0 misses
    s = pull.stats
    assert s.inserted == 3 and s.duplicates_dropped == 3 and s.drift
    assert s.suspected_misses == 0
    assert max(r.page for r in big.requests(CALLS)) == 51  # fetched on to a short page


async def test_deletions_are_repaired(big: CCRMEmulator) -> None:
    """RELIABILITY 8 and 40: 3 deletions shift 3 records into pages already read;
    a repair pass reads the range again and finds them; nothing is yielded twice."""
    big.faults.delete_after_page(10, 3)
    async with client(big, concurrency=4) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [c.uuid async for c in pull]
    assert len(uuids) == len(set(uuids))
    s = pull.stats
    assert s.deleted == 3 and s.repair_passes == 1 and s.repaired == 3
    assert s.suspected_misses == 0 and s.complete
    remaining = {c["uuid"] for c in big.dataset}
    assert remaining <= set(uuids)


def _is_server_task(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "aiohttp/web_" in code.co_filename


async def _only_server_tasks_left(turns: int = 100) -> bool:
    """True once no task but this one and the in-process emulator's remain,
    within *turns* turns of the event loop (a count, not a duration: the suite
    must pass on a busy machine)."""
    for turn in range(turns + 1):
        client_tasks = [
            t
            for t in asyncio.all_tasks()
            if t is not asyncio.current_task() and not _is_server_task(t)
        ]
        if not client_tasks:
            return True
        if turn < turns:
            await asyncio.sleep(0)
    return False


async def _no_open_connections(emu: CCRMEmulator) -> None:
    """Wait until the emulator sees no open socket. Closing one takes network
    I/O, so this waits as long as it takes; pytest-timeout stops a hang."""
    while emu.open_connections:  # noqa: ASYNC110 - the emulator has no event for it
        await asyncio.sleep(0.01)


async def test_cancellation_hygiene(monkeypatch: pytest.MonkeyPatch) -> None:
    """RELIABILITY 11: cancelled at 200 seeded random points."""
    # The parser gives the loop back at every page, so the cancellation lands
    # inside the pull, not after a whole buffered pull ran through.
    monkeypatch.setattr(prefetch, "HOLD_LOOP", 0.0)
    rng = random.Random(11)
    async with CCRMEmulator(calls=5_000, notes_ratio=0.5) as emu:
        emu.faults.latency = 0.002
        for _ in range(200):
            crm = client(emu, concurrency=4)
            with_notes = rng.random() < 0.5

            async def consume(crm: CCRMClient = crm, with_notes: bool = with_notes) -> None:
                pull = (
                    crm.call_history_with_notes(*RANGE) if with_notes else crm.call_history(*RANGE)
                )
                async for _ in pull:
                    pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(rng.uniform(0, 0.03))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await _only_server_tasks_left()
            connector = crm.transport.connector
            assert connector is None or not connector._acquired  # type: ignore[attr-defined]
            await crm.close()
            await _no_open_connections(emu)


async def test_one_fatal_error_stops_all_siblings(big: CCRMEmulator) -> None:
    """RELIABILITY 12: a 401 on page 7 at concurrency 4."""
    big.faults.latency = 0.02
    big.faults.script(CALLS, ["401"], page=7)
    async with client(big, concurrency=4) as crm:
        with pytest.raises(AuthenticationError):
            [c async for c in crm.call_history(*RANGE)]
        assert await _only_server_tasks_left()  # every sibling was cancelled
        await _no_open_connections(big)
        settled = len(big.log)
        await asyncio.sleep(0.2)  # a sibling still running would request more now
        assert len(big.log) == settled
    unauthorized = next(r for r in big.log if r.fault == "401")
    assert unauthorized.finished is not None
    # Counts, not durations (the timing is in benchmarks/timing.py): after the
    # 401 was sent, at most the requests already under way (one lookahead)
    # reached the server, of the 50 pages.
    late = [r for r in big.log if r.at > unauthorized.finished]
    assert len(late) <= crm.lookahead
    assert len(big.log) <= 7 + 2 * crm.lookahead


async def test_concurrency_is_bounded() -> None:
    """RELIABILITY 14: never more than 4 in flight, over 1,000+ requests."""
    async with CCRMEmulator(calls=3_000, notes_ratio=0.5) as emu:
        emu.faults.latency = 0.002
        async with client(emu, concurrency=4) as crm:
            pull = crm.call_history_with_notes(*RANGE)
            pairs = [pair async for pair in pull]
        assert len(pairs) == 3000 and len(emu.log) > 1000
        assert 2 <= emu.peak_in_flight <= 4
        assert crm.transport.gate.peak_in_flight <= 4


async def test_retried_pages_do_not_re_emit_records(emulator: CCRMEmulator) -> None:
    """RELIABILITY 15: a reset mid-body and a truncated 200 are retried, records once."""
    emulator.faults.script(CALLS, ["reset"], page=2)
    emulator.faults.script(CALLS, ["truncated", "html"], page=3)
    pull = None
    async with client(emulator) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [c.uuid async for c in pull]
    assert len(uuids) == 3000 == len(set(uuids))
    assert pull.stats.retries == 3


@pytest.mark.parametrize("fault", ["success_false", "data_not_list"])
async def test_bad_200_is_an_error_not_the_end(emulator: CCRMEmulator, fault: str) -> None:
    """RELIABILITY 6: over the wire, a bad 200 raises instead of ending the pull early."""
    from ccrm_async import ResponseError

    emulator.faults.script(CALLS, [fault], page=2)
    async with client(emulator) as crm:
        seen = 0
        with pytest.raises(ResponseError):
            async for _ in crm.call_history(*RANGE):
                seen += 1
    assert seen <= 1000


async def test_notes_fan_out_only_for_flagged_calls_in_call_order(
    crm: CCRMClient, emulator: CCRMEmulator
) -> None:
    pull = crm.call_history_with_notes(*RANGE)
    pairs = [pair async for pair in pull]
    calls = [c for c, _ in pairs]
    assert [c.uuid for c in calls] == [c["uuid"] for c in emulator.dataset.calls]
    asked = [r.query["callHistory"] for r in emulator.requests("/publicApi/notes")]
    flagged = {c.uuid for c in calls if c.has_notes}
    assert set(asked) == flagged and len(asked) == len(flagged)
    for call, notes in pairs:
        expected = emulator.dataset.notes_for(emulator.dataset.by_uuid(call.uuid) or {})
        assert [n.uuid for n in notes] == [n["uuid"] for n in expected]
        assert all(n.call is not None and n.call.uuid == call.uuid for n in notes)
    assert pull.stats.notes == sum(len(n) for _, n in pairs) > 0
    assert pull.stats.records == 3000


async def test_notes_of_one_call(crm: CCRMClient, emulator: CCRMEmulator) -> None:
    call = next(c for c in emulator.dataset.calls if c["note"])
    notes = await crm.notes(call["uuid"])
    assert [n.uuid for n in notes] == [n["uuid"] for n in emulator.dataset.notes_for(call)]
    assert all(n.plain_text and "{" not in n.plain_text for n in notes)


async def test_breaking_out_early_cancels_the_rest(big: CCRMEmulator) -> None:
    big.faults.latency = 0.01
    async with client(big, concurrency=4) as crm:
        async with crm.call_history(*RANGE) as pull:
            async for _ in pull:
                break
        assert await _only_server_tasks_left(turns=0)
    assert len(big.log) <= 1 + crm.lookahead
