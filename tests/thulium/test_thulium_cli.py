"""``thulium serve`` and ``thulium build``: the parser, the runners in-process, and
``serve`` end to end in a subprocess (``python -m ccrm_async.thulium.cli``)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _thulium_fixtures import log_scan, scan_problems  # noqa: F401

from ccrm_async import CCRMClient
from ccrm_async.testing import CCRMEmulator
from ccrm_async.thulium import ContactDirectory
from ccrm_async.thulium.cli import (
    BASIC_PASSWORD_ENV,
    PATH_TOKEN_ENV,
    add_thulium_commands,
    build_parser,
    demo_lookup,
    load_custom_field_names,
    run_build,
    run_serve,
    run_thulium,
)

from conftest import SAMPLES

PEOPLE = str(SAMPLES / "thulium_people_semicolon_bom.csv")
ORGANISATIONS = str(SAMPLES / "thulium_organisations_comma.csv")
REPO = Path(__file__).resolve().parents[2]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["thulium", *argv])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the parser ---------------------------------------------------------------------------


def test_the_parser() -> None:
    args = parse(
        "serve", "--contacts", PEOPLE, "--contacts", ORGANISATIONS, "--listen", "127.0.0.1:0"
    )
    assert args.command == "thulium" and args.thulium_command == "serve"
    assert args.contacts == [PEOPLE, ORGANISATIONS]
    assert args.listen == ("127.0.0.1", 0) and args.path == "/customers.json"
    assert args.max_numbers_per_minute == 600 and not args.expose_pesel
    args = parse("build", "--out", "d.sqlite", "--listen", "[::1]:8080", "--account", "acme")
    assert args.listen == ("::1", 8080) and args.account == "acme"
    with pytest.raises(SystemExit):
        parse("serve", "--contacts", PEOPLE, "--listen", "nope")
    with pytest.raises(SystemExit):
        parse("serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0", "--fields", "shoe")


def test_the_main_parser_can_bring_its_own_connection_options_and_client() -> None:
    made: list[argparse.Namespace] = []

    def connection_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--account")
        parser.add_argument("--base-url")
        parser.add_argument("--egress-ip")
        parser.add_argument("--retries", type=int, default=5)

    def make_client(args: argparse.Namespace) -> Any:
        made.append(args)
        return "client"

    main = argparse.ArgumentParser(prog="ccrm-async")
    sub = main.add_subparsers(dest="command", required=True)
    add_thulium_commands(sub, connection_options=connection_options, make_client=make_client)
    args = main.parse_args(
        ["thulium", "build", "--out", "x", "--listen", "h:1", "--base-url", "http://e"]
    )
    assert (args.base_url, args.retries) == ("http://e", 5)
    assert args.thulium_make_client(args) == "client" and made == [args]


def test_custom_field_names_file(tmp_path: Path) -> None:
    as_object = tmp_path / "names.json"
    as_object.write_text('{"u1": "Status", "u2": null}')
    assert load_custom_field_names(as_object) == {"u1": "Status"}
    as_list = tmp_path / "fields.json"  # what "ccrm-async fields list --json" prints
    as_list.write_text('[{"uuid": "u1", "name": "Status", "type": "text"}, {"uuid": "u2"}]')
    assert load_custom_field_names(as_list) == {"u1": "Status"}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["serve", "--listen", "127.0.0.1:0"], {}, "--contacts"),
        (
            ["serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0", "--basic-auth-user", "t"],
            {},
            BASIC_PASSWORD_ENV,
        ),
        (
            ["serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0", "--path-token"],
            {},
            PATH_TOKEN_ENV,
        ),
        (
            ["serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0", "--refresh-every", "60"],
            {},
            "--public-url",
        ),
    ],
)
async def test_usage_errors_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(BASIC_PASSWORD_ENV, raising=False)
    monkeypatch.delenv(PATH_TOKEN_ENV, raising=False)
    assert await run_thulium(parse(*argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1


# -- in-process -----------------------------------------------------------------------------


async def _serve_in_background(args: argparse.Namespace) -> asyncio.Task[int]:
    """Start ``run_serve`` and wait until it listens."""
    ready = asyncio.Event()
    task = asyncio.create_task(run_serve(args, ready=ready))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=10, return_when="FIRST_COMPLETED")
    if task in done:
        waiter.cancel()
        raise AssertionError(f"serve ended early: {task.result()}")
    return task


async def test_serve_in_process_from_files_then_from_the_saved_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    saved = tmp_path / "directory.sqlite"
    monkeypatch.setenv(PATH_TOKEN_ENV, "p" * 24)
    args = parse(
        "serve",
        "--contacts", PEOPLE,
        "--organisations", ORGANISATIONS,
        "--directory", str(saved),
        "--listen", f"127.0.0.1:{port}",
        "--path-token",
    )  # fmt: skip
    task = await _serve_in_background(args)
    out = capsys.readouterr().out
    assert f"at http://127.0.0.1:{port}/<token>/customers.json" in out
    assert "p" * 24 not in out
    assert "3 people, 2 organisations" in out
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/{'p' * 24}/customers.json?phone_number=500100105"
        async with http.get(url) as resp:
            assert resp.status == 200
            assert (await resp.json(content_type=None))["surname"] == "Demo, sp. z o.o."
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # A restart from the saved directory, no export files needed.
    args = parse("serve", "--directory", str(saved), "--listen", f"127.0.0.1:{port}")
    task = await _serve_in_background(args)
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/customers.json?phone_number=500100101"
        async with http.get(url) as resp:
            assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=10, seed=3) as emulator:
        yield emulator


async def test_build_exports_from_ccrm(
    emu: CCRMEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CCRM_TOKEN", emu.token)
    out = tmp_path / "directory.sqlite"
    args = parse("build", "--out", str(out), "--listen", "127.0.0.1:0", "--base-url", emu.url)
    assert await run_build(args) == 0
    assert capsys.readouterr().out.startswith(f"built {out}: 40 people, 15 organisations")
    assert sorted(os.listdir(tmp_path)) == ["directory.sqlite"]
    directory = ContactDirectory.open(out)
    assert directory.lookup(emu.exports.records("people")[0]["phone1"]) is not None
    assert directory.lookup(emu.exports.records("people")[0]["phone1"]).pesel is None  # type: ignore[union-attr]
    directory.close()


async def test_serve_refreshes_from_ccrm_periodically(
    emu: CCRMEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCRM_TOKEN", emu.token)
    port = free_port()
    args = parse(
        "serve",
        "--contacts", PEOPLE,
        "--listen", f"127.0.0.1:{port}",
        "--refresh-every", "0.2",
        "--public-url", f"http://127.0.0.1:{port}",
        "--base-url", emu.url,
    )  # fmt: skip
    task = await _serve_in_background(args)
    organisation_number = emu.exports.records("organisations")[0]["phone1"]
    query = f"http://127.0.0.1:{port}/customers.json?phone_number="
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(10):
            while True:  # the sample's numbers first, then CCRM's after a refresh
                async with http.get(query + "%2B" + organisation_number[1:]) as resp:
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.05)
        async with http.get(query + "500100101") as resp:
            assert resp.status == 404  # the export replaced the sample file's contacts
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert {e.kind for e in emu.exports.exports.values()} == {"people", "organisations"}


# -- end to end, in a subprocess ---------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [["-m", "ccrm_async"], ["-m", "ccrm_async.thulium.cli"]],
    ids=["ccrm-async", "thulium.cli"],
)
def test_serve_end_to_end_in_a_subprocess(tmp_path: Path, entry: list[str]) -> None:
    # Serve needs no CCRM account: no CCRM_* variable reaches the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCRM_")}
    env.update({BASIC_PASSWORD_ENV: "s3cret-pass", "PYTHONPATH": str(REPO)})
    proc = subprocess.Popen(
        [
            sys.executable, *entry, "thulium", "serve",
            "--contacts", PEOPLE, "--contacts", ORGANISATIONS,
            "--listen", "127.0.0.1:0", "--path", "/api/customers.json",
            "--basic-auth-user", "thulium", "--access-log",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    watchdog = threading.Timer(30.0, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        watchdog.cancel()
        assert line.startswith("serving 3 people, 2 organisations"), line
        url = line.rsplit(" at ", 1)[1].strip()
        assert url.endswith("/api/customers.json")

        async def ask() -> list[tuple[int, Any]]:
            auth = "Basic " + base64.b64encode(b"thulium:s3cret-pass").decode()
            answers = []
            async with aiohttp.ClientSession() as http:
                for number, headers in (
                    ("500100101", {"Authorization": auth}),
                    ("500100101", {}),
                    ("500100199", {"Authorization": auth}),
                ):
                    async with http.get(url, params={"phone_number": number}, headers=headers) as r:
                        answers.append((r.status, r.headers["Content-Type"]))
            return answers

        answers = asyncio.run(ask())
        assert answers == [
            (200, "application/json;charset=utf-8"),
            (401, "application/json;charset=utf-8"),
            (404, "application/json;charset=utf-8"),
        ]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped; answered 3 lookups (1x200, 1x401, 1x404)" in out
    assert "Traceback" not in err
    assert "*******101" in err and "500100101" not in err  # the access log, masked
    records = [_line_record(line) for line in err.splitlines()]
    assert scan_problems(records) == []


def _line_record(line: str) -> logging.LogRecord:
    message = TIMESTAMP.sub("", line)  # the date is not a phone number
    return logging.LogRecord("stderr", logging.INFO, "", 0, message, None, None)


async def test_demo_lookup(emu: CCRMEmulator) -> None:
    lines: list[str] = []
    async with CCRMClient(base_url=emu.url, token=emu.token) as crm:
        await demo_lookup(crm, out=lines.append)
    assert lines[0].startswith("thulium lookup: 40 people, 15 organisations")
    assert lines[1].startswith("  GET /customers.json?phone_number=*") and "-> 200: " in lines[1]
    assert "surname" in lines[1]
    assert lines[2].endswith("-> 404: not found")
    assert scan_problems([_line_record(line) for line in lines]) == []
