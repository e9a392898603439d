"""RELIABILITY 33-34: the API key never shows up in an exception or a repr."""

from __future__ import annotations

import logging
import pickle
import traceback

import aiohttp
import pytest
from aioresponses import aioresponses

from ccrm_async import CCRMClient, CCRMError, RetryPolicy, Timeouts
from ccrm_async.config import Secret
from ccrm_async.testing import CCRMEmulator

CANARY = "ccrm_TESTKEY_5f2a9c1e7d"
ONE_TRY = RetryPolicy.no_retries()


def assert_clean(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    rendered = "".join(traceback.format_exception(exc))
    for text in (str(exc), repr(exc), rendered, caplog.text):
        assert CANARY not in text


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


@pytest.mark.parametrize("fault", ["401", "403", "404", "503", "rate_limit", "html", "reset"])
async def test_errors_from_answers(fault: str, caplog: pytest.LogCaptureFixture) -> None:
    async with CCRMEmulator(calls=10, token=CANARY) as emu:
        emu.faults.script("/publicApi/callHistory", [fault])
        async with CCRMClient(base_url=emu.url, token=CANARY, retry=ONE_TRY) as crm:
            with pytest.raises(CCRMError) as info:
                [c async for c in crm.call_history("2024-01-01", "2024-01-31")]
    assert_clean(info.value, caplog)


async def test_wrong_key(caplog: pytest.LogCaptureFixture) -> None:
    async with CCRMEmulator(calls=10) as emu, CCRMClient(base_url=emu.url, token=CANARY) as crm:
        with pytest.raises(CCRMError) as info:
            await crm.notes("x")
    assert_clean(info.value, caplog)


async def test_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async with CCRMEmulator(calls=10, token=CANARY) as emu:
        emu.faults.script("/publicApi/notes", ["hang"])
        timeouts = Timeouts(connect=1, sock_read=0.1, total=1)
        async with CCRMClient(
            base_url=emu.url, token=CANARY, retry=ONE_TRY, timeout=timeouts
        ) as crm:
            with pytest.raises(CCRMError) as info:
                await crm.notes("x")
    assert_clean(info.value, caplog)


async def test_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with CCRMClient(base_url="http://127.0.0.1:9", token=CANARY, retry=ONE_TRY) as crm:
        with pytest.raises(CCRMError) as info:
            await crm.notes("x")
    assert_clean(info.value, caplog)


@pytest.mark.parametrize(
    "raised",
    [
        aiohttp.ClientConnectorError(
            aiohttp.client_reqrep.ConnectionKey("acme.ccrm.pl", 443, True, None, None, None, None),
            OSError(111, "Connection refused"),
        ),
        TimeoutError(),
        aiohttp.ClientPayloadError("cut"),
        aiohttp.ServerDisconnectedError(),
    ],
)
async def test_wrapped_aiohttp_exceptions(
    raised: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with aioresponses() as mocked:
        mocked.get("https://acme.ccrm.pl/publicApi/notes?callHistory=x", exception=raised)
        async with CCRMClient(account="acme", token=CANARY, retry=ONE_TRY) as crm:
            with pytest.raises(CCRMError) as info:
                await crm.notes("x")
    error = info.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert_clean(info.value, caplog)


def test_reprs_and_pickling() -> None:
    crm = CCRMClient(account="acme", token=CANARY)
    for text in (repr(crm), str(crm), repr(vars(crm)), repr(crm.transport), repr(Secret(CANARY))):
        assert CANARY not in text
    assert f"{Secret(CANARY)}" == "Secret('***')"
    with pytest.raises(TypeError):
        pickle.dumps(crm)
    with pytest.raises(TypeError):
        pickle.dumps(Secret(CANARY))
    for config in (crm.transport.retry_policy, crm.transport.timeouts):
        assert CANARY.encode() not in pickle.dumps(config)
        assert CANARY not in repr(vars(config) if hasattr(config, "__dict__") else config)


def test_errors_pickle_without_losing_fields() -> None:
    from ccrm_async import RateLimitError

    error = RateLimitError("limit", retry_after=5, status=403, method="GET", path="/x")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.retry_after, copy.status, str(copy)) == (5, 403, str(error))
