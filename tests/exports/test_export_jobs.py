"""The job handle: deadlines and revocation (RELIABILITY 25), cancellation,
closing the receiver, restart from a SQLite store, column checks, run_export."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import tempfile
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

from ccrm_async import (
    AuthenticationError,
    CCRMClient,
    ExportCancelled,
    ExportTimeout,
    ValidationError,
)
from ccrm_async.exports import (
    ORGANISATION_COLUMNS,
    PEOPLE_COLUMNS,
    ExportReceiver,
    ExportStatus,
    SQLiteJobStore,
    run_export,
)
from ccrm_async.testing import CCRMEmulator

from clocks import ManualClock

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "http", "rx"]


def _good_body(emu: CCRMEmulator, export: Any) -> bytes:
    return orjson.dumps({"url": f"{emu.url}/api/storage/download/{export.id}"})


# -- 25: deadlines -------------------------------------------------------------


async def test_no_callback_by_the_default_deadline_times_out_and_revokes_the_token(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, http: aiohttp.ClientSession
) -> None:
    clock = ManualClock()
    emu.exports.faults.missing = True
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job = await crm.export_people(["firstName"], receiver=rx)  # default: 30 minutes
        assert job.deadline_at == pytest.approx(rx.now() + 1800)
        await clock.advance(1799)
        assert not job.done() and job.status is ExportStatus.PENDING
        await clock.advance(2)
        with pytest.raises(ExportTimeout):
            await job
        assert job.status is ExportStatus.TIMED_OUT
        (export,) = emu.exports.exports.values()
        late = await post(http, rx.url + path_of(export.push_url), _good_body(emu, export))
        assert late == await post(http, rx.url + "/elsewhere", b"{}")
        assert late[0] == 404
        assert rx.downloads_started == 0
        assert [r.path for r in emu.log] == ["/publicApi/people/export"]


async def test_a_late_callback_from_the_server_gets_404_and_nothing_is_fetched(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    emu.exports.faults.missing = True
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job = await crm.export_people(["firstName"], receiver=rx, timeout=60)
        await clock.advance(60)
        with pytest.raises(ExportTimeout):
            await job
        (export,) = emu.exports.exports.values()
        await emu.exports.deliver(export)  # the server's callback, after the deadline
        assert export.callbacks == [404]
        assert export.downloads == []


async def test_a_forged_callback_is_refused_and_the_job_waits_on(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    emu.exports.faults.forged = True
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job = await crm.export_people(["firstName"], receiver=rx, timeout=60)
        (export,) = emu.exports.exports.values()
        await eventually(lambda: export.callbacks != [])
        assert export.callbacks == [400]
        assert job.status is ExportStatus.PENDING
        await clock.advance(60)
        with pytest.raises(ExportTimeout):
            await job
    assert export.downloads == []


async def test_a_missing_callback_times_out(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    clock = ManualClock()
    emu.exports.faults.missing = True
    async with ExportReceiver(directory=export_dir, clock=clock) as rx:
        job = await crm.export_organisations(["name"], receiver=rx, timeout=0.1)
        await clock.advance(0.1)
        with pytest.raises(ExportTimeout, match="deadline"):
            await job


async def test_closing_the_receiver_cancels_pending_jobs_at_once(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    emu.exports.faults.missing = True
    rx = ExportReceiver(directory=export_dir)
    await rx.start()
    jobs = [await crm.export_people(["firstName"], receiver=rx) for _ in range(3)]
    waiters = [asyncio.create_task(job.wait()) for job in jobs]
    await asyncio.sleep(0)
    await rx.close()
    # Settled by close() itself, not by a timer: nothing is left to wait for.
    assert all(waiter.done() for waiter in waiters)
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, ExportCancelled) for o in outcomes)
    with pytest.raises(RuntimeError, match="not running"):
        await crm.export_people(["firstName"], receiver=rx)


# -- the handle ----------------------------------------------------------------


async def test_cancel_revokes_the_token(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, http: aiohttp.ClientSession
) -> None:
    emu.exports.faults.missing = True
    job = await crm.export_people(["firstName"], receiver=rx)
    assert job.cancel() is True
    assert job.cancel() is False
    with pytest.raises(ExportCancelled):
        await job
    assert job.status is ExportStatus.CANCELLED and job.done()
    (export,) = emu.exports.exports.values()
    status, _, _ = await post(http, rx.url + path_of(export.push_url), _good_body(emu, export))
    assert status == 404


async def test_wait_with_a_timeout_leaves_the_job_running(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.missing = True
    job = await crm.export_people(["firstName", "email1"], receiver=rx)
    with pytest.raises(TimeoutError):
        await job.wait(timeout=0.01)  # no callback can come: it is held back
    assert not job.done()
    (export,) = emu.exports.exports.values()
    await emu.exports.deliver(export)
    result = await job.wait(timeout=5)
    assert job.done() and job.status is ExportStatus.SUCCEEDED
    assert result.columns == ("firstName", "email1") and result.kind == "people"
    assert repr(job).startswith("ExportJob(id=") and "succeeded" in repr(job)


async def test_cancelling_a_waiter_does_not_cancel_the_job(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.exports.faults.missing = True
    job = await crm.export_people(["firstName"], receiver=rx)
    waiter = asyncio.create_task(job.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    (export,) = emu.exports.exports.values()
    await emu.exports.deliver(export)
    assert (await job.wait(timeout=5)).size > 0


async def test_one_receiver_serves_many_jobs_and_clients(
    emu: CCRMEmulator, rx: ExportReceiver
) -> None:
    async with (
        CCRMClient(base_url=emu.url, token=emu.token) as one,
        CCRMClient(base_url=emu.url, token=emu.token, local_addr="127.0.0.2") as two,
    ):
        jobs = [await one.export_people(["firstName"], receiver=rx) for _ in range(3)]
        jobs += [await two.export_organisations(["name"], receiver=rx) for _ in range(3)]
        results = await asyncio.gather(*jobs)
    assert len({r.path for r in results}) == 6
    assert [r.kind for r in results] == ["people"] * 3 + ["organisations"] * 3


# -- restart -------------------------------------------------------------------


async def test_a_restarted_service_completes_a_job_from_its_store(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, http: aiohttp.ClientSession
) -> None:
    store = export_dir / "jobs.sqlite"
    emu.exports.faults.missing = True
    async with ExportReceiver(directory=export_dir, store=store) as first:
        job = await crm.export_people(["firstName", "lastName"], receiver=first)
        early = await crm.export_people(["firstName"], receiver=first)
    with pytest.raises(ExportCancelled):
        await job  # this process's handle ends with the receiver...
    export, early_export = emu.exports.exports.values()
    # ...but the store keeps the jobs for the next process.
    async with ExportReceiver(directory=export_dir, store=store) as second:
        callback = second.url + path_of(early_export.push_url)
        # A callback may arrive before the job is resumed: it is kept.
        assert (await post(http, callback, _good_body(emu, early_export)))[0] == 200
        assert second.downloads_started == 0
        with pytest.raises(ValueError, match="client="):
            second.job(job.id)
        resumed = second.job(job.id, client=crm)
        assert resumed.status is ExportStatus.PENDING
        assert second.job(job.id) is resumed
        callback = second.url + path_of(export.push_url)
        assert (await post(http, callback, _good_body(emu, export)))[0] == 200
        result = await resumed.wait(timeout=5)
        assert result.path.read_bytes() == emu.exports.file(export.id)
        early_result = await second.job(early.id, client=crm).wait(timeout=5)
        assert early_result.size > 0
    async with ExportReceiver(directory=export_dir, store=store) as third:
        done = third.job(job.id)  # finished: no client needed
        assert done.done() and (await done).sha256 == result.sha256
        with pytest.raises(KeyError):
            third.job("00000000-0000-4000-8000-000000000000")
    assert files_in(export_dir) == sorted(["jobs.sqlite", result.path.name, early_result.path.name])


async def test_the_store_holds_no_token(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    store_path = export_dir / "jobs.sqlite"
    emu.exports.faults.missing = True
    store = SQLiteJobStore(store_path)
    async with ExportReceiver(directory=export_dir, store=store) as rx:
        await crm.export_people(["firstName"], receiver=rx)
    assert store.unfinished() != []  # the caller's store is left open for the caller
    store.close()
    (export,) = emu.exports.exports.values()
    token = export.push_url.rsplit("/", 1)[1]
    assert token.encode() not in store_path.read_bytes()


# -- columns and the request ---------------------------------------------------


async def test_unknown_columns_are_refused_before_sending(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    with pytest.raises(ValidationError, match="allowed: firstName") as caught:
        await crm.export_people(["firstName", "name"], receiver=rx)
    assert caught.value.status is None and caught.value.field == "columns"
    assert "customFields.<uuid>" in caught.value.errors["allowed"]
    with pytest.raises(ValidationError, match="unknown column"):
        await crm.export_organisations(["firstName"], receiver=rx)
    with pytest.raises(ValidationError, match="more than once"):
        await crm.export_people(["firstName", "firstName"], receiver=rx)
    with pytest.raises(ValidationError):
        await crm.export_people([], receiver=rx)
    with pytest.raises(ValidationError):
        await crm.export_people("firstName", receiver=rx)
    with pytest.raises(ValidationError):
        await crm.export_people(["customFields.not-a-uuid"], receiver=rx)
    assert emu.log == []
    assert set(PEOPLE_COLUMNS) != set(ORGANISATION_COLUMNS)
    assert "nip" in ORGANISATION_COLUMNS and "pesel" in PEOPLE_COLUMNS


async def test_the_request_carries_the_columns_and_the_push_url(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    columns = ["name", "customFields.0b1c2d3e-0000-4000-8000-000000000001", "people"]
    result = await (await crm.export_organisations(columns, receiver=rx))
    (export,) = emu.exports.exports.values()
    assert export.kind == "organisations" and export.columns == columns
    job_id = result.job_id
    assert export.push_url.startswith(f"{rx.url}/ccrm-export/{job_id}/")
    assert len(export.push_url.rsplit("/", 1)[1]) >= 22  # >= 128 bits of base64


async def test_a_failed_request_forgets_the_job(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    emu.faults.script("/publicApi/people/export", ["401"])
    with pytest.raises(AuthenticationError):
        await crm.export_people(["firstName"], receiver=rx)
    assert rx.pending_jobs == 0


# -- run_export (what the command line calls) ----------------------------------


async def test_run_export_end_to_end(emu: CCRMEmulator, crm: CCRMClient, export_dir: Path) -> None:
    emu.exports.faults.unquoted_key = True  # the callback exactly as the seed prints it
    target = export_dir / "people.csv"
    progress: list[tuple[int, int | None]] = []
    result = await _run_export_here(crm, target, progress)
    (export,) = emu.exports.exports.values()
    assert result.path == target
    assert target.read_bytes() == emu.exports.file(export.id)  # byte for byte
    assert progress and progress[-1][0] == result.size
    assert files_in(export_dir) == ["people.csv"]
    people = [p async for p in result.people()]
    assert len(people) == emu.exports.faults.people
    assert people[0].first_name == emu.exports.records("people")[0]["firstName"]


async def _run_export_here(
    crm: CCRMClient, target: Path, progress: list[tuple[int, int | None]]
) -> Any:
    # Pick a free port first, so that public_url can name it, as a CLI user would.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return await run_export(
        crm,
        "people",
        ["firstName", "lastName", "phone1"],
        listen=("127.0.0.1", port),
        public_url=f"http://127.0.0.1:{port}",
        path=target,
        timeout=5,
        progress=lambda done, total: progress.append((done, total)),
    )


async def test_run_export_times_out_and_leaves_no_file(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    emu.exports.faults.missing = True
    clock = ManualClock()
    running = asyncio.create_task(
        run_export(
            crm,
            "organisations",
            ["name"],
            listen=("127.0.0.1", 0),
            public_url="http://127.0.0.1:9",
            path=export_dir / "orgs.csv",
            timeout=30,
            clock=clock,
        )
    )
    await eventually(lambda: clock.sleepers > 0)  # the job's deadline timer
    await clock.advance(30)
    with pytest.raises(ExportTimeout):
        await running
    assert files_in(export_dir) == []


async def test_a_job_resumed_after_its_deadline_times_out(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path
) -> None:
    store = export_dir / "jobs.sqlite"
    emu.exports.faults.missing = True
    clock = ManualClock()
    async with ExportReceiver(directory=export_dir, store=store, clock=clock) as first:
        job = await crm.export_people(["firstName"], receiver=first, timeout=20)
    clock.t += 21  # the service was down past the job's deadline
    async with ExportReceiver(directory=export_dir, store=store, clock=clock) as second:
        resumed = second.job(job.id, client=crm)
        with pytest.raises(ExportTimeout):
            await resumed
    async with ExportReceiver(directory=export_dir, store=store) as third:
        assert third.job(job.id).status is ExportStatus.TIMED_OUT


async def test_the_default_directory_is_private_and_in_the_temp_dir(
    emu: CCRMEmulator, crm: CCRMClient, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(export_dir))
    async with ExportReceiver() as rx:
        result = await (await crm.export_people(["firstName"], receiver=rx))
    directory = export_dir / f"ccrm-exports-{os.getuid()}"
    assert result.path.parent == directory
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert result.path.name == f"ccrm-people-{result.job_id}.csv"
