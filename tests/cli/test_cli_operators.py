"""The command line as cron and operators run it: a proxy, progress lines
without a terminal, a JSON summary, the Excel CSV dialect, configuration errors."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _cli_helpers import TOKEN, assert_clean, cli_env, expected_calls, pull_args, run_cli
from yarl import URL

from ccrm_async.sinks import PullQuery, csv_columns
from ccrm_async.testing import CCRMEmulator

CALLS = "/publicApi/callHistory"
QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 2, 23, 59, 59), window=timedelta(days=1))


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=600, days=2, seed=15) as emu:
        yield emu


class ForwardingProxy:
    """A small HTTP forward proxy on 127.0.0.1 that counts what passes through.

    Each client connection carries one request in absolute form
    (``GET http://127.0.0.1:PORT/path HTTP/1.1``); it is sent on to its origin,
    which must be on 127.0.0.1, with ``Connection: close``, and the answer is
    piped back until the origin closes.
    """

    def __init__(self) -> None:
        self.seen: list[str] = []  # "METHOD /path" of every request forwarded
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> ForwardingProxy:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ")
            url = URL(target)
            assert url.host == "127.0.0.1", url  # tests never leave the loopback
            headers = [
                line
                for line in lines
                if line and not line.lower().startswith(("connection:", "proxy-connection:"))
            ]
            length = sum(
                int(line.split(":", 1)[1])
                for line in headers
                if line.lower().startswith("content-length:")
            )
            body = await reader.readexactly(length) if length else b""
            self.seen.append(f"{method} {url.path}")
            up_reader, up_writer = await asyncio.open_connection(url.host, url.port)
            up_writer.write(
                f"{method} {url.raw_path_qs} HTTP/1.1\r\n".encode()
                + "\r\n".join([*headers, "Connection: close"]).encode("latin-1")
                + b"\r\n\r\n"
                + body
            )
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
            up_writer.close()
            await up_writer.wait_closed()
        finally:
            writer.close()
            await writer.wait_closed()


async def test_a_pull_goes_through_the_proxy(emu: CCRMEmulator, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    async with ForwardingProxy() as proxy:
        result = await run_cli(*pull_args(emu, QUERY, out, "--proxy", proxy.url, "--notes"))
    assert result.code == 0, result.stderr
    assert_clean(result)
    assert len(out.read_text().splitlines()) == 600
    assert len(proxy.seen) == len(emu.log) > 2  # every request, pages and notes
    assert {entry.split(" ")[1] for entry in proxy.seen} == {CALLS, "/publicApi/notes"}


async def test_an_export_and_its_download_go_through_the_environments_proxy(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "people.csv"
    port = _free_port()
    args = ["export", "people", "--base-url", emu.url, "--columns", "firstName,phone1"]
    args += ["--listen", f"127.0.0.1:{port}", "--public-url", f"http://127.0.0.1:{port}"]
    args += ["--out", str(out), "--summary", "json"]
    async with ForwardingProxy() as proxy:
        # No --proxy: HTTP_PROXY is the one for an http:// API (HTTPS_PROXY for https://).
        env = cli_env(http_proxy=proxy.url, NO_PROXY="example.invalid")
        result = await run_cli(*args, env=env)
    assert result.code == 0, result.stderr
    assert_clean(result)
    (export,) = emu.exports.exports.values()
    assert out.read_bytes() == emu.exports.file(export.id)
    assert proxy.seen == [
        "POST /publicApi/people/export",
        f"GET /api/storage/download/{export.id}",
    ]
    summary = json.loads(result.stdout)
    assert summary["size"] == out.stat().st_size and summary["output"] == str(out)


async def test_no_proxy_names_hosts_that_go_direct(emu: CCRMEmulator, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    async with ForwardingProxy() as proxy:
        env = cli_env(HTTP_PROXY=proxy.url, no_proxy="localhost,127.0.0.0/8")
        result = await run_cli(*pull_args(emu, QUERY, out), env=env)
    assert result.code == 0, result.stderr
    assert proxy.seen == [] and len(emu.log) > 0


async def test_progress_log_lines_and_a_json_summary_without_a_terminal(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    """stderr is a pipe: ``auto`` means log lines; stdout holds one JSON object."""
    out = tmp_path / "calls.jsonl"
    args = pull_args(emu, QUERY, out, "--progress-every", "0.000001", "--summary", "json")
    result = await run_cli(*args)
    assert result.code == 0, result.stderr
    assert_clean(result)
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("progress: ") for line in lines), lines
    assert lines[-1].startswith("progress: ") and " of 2 windows, " in lines[-1]
    for word in ("calls", "notes", "requests", "retries", "rate-limit pauses", "calls/s"):
        assert word in lines[-1]
    summary = json.loads(result.stdout)  # the whole of stdout: one object
    assert summary["state"] == "done" and summary["output"] == str(out)
    assert summary["calls"] == 600 == len(out.read_text().splitlines())
    assert summary["windows"] == summary["finished"] == 2
    assert summary["requests"] == len(emu.log) and summary["retries"] == 0
    assert summary["notes"] == summary["rate_limit_pauses"] == summary["rejected"] == 0
    assert isinstance(summary["elapsed"], float)


async def test_excel_dialect_reads_back_with_semicolons_and_a_bom(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "calls.csv"
    result = await run_cli(*pull_args(emu, QUERY, out, "--csv-dialect", "excel"))
    assert result.code == 0, result.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    with out.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file, delimiter=";"))
    assert rows[0] == csv_columns(notes=False)
    assert len(rows) == 601 and {len(row) for row in rows} == {len(rows[0])}
    assert {row[rows[0].index("uuid")] for row in rows[1:]} == {
        call["uuid"] for call in expected_calls(emu, QUERY)
    }
    # The dialect belongs to the pull: the file is not continued in another one.
    again = await run_cli(*pull_args(emu, QUERY, out))
    assert again.code == 1 and "--csv-dialect excel" in again.error_lines[0]
    assert out.read_bytes() == raw


@pytest.mark.parametrize(
    ("env", "extra", "message"),
    [
        (
            {"CCRM_TOKEN": TOKEN[:4] + "\x07" + TOKEN[4:]},
            [],
            "error: the API token (token= or CCRM_TOKEN) has a control character at "
            "position 5: copy the key again, without line breaks or tabs",
        ),
        (
            {},
            ["--account", "Acme_Corp"],
            "error: the CCRM account 'acme_corp' (account= or CCRM_ACCOUNT) is not a host "
            "name: give the NAME of https://NAME.ccrm.pl (letters, digits and inner hyphens, "
            "at most 63)",
        ),
    ],
)
async def test_configuration_errors_exit_2_naming_the_setting(
    tmp_path: Path, env: dict[str, str], extra: list[str], message: str
) -> None:
    args = ["calls", "pull", "--from", "2024-01-01", "--to", "2024-01-02"]
    args += ["--out", str(tmp_path / "x.jsonl"), *extra]
    if not extra:
        args += ["--base-url", "http://127.0.0.1:9"]
    result = await run_cli(*args, env=cli_env(**env))
    assert result.code == 2
    assert result.error_lines == [message]
    assert os.listdir(tmp_path) == []


async def test_a_token_from_a_windows_env_file_works(emu: CCRMEmulator, tmp_path: Path) -> None:
    out = tmp_path / "calls.jsonl"
    result = await run_cli(*pull_args(emu, QUERY, out), env=cli_env(CCRM_TOKEN=TOKEN + "\r"))
    assert result.code == 0, result.stderr
    assert len(out.read_text().splitlines()) == 600


async def test_a_sqlite_error_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "calls.sqlite"
    args = ["calls", "pull", "--base-url", "http://127.0.0.1:9"]
    args += ["--from", "2024-01-01", "--to", "2024-01-02", "--out", str(out)]
    result = await run_cli(*args)
    assert result.code == 1
    assert result.error_lines == [f"error: SQLite: unable to open database file: {out}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
