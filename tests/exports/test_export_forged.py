"""A leaked token cannot end a job, and never reaches a log.

Whoever holds a job's token can post a well-formed callback naming another
file: its download is refused, the job waits on (deadlines on a manual clock),
and CCRM's genuine callback still completes it."""

from __future__ import annotations

import asyncio
import logging
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
    files_in,
    gate_held,
    http,
    path_of,
)

from ccrm_async import CCRMClient, DownloadError, ExportTimeout
from ccrm_async.exports import MAX_TRIES, ExportReceiver, ExportStatus
from ccrm_async.testing import CCRMEmulator

from clocks import ManualClock

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "http"]

FORGED_ID = "00000000-0000-4000-8000-00000000000f"


async def _job(emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver) -> tuple[Any, Any]:
    emu.exports.faults.missing = True  # the test delivers the callbacks itself
    job = await crm.export_people(["firstName", "lastName"], receiver=rx, timeout=600)
    (export,) = emu.exports.exports.values()
    await eventually(lambda: export.ready_at is not None)
    return job, export


async def test_a_forged_callback_then_the_genuine_one_gets_the_genuine_file(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job, export = await _job(emu, crm, rx)
        # The token holder's callback: well-formed, on the API origin, another id.
        assert await emu.exports.deliver(export, file_id=FORGED_ID) == 200
        await eventually(lambda: job.tries == 1 and job.status is ExportStatus.PENDING)
        await clock.advance(300)  # half the deadline later, still waiting
        assert not job.done()
        assert await emu.exports.deliver(export) == 200  # CCRM's own
        result = await job.wait(timeout=10)
    assert result.path.read_bytes() == emu.exports.file(export.id)
    assert [status for _, status in export.downloads] == [200]  # one download succeeded
    assert job.tries == 2 and job.status is ExportStatus.SUCCEEDED
    assert files_in(export_dir) == [result.path.name]


async def test_the_genuine_callback_during_a_forged_download_is_queued_not_refused(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    async with ExportReceiver(directory=export_dir, clock=ManualClock()) as rx:
        job, export = await _job(emu, crm, rx)
        async with gate_held(crm):  # the forged download waits at the gate
            assert await emu.exports.deliver(export, file_id=FORGED_ID) == 200
            assert job.status is ExportStatus.DOWNLOADING
            assert await emu.exports.deliver(export) == 200  # queued behind it
        result = await job.wait(timeout=10)
    assert result.path.read_bytes() == emu.exports.file(export.id)
    assert [status for _, status in export.downloads] == [200]
    assert job.tries == 2


async def test_every_try_refused_fails_the_job_after_max_tries(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    async with ExportReceiver(directory=export_dir, clock=ManualClock()) as rx:
        job, export = await _job(emu, crm, rx)
        for n in range(MAX_TRIES):
            forged = f"00000000-0000-4000-8000-{n:012d}"
            assert await emu.exports.deliver(export, file_id=forged) == 200
            await eventually(lambda n=n: job.tries == n + 1 and job.status != "downloading")
        with pytest.raises(DownloadError, match=f"after {MAX_TRIES} tries") as caught:
            await job
        assert caught.value.status == 404
        assert await emu.exports.deliver(export) == 404  # the token is dead
    assert job.status is ExportStatus.FAILED and MAX_TRIES == 5


async def test_a_refusal_after_the_deadline_times_the_job_out(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job, export = await _job(emu, crm, rx)
        async with gate_held(crm):
            assert await emu.exports.deliver(export, file_id=FORGED_ID) == 200
            await clock.advance(601)  # the deadline passes while the download waits
            assert job.status is ExportStatus.DOWNLOADING  # a running download is not cut
        with pytest.raises(ExportTimeout, match="not found"):
            await job.wait(timeout=10)


async def test_an_oversized_request_line_logs_no_token(
    emu: CCRMEmulator,
    crm: CCRMClient,
    export_dir: Path,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp.* included
    for name in ("aiohttp.server", "aiohttp.access", "aiohttp.web", "aiohttp.internal"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    async with ExportReceiver(directory=export_dir) as rx:
        job, export = await _job(emu, crm, rx)
        path = path_of(export.push_url)
        job_id, token = path.rsplit("/", 2)[1:]
        assert rx.url is not None
        host, port = rx.url.removeprefix("http://").split(":")
        for target in (
            f"{path}?{'x' * 8200}",  # the line is over 8190 bytes
            f"{path}/{'y' * 9000}",
            f"{path}{'%' * 9000}",
        ):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"POST {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            head = await reader.read(200)
            writer.close()
            await writer.wait_closed()
            assert head.startswith((b"HTTP/1.1 400", b"HTTP/1.1 414", b"HTTP/1.0 400"))
        assert not job.done()
    records = caplog.records
    # aiohttp's complaint was logged (scrubbed), and nothing logged holds the token.
    assert [r.name for r in records if "Error handling request" in r.getMessage()] == [
        "ccrm_async.exports.http"
    ] * 3
    for record in records:
        text = record.getMessage() + str(record.exc_info) + str(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            text += repr(record.exc_info[1]) + str(record.exc_info[1])
        assert token not in text, record.name
        assert job_id not in text or record.name.startswith("ccrm_async"), record.name


async def test_callbacks_kept_for_a_job_not_yet_resumed_keep_their_order(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    store = export_dir / "jobs.sqlite"
    async with ExportReceiver(directory=export_dir, store=store) as first:
        job, export = await _job(emu, crm, first)
    # The next process is up, the job not yet resumed: both callbacks are kept.
    async with ExportReceiver(directory=export_dir, store=store) as second:
        second_url = second.url
        assert second_url is not None
        export.push_url = export.push_url.replace(first.url or "", second_url)
        assert await emu.exports.deliver(export, file_id=FORGED_ID) == 200
        assert await emu.exports.deliver(export) == 200
        assert second.downloads_started == 0
        resumed = second.job(job.id, client=crm)
        result = await resumed.wait(timeout=10)
    assert result.path.read_bytes() == emu.exports.file(export.id)
    assert resumed.tries == 2 and [s for _, s in export.downloads] == [200]
    assert sorted(files_in(export_dir)) == sorted(["jobs.sqlite", result.path.name])
