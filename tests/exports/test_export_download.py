"""The download: same egress IP, redirects and credentials (RELIABILITY 19),
streaming, size cap and integrity (23), files at rest (36)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _export_fixtures import (
    crm,
    emu,
    eventually,
    export_dir,
    export_root,
    file_mode,
    files_in,
    gate_held,
    rx,
)
from aiohttp import web

from ccrm_async import CCRMClient, DownloadError, ExportTimeout
from ccrm_async.exports import EXPORT_PATHS, ExportReceiver, ExportStatus
from ccrm_async.testing import CCRMEmulator

from clocks import ManualClock
from conftest import FAST_RETRY

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "rx"]

HERE = Path(__file__).parent
MiB = 1 << 20


def _only_export(emu: CCRMEmulator) -> Any:
    (export,) = emu.exports.exports.values()
    return export


async def test_request_and_download_leave_from_the_same_bound_address(
    emu: CCRMEmulator, rx: ExportReceiver
) -> None:
    async with CCRMClient(
        base_url=emu.url, token=emu.token, local_addr="127.0.0.2", retry=FAST_RETRY
    ) as crm:
        job = await crm.export_people(["firstName", "lastName", "phone1"], receiver=rx)
        result = await job.wait(timeout=5)
    export = _only_export(emu)
    requests = [(r.method, r.path, r.remote, r.status) for r in emu.log]
    assert requests == [
        ("POST", "/publicApi/people/export", "127.0.0.2", 200),
        ("GET", f"/api/storage/download/{export.id}", "127.0.0.2", 200),
    ]
    assert result.path.read_bytes() == emu.exports.file(export.id)
    # Any other address is refused by the (emulated) account's rule.
    async with (
        aiohttp.ClientSession() as other,
        other.get(
            f"{emu.url}/api/storage/download/{export.id}",
            headers={"Authorization": f"Bearer {emu.token}"},
        ) as resp,
    ):
        assert resp.status == 403


async def test_a_file_served_to_another_ip_is_refused_and_the_job_waits_until_its_deadline(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    async with (
        CCRMClient(
            base_url=emu.url, token=emu.token, local_addr="127.0.0.3", retry=FAST_RETRY
        ) as elsewhere,
        ExportReceiver(directory=export_dir, clock=clock) as rx,
    ):
        # The job downloads through a client bound elsewhere; the request
        # leaves from 127.0.0.1 (as if the egress IP had changed in between).
        emu.exports.faults.missing = True
        job, push = rx.register("people", ["firstName"], elsewhere.transport, timeout=60)
        await crm.transport.request(
            "POST",
            EXPORT_PATHS["people"],
            lambda body: body,
            json={"columns": ["firstName"], "pushUrl": push},
            idempotent=False,
        )
        export = _only_export(emu)
        assert await emu.exports.deliver(export) == 200
        await eventually(lambda: export.downloads != [] and job.status is ExportStatus.PENDING)
        # A 403 from the storage is what a forged callback would also get:
        # the job waits on for a better one, until its deadline.
        assert [s for _, s in export.downloads] == [403]
        assert not job.done() and job.tries == 1
        await clock.advance(60)
        with pytest.raises(ExportTimeout, match="only to the IP"):
            await job
    assert job.status is ExportStatus.TIMED_OUT
    assert files_in(export_dir) == []


# -- 19: redirects and credentials ---------------------------------------------


@pytest.fixture
async def capture() -> AsyncIterator[tuple[list[dict[str, str]], int]]:
    """A server on 127.0.0.1 and 127.0.0.3 (another origin) that records what it is sent."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b"stolen", content_type="text/csv")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    second = web.TCPSite(runner, "127.0.0.3", port)
    await second.start()
    yield seen, port
    await runner.cleanup()


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{capture}/api/storage/download/{id}",  # another origin (port)
        "http://127.0.0.3:{capture}/api/storage/download/{id}",  # a private address
        "https://127.0.0.1:{emu}/api/storage/download/{id}?redirected=1",  # other scheme
        "http://localhost:{emu}/api/storage/download/{id}?redirected=1",  # other host name
        "http://user:pw@127.0.0.1:{emu}/api/storage/download/{id}?redirected=1",  # userinfo
        "//127.0.0.1:{capture}/x",  # scheme-relative, elsewhere
        "http://127.0.0.1:{emu}\\@127.0.0.1:{capture}/x",  # backslash trick
    ],
)
async def test_redirects_away_from_the_api_origin_are_refused(
    emu: CCRMEmulator,
    crm: CCRMClient,
    rx: ExportReceiver,
    export_dir: Path,
    capture: tuple[list[dict[str, str]], int],
    location: str,
) -> None:
    seen, capture_port = capture
    emu_port = emu.url.rsplit(":", 1)[1]
    emu.exports.faults.redirect_to = location.replace("{capture}", str(capture_port)).replace(
        "{emu}", emu_port
    )
    job = await crm.export_people(["firstName"], receiver=rx)
    with pytest.raises(DownloadError, match="redirected away") as caught:
        await job.wait(timeout=5)
    assert caught.value.status == 302 and caught.value.reason == "redirect"
    assert seen == []  # nothing at all reached another origin, the key least of all
    assert [s for _, s in _only_export(emu).downloads] == [302]  # and no retry
    assert files_in(export_dir) == []


async def test_a_same_origin_redirect_is_followed_with_the_key_kept_at_home(
    emu: CCRMEmulator,
    crm: CCRMClient,
    rx: ExportReceiver,
    capture: tuple[list[dict[str, str]], int],
) -> None:
    seen, _ = capture
    emu.exports.faults.redirect_to = "/api/storage/download/{id}?redirected=1"
    job = await crm.export_people(["firstName"], receiver=rx)
    result = await job.wait(timeout=5)
    export = _only_export(emu)
    assert [s for _, s in export.downloads] == [302, 200]
    assert result.path.read_bytes() == emu.exports.file(export.id)
    assert seen == []


# -- 23: streaming, size cap, integrity ----------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_file_over_max_bytes_is_aborted_at_the_cap(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, chunked: bool
) -> None:
    emu.exports.faults.size = 11 * MiB
    emu.exports.faults.chunked = chunked
    async with ExportReceiver(directory=export_dir, max_bytes=10 * MiB) as rx:
        progress: list[int] = []
        job = await crm.export_people(["firstName", "lastName"], receiver=rx)
        job.add_progress_callback(lambda received, _: progress.append(received))
        with pytest.raises(DownloadError, match="too large") as caught:
            await job.wait(timeout=10)
    assert caught.value.reason == "too_large"
    assert max(progress, default=0) <= 10 * MiB
    if not chunked:
        assert progress == []  # refused from Content-Length, before any byte
    assert [s for _, s in _only_export(emu).downloads] == [200]  # not retried
    assert files_in(export_dir) == []


async def test_a_body_cut_short_of_content_length_is_incomplete(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, export_dir: Path
) -> None:
    emu.exports.faults.size = 256 * 1024
    emu.exports.faults.truncate_by = 1024
    job = await crm.export_people(["firstName"], receiver=rx)
    with pytest.raises(DownloadError, match="incomplete") as caught:
        await job.wait(timeout=10)
    assert caught.value.reason == "incomplete"
    downloads = _only_export(emu).downloads
    assert len(downloads) == FAST_RETRY.max_attempts  # a cut-off body is retried
    assert files_in(export_dir) == []


async def test_transient_download_failures_are_retried(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.download_failures = 2
    job = await crm.export_people(["firstName"], receiver=rx)
    result = await job.wait(timeout=5)
    export = _only_export(emu)
    assert [s for _, s in export.downloads] == [503, 503, 200]
    assert result.sha256 == hashlib.sha256(emu.exports.file(export.id)).hexdigest()


async def test_an_expired_link_is_not_retried_and_the_job_waits_for_another_callback(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    emu.exports.faults.link_ttl = 0
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job = await crm.export_people(["firstName"], receiver=rx, timeout=60)
        export = _only_export(emu)
        await eventually(lambda: export.downloads != [] and job.status is ExportStatus.PENDING)
        assert [s for _, s in export.downloads] == [404]  # not retried by the transport
        assert job.counters.requests == 1 and job.counters.retries == 0
        await clock.advance(60)
        with pytest.raises(ExportTimeout, match="expired"):
            await job
    assert files_in(export_dir) == []


@pytest.mark.parametrize(
    ("fmt", "encoding"), [("csv", "utf-8-sig"), ("csv_comma", "cp1250"), ("json", "utf-8")]
)
async def test_every_download_records_the_sha256_of_the_bytes_on_disk(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, fmt: str, encoding: str
) -> None:
    emu.exports.faults.format = fmt
    emu.exports.faults.encoding = encoding
    result = await (await crm.export_organisations(["name", "nip", "addresses"], receiver=rx))
    data = result.path.read_bytes()
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert data == emu.exports.file(_only_export(emu).id)
    assert file_mode(result.path) == 0o600
    assert result.path.parent == rx.directory
    assert result.path.suffix == ".json" if fmt == "json" else ".csv"


async def test_the_part_file_is_private_while_it_grows(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    emu.exports.faults.size = 2 * MiB
    emu.exports.faults.download_rate = 4 * MiB  # half a second
    old_umask = os.umask(0o022)
    try:
        async with ExportReceiver(directory=export_dir, shutdown_timeout=0) as rx:
            job = await crm.export_people(["firstName"], receiver=rx)
            await eventually(lambda: job.bytes_received > 0)
            (part,) = [name for name in files_in(export_dir) if name.endswith(".part")]
            assert file_mode(export_dir / part) == 0o600
            assert job.bytes_total == emu.exports.faults.size or job.bytes_total is not None
    finally:
        os.umask(old_umask)
    with pytest.raises(Exception, match="closed"):
        await job
    assert files_in(export_dir) == []  # closing removed the .part file


def test_a_large_download_does_not_grow_memory(export_dir: Path) -> None:
    """Item 23's 1 GiB case, scaled to CI: a 96 MiB export in a fresh process
    must grow its peak RSS by less than 64 MiB (so the body is never held)."""
    size = 96 * MiB
    run = subprocess.run(
        [sys.executable, str(HERE / "_rss_child.py"), str(export_dir), str(size)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["size"] >= size
    assert report["sha256_ok"] is True
    assert report["growth_mib"] < 64, report
    assert files_in(export_dir) == []


async def test_downloads_go_through_the_clients_own_session(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[object] = []
    real_get = aiohttp.ClientSession.get

    def spy(self: aiohttp.ClientSession, *args: Any, **kw: Any) -> Any:
        sessions.append(self)
        return real_get(self, *args, **kw)

    monkeypatch.setattr(aiohttp.ClientSession, "get", spy)
    await (await crm.export_people(["firstName"], receiver=rx))
    assert sessions == [crm.transport.session]


async def test_downloads_let_the_event_loop_run_between_chunks(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    # The loop runs other tasks while the file arrives: a ticker that only
    # yields must get turns between the download's progress reports.
    # (The longest stall, in milliseconds, is measured in benchmarks/export.py.)
    emu.exports.faults.size = 8 * MiB
    ticks = 0
    ticks_at_reports: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    tick = asyncio.create_task(ticker())
    try:
        job = await crm.export_people(["firstName"], receiver=rx)
        job.add_progress_callback(lambda done, total: ticks_at_reports.append(ticks))
        await job
    finally:
        tick.cancel()
        await asyncio.gather(tick, return_exceptions=True)
    assert len(ticks_at_reports) >= 8 * MiB // (1 << 18)  # one report per 256 KiB chunk at most
    advanced = sum(1 for a, b in itertools.pairwise(ticks_at_reports) if b > a)
    assert advanced >= len(ticks_at_reports) // 2


async def test_downloads_are_counted_by_the_transport_and_wait_for_the_gate(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.download_failures = 1
    emu.exports.faults.missing = True
    job = await crm.export_people(["firstName"], receiver=rx)
    export = _only_export(emu)
    async with gate_held(crm):  # every slot taken
        assert await emu.exports.deliver(export) == 200
        await eventually(lambda: job.status is ExportStatus.DOWNLOADING)
        for _ in range(20):
            await asyncio.sleep(0)
        assert export.downloads == []  # the download waits for a slot like any request
    result = await job.wait(timeout=10)
    assert [s for _, s in export.downloads] == [503, 200]
    assert (job.counters.requests, job.counters.retries) == (2, 1)
    assert result.size == len(emu.exports.file(export.id))
    assert crm.transport.gate.in_flight == 0
