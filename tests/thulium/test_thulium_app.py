"""The lookup endpoint over a real socket on 127.0.0.1: answers, access control and
anti-enumeration (RELIABILITY 29), field minimisation (30), phone forms (31), logs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from _thulium_fixtures import (  # noqa: F401
    address,
    captured_logs,
    log_scan,
    organisation,
    person,
    raw_request,
    serving,
    valid_pesel,
)
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccrm_async.thulium import (
    CONTENT_TYPE,
    DEFAULT_FIELDS,
    LOOKUP_SERVICE,
    THULIUM_FIELDS,
    ContactDirectory,
    create_lookup_app,
)

CUSTOM = "0b7c6f1e-1111-4a2b-9c3d-000000000001"
PESEL = valid_pesel(date(1985, 3, 14), serial=4321)
ID_DOC = "XYZ654321"
BIRTHDATE = "1985-03-14"
TOKEN = "t0ken-" + "k" * 26


@pytest.fixture
def directory() -> Iterator[ContactDirectory]:
    people = [
        person(
            "Adam",
            "Testowy",
            "500 200 001",
            "+48 500-200-002",
            emails=("adam.testowy@example.com",),
            custom_fields={CUSTOM: "VIP"},
            addresses=(address("dom", "Łódź", street="ul. Próbna", building_no="1"),),
        ),
        person(
            "Ewa",
            "Próbna",
            "500200003",
            pesel=PESEL,
            id_doc_type="dowód osobisty",
            id_doc_number=ID_DOC,
            extra={"birthDate": BIRTHDATE},
        ),
        person("John", "Sample", "+44 20 7946 0001"),
    ]
    organisations = [
        organisation("Demo sp. z o.o.", "22 500 20 04", nip="1234567890", regon="123456789")
    ]
    built = ContactDirectory.build(
        people=people, organisations=organisations, custom_field_names={CUSTOM: "Status"}
    )
    yield built
    built.close()


async def _get(url: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, allow_redirects=False, **kw) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


# -- answers ------------------------------------------------------------------------------------


async def test_found_not_found_and_bad_requests(directory: ContactDirectory) -> None:
    async with serving(create_lookup_app(directory)) as (_, port):
        status, headers, body = await raw_request(port, b"/customers.json?phone_number=500200001")
        assert status == 200
        assert headers["content-type"] == CONTENT_TYPE  # exactly, no space
        assert headers["cache-control"] == "no-store"
        assert orjson.loads(body) == {
            "name": "Adam",
            "surname": "Testowy",
            "phone_number": ["500200001", "500200002"],
            "email": ["adam.testowy@example.com"],
            "address": {"street": "ul. Próbna", "building": "1", "city": "Łódź"},
            "custom_fields": {"Status": "VIP"},
        }
        status, headers, body = await raw_request(port, b"/customers.json?phone_number=500200099")
        assert (status, headers["content-type"]) == (404, CONTENT_TYPE)
        assert orjson.loads(body) == {"error": "not found"}
        for target in (
            b"/customers.json",
            b"/customers.json?phone=500200001",
            b"/customers.json?phone_number=",
            b"/customers.json?phone_number=abc",
            b"/customers.json?phone_number=" + b"5" * 33,
            b"/customers.json?phone_number=500200001&phone_number=500200002",
            b"/customers.json?phone_number=%FF%FE",
        ):
            status, headers, body = await raw_request(port, target)
            assert (status, headers["content-type"]) == (400, CONTENT_TYPE), target
            assert set(orjson.loads(body)) == {"error"}
        status, _, body = await raw_request(
            port, b"/customers.json?phone_number=500200001", method=b"HEAD"
        )
        assert (status, body) == (200, b"")
        status, _, _ = await raw_request(port, b"/customers.json?phone_number=1", method=b"POST")
        assert status == 405
    counts = create_lookup_app(directory)[LOOKUP_SERVICE].counts
    assert counts == {}


async def test_organisation_and_foreign_numbers(directory: ContactDirectory) -> None:
    async with serving(create_lookup_app(directory)) as (url, _):
        status, _, body = await _get(url + "/customers.json?phone_number=%2B48225002004")
        assert status == 200
        assert orjson.loads(body) == {
            "surname": "Demo sp. z o.o.",
            "phone_number": ["225002004"],
            "nip": "1234567890",
            "regon": "123456789",
        }
        # A literal "+" at the start is the country code's, not a space.
        status, _, body = await raw_request(
            int(url.rsplit(":", 1)[1]), b"/customers.json?phone_number=+442079460001"
        )
        assert status == 200 and orjson.loads(body)["surname"] == "Sample"


async def test_mountable_and_custom_path(directory: ContactDirectory) -> None:
    root = web.Application()
    root.add_subapp("/thulium", create_lookup_app(directory, path="/api/customers.json"))
    async with serving(root) as (url, _):
        status, _, _ = await _get(url + "/thulium/api/customers.json?phone_number=500200001")
        assert status == 200
        status, _, _ = await _get(url + "/customers.json?phone_number=500200001")
        assert status == 404


async def test_never_a_5xx_when_the_directory_fails(directory: ContactDirectory) -> None:
    app = create_lookup_app(directory)
    empty = create_lookup_app(directory, fallback_status=200)
    async with serving(app) as (url, _), serving(empty) as (empty_url, _):
        directory.close()  # every lookup now raises inside the handler
        status, headers, body = await _get(url + "/customers.json?phone_number=500200001")
        assert (status, headers["Content-Type"]) == (404, CONTENT_TYPE)
        assert orjson.loads(body) == {"error": "not found"}
        status, _, body = await _get(empty_url + "/customers.json?phone_number=500200001")
        assert (status, orjson.loads(body)) == (200, {})
    errors = [r.getMessage() for r in captured_logs() if r.levelno >= logging.ERROR]
    assert errors and all("ProgrammingError" in e for e in errors)


# -- RELIABILITY 29: access control and anti-enumeration -------------------------------------


@contextlib.contextmanager
def counting_lookups(directory: ContactDirectory) -> Iterator[list[str]]:
    """Record every key the directory is asked for."""
    asked: list[str] = []
    real = directory.lookup_key

    def spy(key: str) -> Any:
        asked.append(key)
        return real(key)

    directory.lookup_key = spy  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        del directory.lookup_key


async def test_basic_auth(directory: ContactDirectory) -> None:
    app = create_lookup_app(directory, basic_auth=("thulium", "s3cret-pass"))
    target = b"/customers.json?phone_number=500200001"
    with counting_lookups(directory) as asked:
        async with serving(app) as (_, port):
            status, headers, _ = await raw_request(port, target)
            assert status == 401 and headers["www-authenticate"].startswith("Basic")
            for wrong in (_basic("thulium", "s3cret-pas"), _basic("other", "s3cret-pass"), b"x"):
                status, _, _ = await raw_request(port, target, [(b"Authorization", wrong)])
                assert status == 401
            assert asked == []  # refused requests are never looked up
            good = [(b"Authorization", _basic("thulium", "s3cret-pass"))]
            status, _, _ = await raw_request(port, target, good)
            assert status == 200 and asked == ["+48500200001"]


async def test_token_in_the_path(directory: ContactDirectory) -> None:
    app = create_lookup_app(directory, path_token=TOKEN)
    with counting_lookups(directory) as asked:
        async with serving(app) as (_, port):
            for path in (b"/customers.json", b"/" + TOKEN[:-1].encode() + b"/customers.json"):
                status, headers, _ = await raw_request(port, path + b"?phone_number=500200001")
                assert (status, headers["content-type"]) == (403, CONTENT_TYPE)
            assert asked == []
            good = b"/" + TOKEN.encode() + b"/customers.json?phone_number=500200001"
            status, _, _ = await raw_request(port, good)
            assert status == 200


async def test_ip_allow_list_over_real_addresses(directory: ContactDirectory) -> None:
    """The server listens on 127.0.0.1; requests leave from 127.0.0.1 or 127.0.0.2."""
    only_one = create_lookup_app(directory, allow_ips=["127.0.0.1/32"])
    whole_net = create_lookup_app(directory, allow_ips=["10.0.0.0/8", "127.0.0.0/8"])
    elsewhere = create_lookup_app(directory, allow_ips=["10.0.0.0/8", "::1"])
    target = b"/customers.json?phone_number=500200001"

    async def from_address(port: int, local: str) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        return int(data.split(b" ", 2)[1])

    with counting_lookups(directory) as asked:
        async with (
            serving(only_one) as (_, one),
            serving(whole_net) as (_, net),
            serving(elsewhere) as (_, other),
        ):
            assert await from_address(one, "127.0.0.1") == 200
            assert await from_address(one, "127.0.0.2") == 403
            assert await from_address(net, "127.0.0.2") == 200
            assert await from_address(other, "127.0.0.1") == 403
    assert len(asked) == 2


async def test_distinct_numbers_per_minute(directory: ContactDirectory) -> None:
    now = [1000.0]
    app = create_lookup_app(directory, max_numbers_per_minute=5, clock=lambda: now[0])
    numbers = [f"5002001{i:02d}" for i in range(5)]
    with counting_lookups(directory) as asked:
        async with serving(app) as (_, port):

            async def ask(number: str) -> tuple[int, dict[str, str]]:
                status, headers, _ = await raw_request(
                    port, b"/customers.json?phone_number=" + number.encode()
                )
                return status, headers

            for number in numbers:
                assert (await ask(number))[0] in (200, 404)
            status, headers = await ask("500200199")
            assert status == 429 and headers["content-type"] == CONTENT_TYPE
            assert headers["retry-after"] == "60"
            assert len(asked) == 5  # the refused number was not looked up
            assert (await ask(quote("+48 " + numbers[0], safe="+")))[0] in (200, 404)  # free
            now[0] += 30
            assert (await ask("500200198"))[0] == 429
            now[0] += 31  # the first five left the window
            assert (await ask("500200199"))[0] in (200, 404)
    assert app[LOOKUP_SERVICE].counts[429] == 2
    messages = [r.getMessage() for r in captured_logs() if r.name.endswith("lookup")]
    assert any("*******199" in m and ": 429" in m for m in messages)


# -- RELIABILITY 30: field minimisation -------------------------------------------------------


async def test_default_answers_carry_only_allowed_fields(directory: ContactDirectory) -> None:
    async with serving(create_lookup_app(directory)) as (url, _):
        for number in ("500200001", "500200003", "225002004", "+442079460001"):
            status, _, body = await _get(url + "/customers.json?phone_number=" + quote(number))
            assert status == 200
            assert set(orjson.loads(body)) <= DEFAULT_FIELDS
            for secret in (PESEL, ID_DOC, BIRTHDATE, "dowód"):
                assert secret.encode() not in body


async def test_sensitive_fields_only_when_switched_on(directory: ContactDirectory) -> None:
    narrow = create_lookup_app(directory, fields={"name", "surname", "pesel"}, expose_pesel=True)
    listed_only = create_lookup_app(directory, fields=THULIUM_FIELDS)
    everything = create_lookup_app(
        directory,
        fields=THULIUM_FIELDS,
        expose_pesel=True,
        expose_birthdate=True,
        expose_id_document=True,
    )
    query = "/customers.json?phone_number=500200003"
    async with (
        serving(narrow) as (a, _),
        serving(listed_only) as (b, _),
        serving(everything) as (c, _),
    ):
        assert orjson.loads((await _get(a + query))[2]) == {
            "name": "Ewa",
            "surname": "Próbna",
            "pesel": PESEL,
        }
        body = (await _get(b + query))[2]
        assert PESEL.encode() not in body and BIRTHDATE.encode() not in body
        assert ID_DOC.encode() not in body
        full = orjson.loads((await _get(c + query))[2])
    assert full["pesel"] == PESEL and full["birthdate"] == BIRTHDATE
    assert full["custom_fields"]["Numer dokumentu tożsamości"] == ID_DOC


# -- RELIABILITY 31: phone forms over HTTP -----------------------------------------------------


@st.composite
def forms_of(draw: st.DrawFn, national: str) -> str:
    zero = draw(st.sampled_from(["0", "\u0660", "\uff10"]))
    digits = "".join(chr(ord(zero) + int(d)) for d in national)
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    groups = [digits[:3], digits[3:6], digits[6:]]
    prefix = draw(st.sampled_from(["", "+48", "+48 ", "0048", "48", "(+48) "]))
    return prefix + separator.join(groups)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(form=forms_of("500200001"), encode=st.booleans())
async def test_equivalent_forms_return_the_same_record(
    directory: ContactDirectory, form: str, encode: bool
) -> None:
    app = create_lookup_app(directory, max_numbers_per_minute=None)
    async with serving(app) as (_, port):
        _, _, expected = await raw_request(port, b"/customers.json?phone_number=500200001")
        value = quote(form, safe="") if encode else quote(form, safe="+()")
        status, _, body = await raw_request(port, b"/customers.json?phone_number=" + value.encode())
    assert (status, body) == (200, expected)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    query=st.one_of(
        st.binary(max_size=60),
        st.text(max_size=60).map(lambda t: ("phone_number=" + quote(t, safe="")).encode()),
        st.text(alphabet="0123456789 +-().%&=_abcdefghijklmnopqrstuvwxyz", max_size=60).map(
            lambda t: ("phone_number=" + t).encode()
        ),
    )
)
async def test_arbitrary_query_strings_never_give_a_5xx(
    directory: ContactDirectory, query: bytes
) -> None:
    query = query.replace(b" ", b"%20").replace(b"\r", b"").replace(b"\n", b"")
    app = create_lookup_app(directory, max_numbers_per_minute=None)
    async with serving(app) as (_, port):
        status, _, _ = await raw_request(port, b"/customers.json?" + query)
    assert status < 500
    assert status in (200, 400, 404)


async def test_long_input_and_cr_lf_are_refused_and_never_logged(
    directory: ContactDirectory,
) -> None:
    async with serving(create_lookup_app(directory)) as (_, port):
        for value in (b"5" * 33, b"%20" * 30 + b"500200001", b"500200001%0D%0AX-Injected:%201"):
            status, _, _ = await raw_request(port, b"/customers.json?phone_number=" + value)
            assert status == 400
        status, _, _ = await raw_request(port, b"/customers.json?phone_number=500200001")
        assert status == 200
    lines = [r.getMessage() for r in captured_logs() if r.name == "ccrm_async.thulium.lookup"]
    assert len(lines) == 4
    assert all("invalid" in line for line in lines[:3])
    assert "******001" in lines[3]  # masked to the last 3 digits


async def test_malformed_requests_are_not_logged_raw(directory: ContactDirectory) -> None:
    """aiohttp logs a malformed request with its raw request line; LookupServer
    scrubs that down to the exception's type (the log scan checks the rest)."""
    async with serving(create_lookup_app(directory)) as (_, port):
        for target in (
            b"/customers.json?phone_number=+48 500 200 001",
            b"/customers.json?phone_number=500200001\x00",
            b"/customers.json?phone_number=\xff500200001",
        ):
            status, _, _ = await raw_request(port, target)
            assert status == 400
    scrubbed = [r for r in captured_logs() if r.name == "ccrm_async.thulium.http"]
    assert scrubbed and all(r.exc_info is None for r in scrubbed)
    assert not [r for r in captured_logs() if r.name == "aiohttp.server"]
