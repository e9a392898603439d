"""RELIABILITY 45: every attempt, retry, rate-limit pause, page and pull is an
event for ``on_event``; retries and pauses are INFO log lines; a raising
callback never breaks a request; ``trace_configs`` see every request."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from ccrm_async import (
    CCRMClient,
    Event,
    PageEvent,
    PullEvent,
    RateLimitEvent,
    RequestEvent,
    RetryEvent,
)
from ccrm_async.intum import IntumClient
from ccrm_async.testing import CCRMEmulator, IntumEmulator

from clocks import FakeClock
from conftest import FAST_RETRY

CALLS = "/publicApi/callHistory"
RANGE = ("2024-01-01", "2024-01-31")


def _of(events: list[Event], kind: type[Any]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


async def _faulty_pull(events: list[Event]) -> tuple[CCRMEmulator, list[str], CCRMClient]:
    """A 3-page pull with a 503 and a cut-off body on page 2 and a rate-limit
    403 on page 3, on a fake clock (no real waiting)."""
    emu = CCRMEmulator(calls=2500, notes_ratio=0.0)
    await emu.start()
    emu.faults.script(CALLS, ["503", "reset"], page=2)
    emu.faults.script(CALLS, ["rate_limit"], page=3)
    crm = CCRMClient(
        base_url=emu.url,
        token=emu.token,
        concurrency=8,
        retry=FAST_RETRY,
        on_event=events.append,
        _clock=FakeClock(),
    )
    uuids = [call.uuid async for call in crm.call_history(*RANGE)]
    return emu, uuids, crm


async def test_each_event_kind_under_faults() -> None:
    events: list[Event] = []
    emu, uuids, crm = await _faulty_pull(events)
    try:
        assert len(set(uuids)) == 2500
        requests = _of(events, RequestEvent)
        assert len(requests) == len(emu.requests(CALLS)) == 6  # 3 pages + 3 retries
        assert {(e.method, e.route) for e in requests} == {("GET", CALLS)}
        assert sorted((e.status or 0, e.error or "") for e in requests) == [
            (0, "TransportError"),  # the cut-off body: no complete answer
            (200, ""),
            (200, ""),
            (200, ""),
            (403, "RateLimitError"),
            (503, "ServerError"),
        ]
        assert all(e.kind == "request" and e.elapsed >= 0 for e in requests)
        assert sorted(e.attempt for e in requests) == [1, 1, 1, 2, 2, 3]

        retries = _of(events, RetryEvent)
        assert sorted((e.attempt, e.reason) for e in retries) == [
            (1, "HTTP 403 (RateLimitError)"),
            (1, "HTTP 503 (ServerError)"),
            (2, "response body was cut off"),
        ]
        assert all(e.kind == "retry" and e.route == CALLS and e.delay >= 0 for e in retries)

        (pause,) = _of(events, RateLimitEvent)
        assert pause.kind == "rate_limit" and pause.route == CALLS
        assert pause.cooldown == FAST_RETRY.rate_limit_cooldown
        assert pause.concurrency == 4  # 8 halved

        pages = _of(events, PageEvent)
        assert sorted(e.number for e in pages) == [1, 2, 3]
        assert sum(e.records for e in pages) == 2500
        assert {(e.kind, e.route, e.total) for e in pages} == {("page", CALLS, 2500)}

        (pull,) = _of(events, PullEvent)
        assert events[-1] is pull and pull.kind == "pull" and pull.completed
        assert (pull.stats.records, pull.stats.pages) == (2500, 3)
        assert (pull.stats.requests, pull.stats.retries, pull.stats.rate_limit_pauses) == (6, 3, 1)
        # Routes only: no query value (dates, uuids) in any event.
        assert not any("dateFrom" in repr(e) or "2024" in repr(e) for e in events)
    finally:
        await crm.close()
        await emu.close()


async def test_retries_and_rate_limit_pauses_are_info_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Event] = []
    emu, _, crm = await _faulty_pull(events)
    await crm.close()
    await emu.close()
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.name == "ccrm_async"
    ]
    retry_lines = [line for line in lines if "retrying in" in line]
    assert len(retry_lines) == 3
    assert any(
        line.startswith(f"GET {CALLS}: attempt 1 failed (HTTP 503 (ServerError)); retrying in ")
        for line in retry_lines
    )
    assert any(f"GET {CALLS}: attempt 2 failed (response body was cut off)" in x for x in lines)
    assert f"GET {CALLS}: rate limited; every request waits 0.05s, then at most 4 at once" in lines
    assert not any(emu.token in line or "dateFrom" in line for line in lines)


async def test_a_raising_callback_is_logged_and_the_pull_goes_on(
    emulator: CCRMEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def broken(event: Event) -> None:
        seen.append(event.kind)
        raise RuntimeError("metrics backend is down")

    emulator.faults.script(CALLS, ["503"], page=2)
    async with CCRMClient(
        base_url=emulator.url, token=emulator.token, retry=FAST_RETRY, on_event=broken
    ) as crm:
        pull = crm.call_history(*RANGE)
        uuids = [call.uuid async for call in pull]
    assert len(set(uuids)) == 3000 and pull.stats.retries == 1
    assert {"request", "retry", "page", "pull"} <= set(seen)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "on_event callback raised RuntimeError on a 'request' event; ignored" in warnings
    assert len(warnings) == len(seen)


async def test_trace_configs_see_every_request(emulator: CCRMEmulator) -> None:
    started: list[str] = []
    ended: list[int] = []

    async def on_start(_: Any, __: SimpleNamespace, params: Any) -> None:
        started.append(params.url.path)

    async def on_end(_: Any, __: SimpleNamespace, params: Any) -> None:
        ended.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    emulator.faults.script(CALLS, ["503"], page=2)
    async with CCRMClient(
        base_url=emulator.url, token=emulator.token, retry=FAST_RETRY, trace_configs=[trace]
    ) as crm:
        pairs = [pair async for pair in crm.call_history_with_notes(*RANGE)]
    assert len(pairs) == 3000
    assert len(started) == len(emulator.log) > 3000 * 0.2  # pages, the retry and notes
    assert sorted(ended).count(503) == 1 and len(ended) == len(started)


async def test_a_pull_with_notes_ends_with_one_pull_event(emulator: CCRMEmulator) -> None:
    events: list[Event] = []
    async with CCRMClient(
        base_url=emulator.url, token=emulator.token, retry=FAST_RETRY, on_event=events.append
    ) as crm:
        pull = crm.call_history_with_notes(*RANGE)
        pairs = [pair async for pair in pull]
    (end,) = _of(events, PullEvent)
    assert events[-1] is end and end.completed and end.route == CALLS
    assert end.stats.records == len(pairs) and end.stats.notes == pull.stats.notes > 0
    notes_pages = [e for e in _of(events, PageEvent) if e.route == "/publicApi/notes"]
    assert len(notes_pages) == sum(1 for call, _ in pairs if call.has_notes)


async def test_a_pull_closed_early_reports_not_completed(emulator: CCRMEmulator) -> None:
    events: list[Event] = []
    async with (
        CCRMClient(
            base_url=emulator.url, token=emulator.token, retry=FAST_RETRY, on_event=events.append
        ) as crm,
        crm.call_history(*RANGE) as pull,
    ):
        async for _ in pull:
            break
    (end,) = _of(events, PullEvent)
    assert not end.completed and end.stats.records == 1


async def test_intum_client_events() -> None:
    events: list[Event] = []
    async with IntumEmulator(deals=150) as emu:
        emu.faults.script("list", ["503"])
        async with IntumClient(
            base_url=emu.url, token=emu.token, retry=FAST_RETRY, on_event=events.append
        ) as intum:
            deals = [deal async for deal in intum.deals.list()]
    assert len(deals) == 150
    assert [(e.number, e.records) for e in _of(events, PageEvent)] == [(1, 100), (2, 50)]
    (retry,) = _of(events, RetryEvent)
    assert retry.reason == "HTTP 503 (ServerError)"
    assert [e.status for e in _of(events, RequestEvent)] == [503, 200, 200]
    (end,) = _of(events, PullEvent)
    assert end.completed and end.stats.records == 150 and end.stats.retries == 1
