"""The callback endpoint over real sockets: RELIABILITY 16 (same 404, nothing
logged, nothing fetched), 20 (fast acknowledgement, tracked tasks), 21
(duplicates) and 22 (body limits, fuzzing)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from _export_fixtures import (
    crm,
    emu,
    eventually,
    export_dir,
    export_root,
    files_in,
    http,
    path_of,
    post,
    rx,
)
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccrm_async import CCRMClient, ExportCancelled
from ccrm_async.exports import MAX_TRIES, ExportReceiver, ExportStatus
from ccrm_async.testing import CCRMEmulator

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "http", "rx"]


async def _pending(emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver) -> tuple[Any, Any]:
    """A pending people export whose callback the test delivers itself."""
    emu.exports.faults.missing = True
    before = set(emu.exports.exports)
    job = await crm.export_people(["firstName", "lastName"], receiver=rx)
    (export,) = [e for key, e in emu.exports.exports.items() if key not in before]
    await eventually(lambda: export.ready_at is not None)
    return job, export


def _good_body(emu: CCRMEmulator, export: Any) -> bytes:
    return orjson.dumps({"url": f"{emu.url}/api/storage/download/{export.id}"})


# -- 16: capability tokens -----------------------------------------------------


async def test_unknown_expired_and_used_tokens_look_like_any_unknown_path(
    emu: CCRMEmulator,
    crm: CCRMClient,
    export_dir: Path,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    compared: list[int] = []
    real_compare = hmac.compare_digest

    def compare_spy(a: Any, b: Any) -> bool:
        compared.append(1)
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare_spy)
    async with ExportReceiver(directory=export_dir, replay_window=0) as rx:
        used_job, used = await _pending(emu, crm, rx)
        used_url = rx.url + path_of(used.push_url)
        assert (await post(http, used_url, _good_body(emu, used)))[0] == 200
        await used_job.wait(timeout=5)

        expired_job = await crm.export_people(["firstName"], receiver=rx, timeout=0.05)
        with pytest.raises(Exception, match="deadline"):
            await expired_job
        expired = [e for e in emu.exports.exports.values() if e.id != used.id][-1]

        live_job, live = await _pending(emu, crm, rx)
        live_path = path_of(live.push_url)
        job_part, token = live_path.rsplit("/", 1)
        other_token = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

        downloads_before = rx.downloads_started
        log_before = len(emu.log)
        compared.clear()
        random_path = await post(http, rx.url + "/no/such/path", b'{"url": "x"}')
        cases = {
            "random path": random_path,
            "random callback path": await post(
                http,
                rx.url + "/ccrm-export/00000000-0000-4000-8000-000000000000/" + "x" * 43,
                b"{}",
            ),
            "wrong token": await post(
                http, rx.url + f"{job_part}/{other_token}", _good_body(emu, live)
            ),
            "expired token": await post(
                http, rx.url + path_of(expired.push_url), _good_body(emu, expired)
            ),
            "used token": await post(http, used_url, _good_body(emu, used)),
            "short token": await post(http, rx.url + f"{job_part}/abc", b"{}"),
            "GET with the right token": await _get(http, rx.url + live_path),
        }
        assert random_path[0] == 404
        for name, answer in cases.items():
            assert answer == random_path, name
        assert len(compared) >= 3  # wrong, expired and used tokens were compared
        assert rx.downloads_started == downloads_before
        assert len(emu.log) == log_before  # 0 outbound requests
        assert live_job.status is ExportStatus.PENDING
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for export in (used, expired, live):
        assert path_of(export.push_url).rsplit("/", 1)[1] not in logged
    assert other_token not in logged


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes, str]:
    async with session.get(url) as resp:
        return resp.status, await resp.read(), resp.content_type


async def test_a_mounted_receiver_answers_like_the_host_app(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, http: aiohttp.ClientSession
) -> None:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    async with ExportReceiver(
        listen=None, public_url="https://hooks.example.com", directory=export_dir
    ) as rx:
        rx.mount(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            job, export = await _pending(emu, crm, rx)
            assert export.push_url.startswith("https://hooks.example.com/ccrm-export/")
            wrong = await post(http, base + path_of(export.push_url)[:-2] + "xx", b"{}")
            assert wrong == await post(http, base + "/nothing", b"{}")
            assert wrong[0] == 404
            ok = await post(http, base + path_of(export.push_url), _good_body(emu, export))
            assert ok[0] == 200
            result = await job.wait(timeout=5)
            assert result.size > 0
        finally:
            await runner.cleanup()


# -- 20: fast acknowledgement --------------------------------------------------


async def test_a_hundred_callbacks_are_acknowledged_at_once(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, http: aiohttp.ClientSession
) -> None:
    # Every download stalls after its first chunk, and only 4 may run: if an
    # acknowledgement waited on its download (or on a download slot), the
    # callbacks past the fourth could never be answered. (Latency figures:
    # benchmarks/export.py.)
    emu.exports.faults.missing = True
    emu.exports.faults.download_hang = True
    emu.exports.faults.people = 2000
    rx = ExportReceiver(directory=export_dir, shutdown_timeout=0.2)
    async with rx:
        jobs = await asyncio.gather(
            *(crm.export_people(["firstName"], receiver=rx) for _ in range(100))
        )
        await eventually(lambda: sum(1 for e in emu.exports.exports.values() if e.ready_at) == 100)
        statuses = await asyncio.gather(
            *(
                post(http, rx.url + path_of(e.push_url), _good_body(emu, e))
                for e in emu.exports.exports.values()
            )
        )
        assert [s[0] for s in statuses] == [200] * 100
        assert not any(job.done() for job in jobs)  # every download still running or queued
        assert rx.downloads_started == 100
        assert len(rx.background_tasks) == 100  # tracked, 4 running and 96 queued
        assert all(job.status is ExportStatus.DOWNLOADING for job in jobs)
        await eventually(lambda: sum(1 for e in emu.exports.exports.values() if e.downloads) == 4)
        assert sum(1 for e in emu.exports.exports.values() if e.downloads) == 4
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(o, ExportCancelled) for o in outcomes)
    assert rx.background_tasks == frozenset()
    assert files_in(export_dir) == []  # the cancelled downloads left no .part behind


# -- 21: duplicate callbacks ---------------------------------------------------


async def test_the_same_callback_five_times_downloads_once(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.deliveries = 5
    emu.exports.faults.concurrent_deliveries = 3
    job = await crm.export_people(["firstName", "phone1"], receiver=rx)
    result = await job.wait(timeout=5)
    export = next(iter(emu.exports.exports.values()))
    await eventually(lambda: len(export.callbacks) == 5)
    assert export.callbacks == [200] * 5
    assert [status for _, status in export.downloads] == [200]
    assert rx.downloads_started == 1
    assert await job is result and job.tries == 1
    # Another file for the same job is refused, and nothing more is fetched.
    other = orjson.dumps(
        {"url": f"{emu.url}/api/storage/download/00000000-0000-4000-8000-000000000001"}
    )
    async with aiohttp.ClientSession() as session:
        status, _, _ = await post(session, rx.url + path_of(export.push_url), other)
    assert status == 404  # a used token
    assert rx.downloads_started == 1


def _other_file(emu: CCRMEmulator, n: int) -> bytes:
    return orjson.dumps({"url": f"{emu.url}/api/storage/download/00000000-0000-4000-8000-{n:012d}"})


async def test_other_files_for_a_job_being_downloaded_queue_up_to_the_try_limit(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, http: aiohttp.ClientSession
) -> None:
    job, export = await _pending(emu, crm, rx)
    emu.exports.faults.download_hang = True
    url = rx.url + path_of(export.push_url)
    assert (await post(http, url, _good_body(emu, export)))[0] == 200
    # Queued, not refused: the running download may be a forged one.
    for n in range(1, MAX_TRIES):
        assert (await post(http, url, _other_file(emu, n)))[0] == 200
    assert (await post(http, url, _other_file(emu, 1)))[0] == 200  # a repeat
    assert (await post(http, url, _other_file(emu, MAX_TRIES)))[0] == 409  # no try left
    assert (await post(http, url, _good_body(emu, export)))[0] == 200
    assert rx.downloads_started == 1
    assert job.cancel()
    with pytest.raises(ExportCancelled):
        await job


# -- 22: body limits and fuzzing -----------------------------------------------


async def _raw(host: str, port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send *head* and *body_parts*, then wait (without finishing the body) for the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
        await writer.drain()
        async with asyncio.timeout(3):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_an_oversized_body_gets_413_before_it_is_all_sent(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    job, export = await _pending(emu, crm, rx)
    host, port = rx.url.removeprefix("http://").split(":")
    path = path_of(export.push_url).encode()
    declared = (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5120\r\n\r\n"
    )
    # 100 of the 5120 bytes announced are sent: the answer comes all the same.
    answer = await _raw(host, int(port), declared, [b"{" + b" " * 99])
    assert answer.startswith(b"HTTP/1.1 413")
    chunked = (
        b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunks = [b"400\r\n" + b" " * 1024 + b"\r\n"] * 5  # 5 KiB, and never the last chunk
    answer = await _raw(host, int(port), chunked, chunks)
    assert answer.startswith(b"HTTP/1.1 413")
    assert job.status is ExportStatus.PENDING
    assert rx.downloads_started == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b'{"url": 5}', b'{"url": {"href": "x"}}', b'["x"]', b"", b"null"],
)
async def test_bad_bodies_get_400_and_the_job_stays_pending(
    emu: CCRMEmulator,
    crm: CCRMClient,
    rx: ExportReceiver,
    http: aiohttp.ClientSession,
    body: bytes,
) -> None:
    job, export = await _pending(emu, crm, rx)
    status, payload, content_type = await post(http, rx.url + path_of(export.push_url), body)
    assert status == 400 and content_type == "application/json"
    assert orjson.loads(payload)["success"] is False
    assert job.status is ExportStatus.PENDING and rx.downloads_started == 0


def _fuzz_cases(good_path: str, count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """*count* Hypothesis-made (path, body, headers) triples."""
    cases: list[tuple[str, bytes, dict[str, str]]] = []
    text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
    url_like = st.one_of(
        text,
        st.builds(lambda s: "http://127.0.0.1:1/api/storage/download/" + s, text),
        st.integers(-(2**63), 2**63 - 1),
        st.none(),
        st.lists(text, max_size=3),
    )
    bodies = st.one_of(
        st.binary(max_size=600),
        st.builds(lambda u: orjson.dumps({"url": u}), url_like),
        st.builds(lambda d: orjson.dumps(d), st.dictionaries(text, url_like, max_size=4)),
        st.builds(lambda s: s.encode(), text),
        st.builds(lambda n: b"[" * n + b"]" * n, st.integers(0, 2000)),
        st.builds(lambda n: b"a" * n, st.integers(4000, 4200)),
    )
    header_names = st.sampled_from(
        ["Content-Type", "Content-Encoding", "Accept", "X-Forwarded-For", "Expect", "User-Agent"]
    )
    header_values = st.one_of(
        st.sampled_from(
            ["application/json", "text/plain", "gzip", "deflate", "br", "identity", "100-continue"]
        ),
        text,
    )
    headers = st.dictionaries(header_names, header_values, max_size=3)
    paths = st.one_of(
        st.just(good_path),
        st.builds(lambda s: good_path[:-3] + s, st.text("AZaz09-_", min_size=3, max_size=3)),
        st.builds(lambda s: "/ccrm-export/" + s, text),
    )

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(paths, bodies, headers)
    def collect(path: str, body: bytes, hdrs: dict[str, str]) -> None:
        cases.append((path, body, hdrs))

    collect()
    return cases


async def test_two_thousand_fuzzed_callbacks_never_get_a_5xx(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    async with ExportReceiver(directory=export_dir, shutdown_timeout=0.2) as rx:
        job, export = await _pending(emu, crm, rx)
        good_path = path_of(export.push_url)
        cases = _fuzz_cases(good_path, 2000)
        assert len(cases) >= 2000
        statuses: list[int] = []
        gate = asyncio.Semaphore(16)
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        ) as session:

            async def send(path: str, body: bytes, headers: dict[str, str]) -> None:
                async with gate:
                    try:
                        async with session.post(
                            rx.url + path,
                            data=body,
                            headers=headers,
                            skip_auto_headers=["Content-Type"],
                        ) as resp:
                            await resp.read()
                            statuses.append(resp.status)
                    except aiohttp.ClientError:
                        statuses.append(0)  # e.g. the server closed after a 413

            await asyncio.gather(*(send(*case) for case in cases))
        assert len(statuses) == len(cases)
        assert [s for s in statuses if s >= 500] == []
        assert {s for s in statuses} <= {0, 200, 400, 404, 409, 413, 417}
        if not job.done():
            job.cancel()
        await asyncio.gather(job.wait(), return_exceptions=True)
