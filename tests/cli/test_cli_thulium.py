"""``thulium serve`` and ``thulium build``: the parser, the runners in-process, and
``serve`` end to end in a subprocess (``python -m ccrm_async``)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccrm_async import CCRMClient
from ccrm_async.cli import build_parser, main
from ccrm_async.cli._common import CommandError, UsageError
from ccrm_async.cli._thulium import (
    BASIC_PASSWORD_ENV,
    PATH_TOKEN_ENV,
    demo_lookup,
    load_custom_field_names,
    run_build,
    run_serve,
)
from ccrm_async.testing import CCRMEmulator
from ccrm_async.thulium import ContactDirectory, DirectoryError

from conftest import SAMPLES

PEOPLE = str(SAMPLES / "thulium_people_semicolon_bom.csv")
ORGANISATIONS = str(SAMPLES / "thulium_organisations_comma.csv")
REPO = Path(__file__).resolve().parents[2]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
LONG_NUMBER = re.compile(r"\d{9,}")


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
    assert args.retries == 5 and not args.metrics
    args = parse(
        "build", "--out", "d.sqlite", "--listen", "[::1]:8080", "--account", "acme",
        "--retries", "2", "--debug",
    )  # fmt: skip
    assert args.listen == ("::1", 8080) and args.account == "acme"
    assert args.retries == 2 and args.debug and not args.overwrite


SERVE = ["serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0"]
BUILD = ["build", "--out", "d.sqlite", "--listen", "127.0.0.1:0"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--contacts", PEOPLE, "--listen", "nope"], "HOST:PORT"),
        ([*SERVE, "--fields", "shoe"], "shoe"),
        ([*SERVE, "--allow-ip", "banana"], "banana"),
        ([*SERVE, "--refresh-every", "60", "--public-url", "callback.example.com"], "http(s) URL"),
        ([*SERVE, "--refresh-every", "0"], "more than 0"),
        ([*SERVE, "--egress-ip", "banana"], "not an IP"),
        ([*SERVE, "--max-numbers-per-minute", "-1"], "0 (no limit) or a whole number"),
        (["build", "--out", "d.csv", "--listen", "127.0.0.1:0"], ".sqlite"),
        ([*BUILD, "--public-url", "x"], "http(s) URL"),
        ([*BUILD, "--retries", "0"], "at least 1"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["thulium", *argv]) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert "unexpected" not in err


def test_custom_field_names_file(tmp_path: Path) -> None:
    as_object = tmp_path / "names.json"
    as_object.write_text('{"u1": "Status", "u2": null}')
    assert load_custom_field_names(as_object) == {"u1": "Status"}
    as_list = tmp_path / "fields.json"  # what "ccrm-async fields list --json" prints
    as_list.write_text('[{"uuid": "u1", "name": "Status", "type": "text"}, {"uuid": "u2"}]')
    assert load_custom_field_names(as_list) == {"u1": "Status"}
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(CommandError, match=re.escape(str(broken))):
        load_custom_field_names(broken)
    with pytest.raises(CommandError, match=re.escape(str(tmp_path / "missing.json"))):
        load_custom_field_names(tmp_path / "missing.json")


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
        (
            ["serve", "--contacts", PEOPLE, "--listen", "127.0.0.1:0", "--refresh-every", "60",
             "--public-url", "http://127.0.0.1:1", "--base-url", "http://127.0.0.1:1"],
            {},
            "CCRM_TOKEN",
        ),
        (
            ["build", "--out", "d.sqlite", "--listen", "127.0.0.1:0",
             "--base-url", "http://127.0.0.1:1"],
            {},
            "CCRM_TOKEN",
        ),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in (BASIC_PASSWORD_ENV, PATH_TOKEN_ENV, "CCRM_TOKEN", "CCRM_ACCOUNT", "CCRM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["thulium", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == []


# -- refusing to serve nothing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("budget.csv", b"item;amount\nrent;1200\n", "cannot tell whether"),
        ("empty.csv", b"", "no contacts"),
        ("people.csv", b"firstName;lastName;phone1\n", "no contacts"),
        ("garbage.xlsx", b"PK\x03\x04" + b"\x00" * 64, "not a CCRM export file"),
        ("unrelated.json", b'{"data": 5}', "not a CCRM export file"),
    ],
)
def test_serve_refuses_files_without_contacts(
    tmp_path: Path,
    name: str,
    content: bytes,
    reason: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    saved = tmp_path / "directory.sqlite"
    argv = ["thulium", "serve", "--contacts", PEOPLE, "--contacts", str(bad)]
    argv += ["--directory", str(saved), "--listen", "127.0.0.1:0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and str(bad) in error_lines[0] and reason in error_lines[0], err
    assert "serving" not in err
    assert not saved.exists()  # nothing built from it


def test_serve_refuses_a_file_given_as_people_that_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "budget.csv"
    bad.write_bytes(b"item;amount\nrent;1200\n")
    assert main(["thulium", "serve", "--people", str(bad), "--listen", "127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "none of its columns" in err


def test_serve_refuses_an_empty_directory_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sqlite"
    ContactDirectory.build(path=empty).close()
    assert main(["thulium", "serve", "--directory", str(empty), "--listen", "127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no phone numbers in") and str(empty) in err


def test_serve_never_builds_over_an_unrelated_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "mine.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE budget (item TEXT)")
    conn.close()
    before = other.read_bytes()
    argv = ["thulium", "serve", "--contacts", PEOPLE, "--directory", str(other)]
    assert main([*argv, "--listen", "127.0.0.1:0"]) == 2
    assert str(other) in capsys.readouterr().err
    assert other.read_bytes() == before


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
    captured = capsys.readouterr()
    out = captured.err  # what the command says goes to stderr, as every command's
    assert captured.out == ""
    assert f"at http://127.0.0.1:{port}/<token>/customers.json" in out
    assert "p" * 24 not in out
    assert "3 people, 2 organisations" in out
    assert "warning" not in out  # loopback
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/{'p' * 24}/customers.json?phone_number=500100105"
        async with http.get(url) as resp:
            assert resp.status == 200
            assert (await resp.json(content_type=None))["surname"] == "Demo, sp. z o.o."
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "stopped; answered 1 lookups (1x200)" in capsys.readouterr().err

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
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"built {out}: 40 people, 15 organisations")
    assert sorted(os.listdir(tmp_path)) == ["directory.sqlite"]
    directory = ContactDirectory.open(out)
    assert directory.lookup(emu.exports.records("people")[0]["phone1"]) is not None
    assert directory.lookup(emu.exports.records("people")[0]["phone1"]).pesel is None  # type: ignore[union-attr]
    directory.close()

    # Its own earlier output: refused without --overwrite, replaced with it.
    exports = len(emu.exports.exports)
    args = parse("build", "--out", str(out), "--listen", "127.0.0.1:0", "--base-url", emu.url)
    with pytest.raises(UsageError, match="pass --overwrite"):
        await run_build(args)
    assert len(emu.exports.exports) == exports  # refused before asking CCRM for anything
    before = out.stat().st_ino
    args = parse("build", "--out", str(out), "--listen", "127.0.0.1:0", "--base-url", emu.url,
                 "--overwrite")  # fmt: skip
    assert await run_build(args) == 0
    assert out.stat().st_ino != before  # a new file renamed over the old one
    ContactDirectory.open(out).close()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("mydb.sqlite", "sqlite"),
        ("notes.sqlite", "text"),
        ("empty.sqlite", "empty"),
    ],
)
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
async def test_build_refuses_a_file_it_did_not_write(
    emu: CCRMEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    make: str,
    overwrite: bool,
) -> None:
    """issue 10: an unrelated SQLite database, a text file, an empty file: exit 2,
    byte for byte as before, and not one request to CCRM."""
    monkeypatch.setenv("CCRM_TOKEN", emu.token)
    out = tmp_path / name
    if make == "sqlite":
        with sqlite3.connect(out) as conn:
            conn.execute("CREATE TABLE accounts (id INTEGER, balance REAL)")
            conn.execute("INSERT INTO accounts VALUES (1, 100.5)")
        conn.close()
    elif make == "text":
        out.write_text("date;amount\n2026-01-01;12\n")
    else:
        out.touch()
    before = out.read_bytes()
    argv = ["build", "--out", str(out), "--listen", "127.0.0.1:0"]
    argv += ["--base-url", emu.url, *(["--overwrite"] if overwrite else [])]
    with pytest.raises(UsageError) as caught:  # exit status 2
        await run_build(parse(*argv))
    assert str(out) in str(caught.value) and "not a contact directory" in str(caught.value)
    assert out.read_bytes() == before
    assert emu.log == []
    assert sorted(os.listdir(tmp_path)) == [name]


def test_the_library_never_builds_over_an_unrelated_file(tmp_path: Path) -> None:
    other = tmp_path / "data.sqlite"
    other.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    before = other.read_bytes()
    with pytest.raises(DirectoryError, match="not a contact directory"):
        ContactDirectory.build(path=other)
    assert other.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["data.sqlite"]


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


def test_serve_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    # Serve needs no CCRM account: no CCRM_* variable reaches the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCRM_")}
    env.update({BASIC_PASSWORD_ENV: "s3cret-pass", "PYTHONPATH": str(REPO)})
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "ccrm_async", "thulium", "serve",
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
        assert proc.stderr is not None
        line = proc.stderr.readline()
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
    assert proc.returncode == 143, err
    assert out == ""
    assert "stopped; answered 3 lookups (1x200, 1x401, 1x404)" in err
    assert err.splitlines()[-1] == "error: terminated"
    assert "Traceback" not in err
    assert "*******101" in err and "500100101" not in err  # the access log, masked
    assert _long_numbers(err.splitlines()) == []


def _long_numbers(lines: list[str]) -> list[str]:
    """Lines with a run of 9+ digits (a phone number), the log's timestamp aside."""
    return [line for line in lines if LONG_NUMBER.search(TIMESTAMP.sub("", line))]


async def test_demo_lookup(emu: CCRMEmulator) -> None:
    lines: list[str] = []
    async with CCRMClient(base_url=emu.url, token=emu.token) as crm:
        await demo_lookup(crm, out=lines.append)
    assert lines[0].startswith("thulium lookup: 40 people, 15 organisations")
    assert lines[1].startswith("  GET /customers.json?phone_number=*") and "-> 200: " in lines[1]
    assert "surname" in lines[1]
    assert lines[2].endswith("-> 404: not found")
    assert _long_numbers(lines) == []


@pytest.mark.parametrize("guarded", [False, True], ids=["open", "allow-ip"])
async def test_banner_shows_the_real_address_and_warns_when_open_to_the_network(
    capsys: pytest.CaptureFixture[str], guarded: bool
) -> None:
    argv = ["serve", "--contacts", PEOPLE, "--listen", "0.0.0.0:0"]
    if guarded:
        argv += ["--allow-ip", "127.0.0.1"]
    task = await _serve_in_background(parse(*argv))
    err = capsys.readouterr().err
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    banner = err.splitlines()[0]
    assert re.search(r" at http://0\.0\.0\.0:\d+/customers\.json$", banner), banner
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    if guarded:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert "listening on 0.0.0.0 with no access control" in warnings[0]
        assert "phone_number" in warnings[0] and "3 contacts (personal data)" in warnings[0]
        assert "--allow-ip" in warnings[0]
