"""RELIABILITY 16 (token) and 17 (strict callback-URL validation, 0 DNS look-ups),
first as pure functions, then over a real socket against a pending job."""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from _export_fixtures import crm, emu, eventually, export_dir, export_root, http, path_of, rx

from ccrm_async._core import callback
from ccrm_async._core.callback import (
    CallbackRejected,
    Origin,
    origin_of,
    parse_callback_body,
    push_url,
    redirect_target,
    validate_download_url,
)
from ccrm_async.exports import ExportStatus

from conftest import sample_bytes, sample_json

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "http", "rx"]

FILE_ID = "0f3c2a1e-9b8d-4c7e-a6f5-4e3d2c1b0a99"
GOOD = f"https://acme.ccrm.pl/api/storage/download/{FILE_ID}"
P = f"/api/storage/download/{FILE_ID}"

# Each entry must be rejected for the default origin https://acme.ccrm.pl.
HOSTILE_DEFAULT = [
    # another scheme
    f"http://acme.ccrm.pl{P}",
    f"ftp://acme.ccrm.pl{P}",
    f"HTTP://acme.ccrm.pl{P}",
    "javascript:alert(1)",
    "file:///etc/passwd",
    f"//acme.ccrm.pl{P}",
    f"https:/acme.ccrm.pl{P}",
    P,
    # userinfo
    f"https://user@acme.ccrm.pl{P}",
    f"https://user:secret@acme.ccrm.pl{P}",
    f"https://acme.ccrm.pl@evil.com{P}",
    f"https://acme.ccrm.pl:443@evil.com{P}",
    f"https://acme.ccrm.pl%40evil.com{P}",
    # backslash
    f"https://evil.com\\@acme.ccrm.pl{P}",
    f"https://acme.ccrm.pl\\api\\storage\\download\\{FILE_ID}",
    f"https://acme.ccrm.pl/api/storage/download\\{FILE_ID}",
    # percent-encoded dots and slashes, traversal
    f"https://acme.ccrm.pl/api/storage/download/%2e%2e/{FILE_ID}",
    "https://acme.ccrm.pl/api/storage/download/%2E%2E%2Fadmin",
    f"https://acme.ccrm.pl/api%2fstorage%2fdownload/{FILE_ID}",
    f"https://acme.ccrm.pl/api/storage/download/{FILE_ID}%2f..",
    f"https://acme.ccrm.pl/api/storage/download/../../admin/{FILE_ID}",
    f"https://acme.ccrm.pl%2eevil.com{P}",
    f"https://acme.ccrm.pl/api/storage/download/{FILE_ID}%00",
    # IDN and homoglyphs
    f"https://аcme.ccrm.pl{P}",  # Cyrillic а
    f"https://acme.ccrm.рl{P}",  # Cyrillic р
    f"https://acme．ccrm．pl{P}",  # fullwidth dots
    f"https://xn--acme-8ua.ccrm.pl{P}",
    # trailing dot, ports
    f"https://acme.ccrm.pl.{P}",
    f"https://acme.ccrm.pl:443{P}",
    f"https://acme.ccrm.pl:8443{P}",
    f"https://acme.ccrm.pl:{P}",
    # IP literals in every notation
    f"https://127.0.0.1{P}",
    f"https://169.254.169.254{P}",
    f"https://[::1]{P}",
    f"https://[::ffff:127.0.0.1]{P}",
    f"https://2130706433{P}",
    f"https://0177.0.0.1{P}",
    f"https://0x7f000001{P}",
    f"https://0x7f.0.0.1{P}",
    f"https://127.1{P}",
    # look-alike and other hosts, other accounts
    f"https://acme.ccrm.pl.evil.com{P}",
    f"https://ACME.ccrm.pl.evil.com{P}",
    f"https://evil.com/acme.ccrm.pl{P}",
    f"https://evil.com{P}",
    f"https://other.ccrm.pl{P}",
    f"https://acme2.ccrm.pl{P}",
    f"https://ccrm.pl{P}",
    f"https://www.acme.ccrm.pl{P}",
    # wrong paths and ids
    "https://acme.ccrm.pl/api/storage/download/",
    f"https://acme.ccrm.pl/api/storage/upload/{FILE_ID}",
    f"https://acme.ccrm.pl/api/storage/download/{FILE_ID}/extra",
    f"https://acme.ccrm.pl//api/storage/download/{FILE_ID}",
    f"https://acme.ccrm.pl/API/storage/download/{FILE_ID}",
    "https://acme.ccrm.pl/publicApi/people/export",
    "https://acme.ccrm.pl/api/storage/download/0f3c2a1e9b8d4c7ea6f54e3d2c1b0a99",
    f"https://acme.ccrm.pl/api/storage/download/{FILE_ID}x",
    "https://acme.ccrm.pl/api/storage/download/" + "a" * 5000,
    # query, fragment, parameters
    f"{GOOD}?x=1",
    f"{GOOD}?",
    f"{GOOD}#frag",
    f"{GOOD};jsessionid=1",
    # blanks and control characters
    f" {GOOD}",
    f"{GOOD}\n",
    f"{GOOD}\r\nX-Injected: 1",
    f"https://acme.ccrm.pl\t{P}",
    f"{GOOD}\x00",
    "",
]


@pytest.fixture
def spy_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts every name resolution and outbound connect of the process."""
    calls: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(*args: Any, **kw: Any) -> Any:
        calls.append(f"getaddrinfo {args[0]!r}")
        return real_getaddrinfo(*args, **kw)

    def gethostbyname(name: str) -> str:
        calls.append(f"gethostbyname {name!r}")
        raise OSError("no DNS in this test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyname", gethostbyname)
    yield calls


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE_DEFAULT) >= 40
    assert len(set(HOSTILE_DEFAULT)) == len(HOSTILE_DEFAULT)


def test_default_origin_rejects_every_hostile_url_without_dns(spy_network: list[str]) -> None:
    origin = origin_of("https://acme.ccrm.pl")
    accepted = []
    for url in [*HOSTILE_DEFAULT, GOOD]:
        try:
            accepted.append((url, validate_download_url(url, origin)))
        except CallbackRejected as exc:
            assert exc.status == 400
    assert accepted == [(GOOD, FILE_ID)]
    assert spy_network == []


def test_scheme_and_host_letter_case_does_not_matter() -> None:
    origin = origin_of("https://acme.ccrm.pl")
    assert validate_download_url(f"HTTPS://ACME.CCRM.PL{P}", origin) == FILE_ID


def test_the_seed_example_id_is_accepted() -> None:
    # d333a333-f9f8-4d33-a333-fb3b3333attb: uuid-shaped, but not hex.
    body = sample_bytes("export_callback.txt").replace(b"{twoja_nazwa}", b"acme")
    url = parse_callback_body(body)
    origin = origin_of("https://acme.ccrm.pl")
    assert validate_download_url(url, origin) == "d333a333-f9f8-4d33-a333-fb3b3333attb"


def test_an_explicit_base_url_is_the_trusted_origin() -> None:
    origin = origin_of("http://127.0.0.1:8123/")
    assert origin == Origin("http", "127.0.0.1", 8123)
    assert validate_download_url(f"http://127.0.0.1:8123{P}", origin) == FILE_ID
    for url in (f"http://127.0.0.1{P}", f"https://127.0.0.1:8123{P}", f"http://127.0.0.1:8124{P}"):
        with pytest.raises(CallbackRejected):
            validate_download_url(url, origin)
    # The default origin's strictness does not depend on the account name.
    assert str(origin_of("https://acme.ccrm.pl")) == "https://acme.ccrm.pl"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"", 400),
        (b"[]", 400),
        (b'["https://acme.ccrm.pl/x"]', 400),
        (b"{}", 400),
        (b'{"link": "x"}', 400),
        (b'{"url": 1}', 400),
        (b'{"url": null}', 400),
        (b'{"url": ["x"]}', 400),
        (b'"url"', 400),
        (b"\xff\xfe", 400),
        (b"[" * 4000, 400),
        (b'{"url": "' + b"a" * 4100 + b'"}', 413),
    ],
)
def test_bad_bodies_are_rejected(body: bytes, status: int) -> None:
    with pytest.raises(CallbackRejected) as caught:
        parse_callback_body(body)
    assert caught.value.status == status


def test_the_seed_body_with_its_unquoted_key_is_read() -> None:
    url = parse_callback_body(sample_bytes("export_callback.txt"))
    assert url.endswith("/api/storage/download/d333a333-f9f8-4d33-a333-fb3b3333attb")
    assert parse_callback_body(b'{"url": "x"}') == "x"


def test_samples_of_the_request_and_its_answer() -> None:
    from ccrm_async._core.export_columns import validate_columns
    from ccrm_async._core.responses import parse_envelope

    request = sample_json("export_request.json")
    assert validate_columns("people", request["columns"]) == ("firstName", "middleName", "lastName")
    assert parse_envelope(sample_bytes("export_response.json"), data_type=None).data == "OK"


def test_tokens_come_from_secrets_with_at_least_128_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        calls.append(nbytes or 0)
        return real(nbytes)

    monkeypatch.setattr(secrets, "token_urlsafe", spy)
    tokens = {callback.new_token() for _ in range(50)}
    assert len(tokens) == 50
    assert calls == [callback.TOKEN_BYTES] * 50
    for token in tokens:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128


def test_tokens_are_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    token = callback.new_token()
    digest = callback.token_digest(token)
    assert callback.token_matches(token, digest)
    assert not callback.token_matches(callback.new_token(), digest)
    assert not callback.token_matches(token, None)  # unknown job: still one comparison
    assert len(calls) == 3
    assert all(token not in (a, b) for a, b in calls)  # digests, never the token


def test_push_url_shape() -> None:
    url = push_url("https://hooks.example.com/", "/ccrm-export", "job", "tok")
    assert url == "https://hooks.example.com/ccrm-export/job/tok"


@pytest.mark.parametrize(
    ("location", "followed"),
    [
        ("/api/storage/download/x?redirected=1", True),
        ("https://acme.ccrm.pl/files/x", True),
        ("https://evil.com/x", False),
        ("http://acme.ccrm.pl/x", False),
        ("https://acme.ccrm.pl:443/x", False),
        ("https://user@acme.ccrm.pl/x", False),
        ("//evil.com/x", False),
        ("https://acme.ccrm.pl.evil.com/x", False),
        ("https://10.0.0.5/x", False),
        ("https://acme.ccrm.pl\\@evil.com/x", False),
        ("", False),
        (None, False),
    ],
)
def test_redirects_are_followed_only_on_the_same_origin(
    location: str | None, followed: bool
) -> None:
    origin = origin_of("https://acme.ccrm.pl")
    target = redirect_target(GOOD, location, origin)
    assert (target is not None) is followed
    if target is not None:
        assert target.startswith("https://acme.ccrm.pl/")


# -- over a real socket --------------------------------------------------------


def hostile_for(origin: str, host: str, port: int) -> list[str]:
    """Item 17's categories, for an explicit base URL such as the emulator's."""
    p = P
    return [
        f"https://{host}:{port}{p}",
        f"ftp://{host}:{port}{p}",
        f"//{host}:{port}{p}",
        f"http://user@{host}:{port}{p}",
        f"http://{host}:{port}@evil.com{p}",
        f"http://evil.com\\@{host}:{port}{p}",
        f"{origin}\\api\\storage\\download\\{FILE_ID}",
        f"{origin}/api/storage/download/%2e%2e/{FILE_ID}",
        f"{origin}/api%2fstorage%2fdownload/{FILE_ID}",
        f"{origin}/api/storage/download/../../{FILE_ID}",
        f"http://{host}.:{port}{p}",
        f"http://{host}{p}",
        f"http://{host}:{port + 1}{p}",
        f"http://{host}:0{port}{p}",
        f"http://localhost:{port}{p}",
        f"http://[::1]:{port}{p}",
        f"http://[::ffff:127.0.0.1]:{port}{p}",
        f"http://2130706433:{port}{p}",
        f"http://0177.0.0.1:{port}{p}",
        f"http://0x7f000001:{port}{p}",
        f"http://127.1:{port}{p}",
        f"http://127.0.0.2:{port}{p}",
        f"http://{host}:{port}.evil.com{p}",
        f"http://evil.com/{host}:{port}{p}",
        f"http://еxample:{port}{p}",
        f"{origin}/api/storage/upload/{FILE_ID}",
        f"{origin}/api/storage/download/{FILE_ID}/x",
        f"{origin}//api/storage/download/{FILE_ID}",
        f"{origin}{p}?a=1",
        f"{origin}{p}#x",
        f" {origin}{p}",
        f"{origin}{p}\r\n",
    ]


async def test_hostile_callbacks_get_400_and_touch_nothing(
    emu: Any, crm: Any, rx: Any, http: aiohttp.ClientSession, spy_network: list[str]
) -> None:
    emu.exports.faults.missing = True  # the test delivers the callbacks itself
    job = await crm.export_people(["firstName"], receiver=rx)
    await eventually(lambda: len(emu.exports.exports) == 1)
    export = next(iter(emu.exports.exports.values()))
    callback_url = rx.url + path_of(export.push_url)
    connector = crm.transport.session.connector
    connects: list[object] = []
    real_create = aiohttp.TCPConnector._create_connection

    async def counting_create(self: aiohttp.TCPConnector, *args: Any, **kw: Any) -> Any:
        if self is connector:
            connects.append(args[0].url)
        return await real_create(self, *args, **kw)

    before = len(emu.log)
    origin = emu.url
    host, port = "127.0.0.1", int(origin.rsplit(":", 1)[1])
    table = [u.replace(FILE_ID, export.id) for u in hostile_for(origin, host, port)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aiohttp.TCPConnector, "_create_connection", counting_create)
        statuses = await asyncio.gather(
            *(_status(http, callback_url, orjson.dumps({"url": url})) for url in table)
        )
        assert statuses == [400] * len(table)
        assert job.status is ExportStatus.PENDING and not job.done()
        assert rx.downloads_started == 0
        assert connects == []
    assert spy_network == []
    assert len(emu.log) == before  # the emulator saw nothing new
    good = orjson.dumps({"url": f"{origin}/api/storage/download/{export.id}"})
    assert await _status(http, callback_url, good) == 200
    result = await job.wait(timeout=5)
    assert result.size == len(emu.exports.file(export.id))
    assert spy_network == []  # the emulator's address is an IP literal: still no DNS
    result.path.unlink()


async def _status(session: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with session.post(url, data=body) as resp:
        await resp.read()
        return resp.status
