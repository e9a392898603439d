"""CCRMClient construction, configuration, the session it owns, and exact
response sequences (aioresponses)."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest
from aioresponses import aioresponses

import ccrm_async
from ccrm_async import (
    CCRMClient,
    RetryPolicy,
    ServerError,
    Timeouts,
    TransportError,
)
from ccrm_async.testing import CCRMEmulator
from ccrm_async.transport import Clock

from clocks import FakeClock
from conftest import FAST_RETRY, sample_bytes, sample_json

BASE = "https://acme.ccrm.pl"
CALLS = re.compile(r"^https://acme\.ccrm\.pl/publicApi/callHistory.*$")


def test_public_names_are_sorted_and_importable() -> None:
    names = ccrm_async.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(ccrm_async, name), name


def test_account_builds_the_base_url() -> None:
    crm = CCRMClient(account="acme", token="k")
    assert crm.base_url == BASE and crm.concurrency == 8 and crm.lookahead == 10


def test_environment_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCRM_ACCOUNT", "envco")
    monkeypatch.setenv("CCRM_TOKEN", "from-env")
    assert CCRMClient().base_url == "https://envco.ccrm.pl"
    monkeypatch.setenv("CCRM_BASE_URL", "http://127.0.0.1:9")
    assert CCRMClient().base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token": "k"}, "no CCRM account"),
        ({"account": "acme"}, "no API token"),
        ({"account": "Bad Name!", "token": "k"}, "is not a host name"),
        ({"account": "acme.evil.com", "token": "k"}, "is not a host name"),
        ({"account": "acme", "token": "k", "concurrency": 0}, "concurrency"),
    ],
)
def test_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    for name in ("CCRM_ACCOUNT", "CCRM_TOKEN", "CCRM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=message):
        CCRMClient(**kwargs)  # type: ignore[arg-type]


def test_timeout_as_number_or_value() -> None:
    crm = CCRMClient(account="acme", token="k", timeout=5)
    assert crm.transport.timeouts == Timeouts(connect=5, sock_read=5, total=5)
    custom = Timeouts(connect=1, sock_read=2, total=None)
    assert CCRMClient(account="acme", token="k", timeout=custom).transport.timeouts is custom


def test_config_values_validate() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        Timeouts(connect=-1)


async def test_one_session_for_the_client_life(emulator: CCRMEmulator) -> None:
    async with CCRMClient(base_url=emulator.url, token=emulator.token) as crm:
        session = crm.transport.session
        [c async for c in crm.call_history("2024-01-01", "2024-01-02")]
        await crm.notes("00000000-0000-4000-8000-000000000000")
        assert crm.transport.session is session
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        crm.transport.session  # noqa: B018


async def test_every_request_leaves_from_local_addr(emulator: CCRMEmulator) -> None:
    async with CCRMClient(
        base_url=emulator.url, token=emulator.token, local_addr="127.0.0.2"
    ) as crm:
        pairs = [p async for p in crm.call_history_with_notes("2024-01-01", "2024-01-03")]
    assert pairs
    assert {r.remote for r in emulator.log} == {"127.0.0.2"}


async def test_max_rps_spaces_request_starts(emulator: CCRMEmulator) -> None:
    clock = FakeClock()
    async with CCRMClient(
        base_url=emulator.url, token=emulator.token, max_rps=10, _clock=clock
    ) as crm:
        [c async for c in crm.call_history("2024-01-01", "2024-01-31")]
    assert len(emulator.log) == 3
    assert clock.t == pytest.approx(0.2)  # three starts, 0.1 s apart


def one_record_page() -> bytes:
    """The seed's example page, with a total that matches its one record."""
    payload = sample_json("call_history_page.json")
    payload["otherData"]["totalCount"] = 1
    return orjson.dumps(payload)


async def test_seed_total_plans_every_page() -> None:
    """The seed's example says totalCount 8437 on a page of one record: the engine
    plans 9 pages and asks for all of them, a short page 1 does not end the pull."""
    with aioresponses() as mocked:
        mocked.get(CALLS, status=200, body=sample_bytes("call_history_page.json"), repeat=True)
        async with CCRMClient(account="acme", token="k", retry=FAST_RETRY) as crm:
            pull = crm.call_history("2022-12-29", "2022-12-29")
            calls = [c async for c in pull]
        pages = sorted(int(url.query.get("page", 1)) for (_, url) in mocked.requests)
    assert pages == list(range(1, 10))
    s = pull.stats
    assert len(calls) == 1 and s.duplicates_dropped == 8 * 4  # each pass sees 8
    assert s.repair_passes == 3  # read again, at most 3 times
    assert s.suspected_misses == 8436 and not s.complete  # and the shortfall is reported


async def test_exact_sequence_503_503_200() -> None:
    clock = FakeClock()
    with aioresponses() as mocked:
        mocked.get(CALLS, status=503, body=b'{"success":false}')
        mocked.get(CALLS, status=503, body=b"")
        mocked.get(CALLS, status=200, body=one_record_page())
        async with CCRMClient(account="acme", token="k", _clock=clock) as crm:
            pull = crm.call_history("2022-12-29", "2022-12-29")
            calls = [c async for c in pull]
    assert [c.uuid for c in calls] == ["e4baaa94-095a-41b3-b638-203dcfcfd3fe"]
    assert pull.stats.retries == 2 and len(clock.sleeps) == 2
    assert pull.stats.suspected_misses == 0


async def test_5xx_after_all_attempts_is_a_server_error() -> None:
    clock = FakeClock()
    with aioresponses() as mocked:
        for _ in range(5):
            mocked.get(CALLS, status=502, body=b"<html>bad gateway</html>")
        async with CCRMClient(account="acme", token="k", _clock=clock) as crm:
            with pytest.raises(ServerError) as info:
                [c async for c in crm.call_history("2024-01-01", "2024-01-01")]
    assert info.value.status == 502 and len(clock.sleeps) == 4


async def test_connection_refused_is_a_transport_error() -> None:
    clock = FakeClock()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with CCRMClient(
        base_url=f"http://127.0.0.1:{port}", token="k", retry=FAST_RETRY, _clock=clock
    ) as crm:
        with pytest.raises(TransportError) as info:
            [c async for c in crm.call_history("2024-01-01", "2024-01-01")]
    assert not info.value.request_sent
    assert "cannot connect" in str(info.value)
    assert len(clock.sleeps) == FAST_RETRY.max_attempts - 1


async def test_silence_is_a_timeout() -> None:
    async with CCRMEmulator(calls=10) as emu:
        emu.faults.script("/publicApi/callHistory", ["hang"])
        async with CCRMClient(
            base_url=emu.url,
            token=emu.token,
            timeout=Timeouts(connect=1, sock_read=0.2, total=5),
            retry=FAST_RETRY,
        ) as crm:
            calls = [c async for c in crm.call_history("2024-01-01", "2024-01-31")]
    assert len(calls) == 10
    assert [r.fault for r in emu.log] == ["hang", None]


async def test_a_dripping_body_is_cut_by_the_attempt_total() -> None:
    """RELIABILITY 13: a byte every 50 ms never trips sock_read, the total does."""
    async with CCRMEmulator(calls=10) as emu:
        emu.faults.drip_interval = 0.05
        emu.faults.script("/publicApi/callHistory", ["drip"])
        async with CCRMClient(
            base_url=emu.url,
            token=emu.token,
            timeout=Timeouts(connect=1, sock_read=0.2, total=0.5),
            retry=FAST_RETRY,
        ) as crm:
            pull = crm.call_history("2024-01-01", "2024-01-31")
            calls = [c async for c in pull]
    assert len(calls) == 10 and pull.stats.retries == 1
    assert [r.fault for r in emu.log] == ["drip", None]


class _AttemptClock(Clock):
    """The request deadline's clock: every request the emulator has seen costs
    its whole attempt (``total``, 0.5 s), however busy the machine is."""

    def __init__(self, emu: CCRMEmulator, per_attempt: float) -> None:
        self._emu = emu
        self._per_attempt = per_attempt

    def now(self) -> float:
        return len(self._emu.log) * self._per_attempt


async def test_every_request_hanging_ends_within_the_deadline() -> None:
    """RELIABILITY 13: silence and dripping on every request: an error, in time.
    Time is counted in attempts (see _AttemptClock), not read from the wall."""
    async with CCRMEmulator(calls=10) as emu:
        emu.faults.drip_interval = 0.05
        emu.faults.script("/publicApi/callHistory", ["hang", "drip"] * 10)
        policy = RetryPolicy(max_attempts=10, backoff_base=0.01, backoff_cap=0.01, deadline=1.4)
        async with CCRMClient(
            base_url=emu.url,
            token=emu.token,
            timeout=Timeouts(connect=1, sock_read=0.2, total=0.5),
            retry=policy,
            _clock=_AttemptClock(emu, per_attempt=0.5),
        ) as crm:
            with pytest.raises(TransportError, match="timed out"):
                [c async for c in crm.call_history("2024-01-01", "2024-01-31")]
    # A hang (cut by sock_read), a drip (cut by total), a hang; then 1.5 s of
    # attempts have passed, over the 1.4 s deadline: no fourth attempt.
    assert [r.fault for r in emu.log] == ["hang", "drip", "hang"]


async def test_account_time_zone(emulator: CCRMEmulator) -> None:
    """With ``tz``, date-times come back aware and aware arguments are converted."""
    from datetime import UTC, datetime, timedelta, timezone

    tz = timezone(timedelta(hours=1), "CET")
    async with CCRMClient(base_url=emulator.url, token=emulator.token, tz=tz) as crm:
        start = datetime(2023, 12, 31, 23, 0, tzinfo=UTC)  # 2024-01-01 00:00 in CET
        pull = crm.call_history(start, "2024-01-02")
        calls = [c async for c in pull]
        notes = await crm.notes(next(c.uuid for c in calls if c.has_notes))
    assert emulator.log[0].query["dateFrom"] == "2024-01-01 00:00:00"
    assert emulator.log[0].query["dateTo"] == "2024-01-02 23:59:59"
    assert calls and all(c.call_date.tzinfo is tz for c in calls)
    assert all(n.created is not None and n.created.tzinfo is tz for n in notes)
    assert min(c.call_date for c in calls) >= start


async def test_naive_by_default(crm: CCRMClient) -> None:
    calls = [c async for c in crm.call_history("2024-01-01", "2024-01-01")]
    assert calls and all(c.call_date.tzinfo is None for c in calls)
