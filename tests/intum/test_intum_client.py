"""``IntumClient`` against the intum emulator over a real socket (seed 004)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import pickle
import traceback
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from ccrm_async import (
    AuthenticationError,
    CCRMError,
    NotFoundError,
    ResponseError,
    ServerError,
    Timeouts,
    TransportError,
    ValidationError,
)
from ccrm_async.intum import DEFAULT_APP_CODE, Deal, IntumClient
from ccrm_async.testing import IntumEmulator, IntumFaults

from conftest import FAST_RETRY

CANARY = "intum_TESTKEY_5f2a9c1e7b"


@pytest.fixture
async def intum_emu() -> AsyncIterator[IntumEmulator]:
    async with IntumEmulator(token=CANARY) as emu:
        yield emu


@pytest.fixture
async def intum(intum_emu: IntumEmulator) -> AsyncIterator[IntumClient]:
    async with IntumClient(base_url=intum_emu.url, token=intum_emu.token, retry=FAST_RETRY) as c:
        yield c


def new_deal(**changes: Any) -> Deal:
    base = Deal(
        name="Wdrożenie systemu CRM",
        total_amount_net=Decimal("10000.00"),
        total_amount_gross=Decimal("12300.10"),
        tax="23",
        currency="PLN",
        client_id=123,
        status_id=1,
        date=dt.date(2026, 3, 15),
    )
    return attrs.evolve(base, **changes)


def count(emu: IntumEmulator, route: str) -> int:
    return len(emu.requests(route))


# -- create, get: Decimal round trips ----------------------------------------------


async def test_create_and_get_round_trip_money_exactly(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    deal = new_deal(
        total_amount_net=Decimal("12345678901.23456789"),
        total_amount_gross=Decimal("12345678901.23456790"),
        fields={"rabat": Decimal("0.10"), "kanał": "www"},
    )
    created = await intum.deals.create(deal)
    assert created.id is not None
    assert attrs.evolve(created, id=None) == deal
    assert str(created.total_amount_net) == "12345678901.23456789"
    assert str(created.total_amount_gross) == "12345678901.23456790"
    # The server got the exact numbers, not floats.
    sent = intum_emu.requests("create")[0].body["deal"]
    assert str(sent["total_amount_net"]) == "12345678901.23456789"
    assert str(sent["fields"]["rabat"]) == "0.10"
    assert set(sent) == {
        "name",
        "total_amount_net",
        "total_amount_gross",
        "tax",
        "currency",
        "client_id",
        "status_id",
        "date",
        "fields",
    }
    assert sent["date"] == "2026-03-15"

    fetched = await intum.deals.get(created.id)
    assert fetched == created
    assert str(fetched.total_amount_gross) == "12345678901.23456790"
    assert intum_emu.requests("get")[0].path == f"/crm/deals/{created.id}.json"


async def test_money_sent_back_as_strings_round_trips_too() -> None:
    async with (
        IntumEmulator(money_as_strings=True) as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        created = await intum.deals.create(new_deal())
        assert str(created.total_amount_gross) == "12300.10"
        assert str((await intum.deals.get(created.id or 0)).total_amount_net) == "10000.00"


async def test_get_missing_deal(intum: IntumClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await intum.deals.get(999)
    assert info.value.status == 404
    assert info.value.path == "/crm/deals/999.json"


# -- validation before sending ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"total_amount_net": None}, "total_amount_net"),
        ({"total_amount_gross": None}, "total_amount_gross"),
        ({"total_amount_net": Decimal("1e12")}, "total_amount_net"),
        (
            {"total_amount_net": Decimal("1"), "total_amount_gross": Decimal("1000000000000")},
            "total_amount_gross",
        ),
        ({"total_amount_gross": Decimal("9999.99")}, "total_amount_gross"),
        ({"tax": None}, "tax"),
        ({"tax": ""}, "tax"),
        ({"closed": "open"}, "closed"),
        ({"external_id": "bad\x00id"}, "external_id"),
        ({"fields": {"x": {1, 2}}}, "fields"),
    ],
)
async def test_bad_deal_is_refused_without_a_request(
    intum: IntumClient, intum_emu: IntumEmulator, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await intum.deals.create(new_deal(**changes))
    assert info.value.field == field
    assert intum_emu.log == []


async def test_bad_calls_send_nothing(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    with pytest.raises(ValidationError):
        await intum.deals.get(0)
    with pytest.raises(ValidationError):
        await intum.deals.update(1, total_amount_gross=Decimal("1"), total_amount_net=2)
    with pytest.raises(ValidationError):
        await intum.deals.update(1, tax=None)
    with pytest.raises(ValidationError):
        await intum.deals.update(1, colour="red")
    with pytest.raises(ValidationError):
        await intum.deals.update(1)
    with pytest.raises(ValidationError):
        await intum.deals.delete("one")
    with pytest.raises(ValidationError):
        await intum.deals.get_by_external_id("", "x")
    with pytest.raises(ValidationError) as info:
        intum.deals.list(per_page=500)
    assert info.value.field == "per_page"
    with pytest.raises(ValidationError):
        intum.deals.list(owner="me")
    assert intum_emu.log == []


async def test_emulator_applies_the_same_rules(intum_emu: IntumEmulator) -> None:
    headers = {"Authorization": f"Bearer {intum_emu.token}"}
    async with aiohttp.ClientSession() as session:
        bad = {"deal": {"total_amount_net": 10, "total_amount_gross": "9.99", "closed": "maybe"}}
        async with session.post(f"{intum_emu.url}/crm/deals.json", json=bad, headers=headers) as r:
            assert r.status == 422
            assert (await r.json())["message"] == {
                "tax": ["is required"],
                "total_amount_gross": ["must be greater than or equal to total_amount_net"],
                "closed": ["must be win, lost or empty"],
            }
        async with session.post(f"{intum_emu.url}/crm/deals.json", json={}, headers=headers) as r:
            assert r.status == 422
        # The seed's example: the token in the body, amounts as JSON numbers.
        example = {
            "api_token": intum_emu.token,
            "deal": {"total_amount_net": 10000.00, "total_amount_gross": 12300.00, "tax": "23"},
        }
        async with session.post(f"{intum_emu.url}/crm/deals.json", json=example) as r:
            assert r.status == 201
        async with session.get(f"{intum_emu.url}/crm/deals.json") as r:
            assert r.status == 401
    assert len(intum_emu.deals) == 1
    assert all("api_token" not in (r.body or {}) for r in intum_emu.log)


async def test_server_rejection_carries_its_messages(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    created = await intum.deals.create(new_deal())
    assert created.id is not None
    # Valid on its own, but above the stored gross: only the server can tell.
    with pytest.raises(ValidationError) as info:
        await intum.deals.update(created.id, total_amount_net=Decimal("20000"))
    error = info.value
    assert error.status == 422
    assert error.field == "total_amount_gross"
    assert error.errors == {
        "total_amount_gross": ["must be greater than or equal to total_amount_net"]
    }
    assert count(intum_emu, "update") == 1  # a 422 is not retried


# -- update, delete ---------------------------------------------------------------


async def test_update_sends_only_the_given_fields(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    created = await intum.deals.create(new_deal(description="first"))
    assert created.id is not None
    updated = await intum.deals.update(
        created.id, closed="win", total_amount_gross="12300.55", description=None
    )
    (patch,) = intum_emu.requests("update")
    assert patch.method == "PATCH"
    assert patch.body == {
        "deal": {"closed": "win", "total_amount_gross": Decimal("12300.55"), "description": None}
    }
    assert updated.closed == "win"
    assert str(updated.total_amount_gross) == "12300.55"
    assert updated.description is None
    assert updated.name == created.name and updated.total_amount_net == created.total_amount_net
    assert await intum.deals.get(created.id) == updated
    with pytest.raises(NotFoundError):
        await intum.deals.update(999, closed="lost")


async def test_delete(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    created = await intum.deals.create(new_deal())
    assert created.id is not None
    await intum.deals.delete(created.id)
    assert intum_emu.deals == []
    with pytest.raises(NotFoundError):
        await intum.deals.get(created.id)
    with pytest.raises(NotFoundError):
        await intum.deals.delete(created.id)


async def test_delete_whose_answer_was_lost(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    created = await intum.deals.create(new_deal())
    intum_emu.faults.script("delete", ["drop"])
    # Retried like a read: the retry finds the deal gone.
    with pytest.raises(NotFoundError):
        await intum.deals.delete(created.id or 0)
    assert intum_emu.deals == []
    assert [r.status for r in intum_emu.requests("delete")] == [None, 404]


# -- lookup by external id ------------------------------------------------------------


async def test_get_by_external_id(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    odd = "zamówienie/17 ?#%"
    created = await intum.deals.create(new_deal(external_id=odd))
    assert await intum.deals.get_by_external_id("shop", odd) == created
    assert intum_emu.requests("get_by_external_id")[0].path == f"/crm/deals/e/shop/{odd}.json"
    with pytest.raises(NotFoundError):
        await intum.deals.get_by_external_id("shop", "zamówienie")


async def test_external_ids_scoped_by_app_code() -> None:
    async with (
        IntumEmulator(app_code="shop") as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        emu.add_deal(name="planted", external_id="A-1")
        assert (await intum.deals.get_by_external_id("shop", "A-1")).name == "planted"
        with pytest.raises(NotFoundError):
            await intum.deals.get_by_external_id("crm", "A-1")


# -- list --------------------------------------------------------------------------


async def test_list_yields_every_deal_once_over_pages() -> None:
    async with (
        IntumEmulator(deals=250) as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        pull = intum.deals.list()
        deals = [deal async for deal in pull]
        assert [d.id for d in deals] == list(range(1, 251))
        assert all(isinstance(d.total_amount_gross, Decimal) for d in deals)
        assert [r.query for r in emu.requests("list")] == [
            {"page": "1", "per_page": "100"},
            {"page": "2", "per_page": "100"},
            {"page": "3", "per_page": "100"},
        ]
        assert (pull.stats.pages, pull.stats.records, pull.stats.requests) == (3, 250, 3)


async def test_list_of_exact_pages_stops_at_the_empty_one() -> None:
    async with (
        IntumEmulator(deals=200) as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        assert len([d async for d in intum.deals.list()]) == 200
        assert count(emu, "list") == 3


async def test_list_survives_random_5xx() -> None:
    faults = IntumFaults(error_rate=0.5, seed=3)
    async with (
        IntumEmulator(deals=250, faults=faults) as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        pull = intum.deals.list()
        assert len({d.id async for d in pull}) == 250
        assert pull.stats.retries > 0
        assert any(r.status == 503 for r in emu.log)


async def test_list_filters() -> None:
    async with (
        IntumEmulator(deals=120, seed=7) as emu,
        IntumClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as intum,
    ):
        stored = emu.deals
        low, high = Decimal("20000"), Decimal("60000.00")
        expected = [
            d["id"]
            for d in stored
            if d["status_id"] == 2
            and low <= d["total_amount_gross"] <= high
            and dt.date(2026, 1, 20) <= d["date"] <= dt.date(2026, 3, 31)
        ]
        got = [
            d.id
            async for d in intum.deals.list(
                status_id=2,
                total_amount_gross_from=low,
                total_amount_gross_to=high,
                main_date_from="2026-01-20",
                main_date_to=dt.date(2026, 3, 31),
                client_id=None,
            )
        ]
        assert got == expected and got
        assert emu.requests("list")[0].query["total_amount_gross_to"] == "60000.00"
        assert [d.name async for d in intum.deals.list(q="deal 11")] == [
            "Deal 11",
            *(f"Deal {n}" for n in range(110, 120)),
        ]


@contextlib.asynccontextmanager
async def scripted_server(answers: dict[str, list[tuple[int, bytes]]]) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that answers ``"METHOD /path?query"`` with the next
    scripted ``(status, body)`` for it (query keys sorted), 500 when none is left."""

    async def answer(request: web.Request) -> web.Response:
        query = "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
        queue = answers.get(f"{request.method} {request.path}{'?' if query else ''}{query}")
        status, body = queue.pop(0) if queue else (500, b"{}")
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def page(ids: range) -> tuple[int, bytes]:
    return 200, json.dumps([{"id": i, "total_amount_net": "1.00"} for i in ids]).encode()


async def test_list_drops_duplicates() -> None:
    listing = "GET /crm/deals.json?page={}&per_page=100"
    answers = {
        # An insertion while paging shifted deals 51-100 into page 2.
        listing.format(1): [page(range(1, 101))],
        listing.format(2): [page(range(51, 151))],
        listing.format(3): [page(range(1, 1))],
    }
    async with (
        scripted_server(answers) as url,
        IntumClient(base_url=url, token=CANARY, retry=FAST_RETRY) as intum,
    ):
        pull = intum.deals.list()
        assert [d.id async for d in pull] == list(range(1, 151))
        assert pull.stats.duplicates_dropped == 50


async def test_list_detects_a_server_that_ignores_paging() -> None:
    listing = "GET /crm/deals.json?page={}&per_page=100"
    answers = {listing.format(n): [page(range(1, 101))] for n in (1, 2)}
    async with (
        scripted_server(answers) as url,
        IntumClient(base_url=url, token=CANARY, retry=FAST_RETRY) as intum,
    ):
        with pytest.raises(ResponseError, match="ignore page"):
            _ = [d async for d in intum.deals.list()]


# -- item 32: no duplicate deals from retries ----------------------------------------


async def test_dropped_create_answer_is_settled_by_external_id(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["drop"])
    created = await intum.deals.create(new_deal(external_id="order-17"))
    assert len(intum_emu.deals) == 1
    assert created.id == intum_emu.deals[0]["id"]
    assert created.external_id == "order-17"
    assert str(created.total_amount_gross) == "12300.10"
    assert [(r.route, r.status, r.fault) for r in intum_emu.log] == [
        ("create", None, "drop"),
        ("get_by_external_id", 200, None),
    ]
    assert intum_emu.log[1].path == f"/crm/deals/e/{DEFAULT_APP_CODE}/order-17.json"


async def test_dropped_create_without_external_id_is_not_retried(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["drop"])
    with pytest.raises(TransportError) as info:
        await intum.deals.create(new_deal())
    assert info.value.ambiguous
    assert len(intum_emu.deals) == 1
    assert count(intum_emu, "create") == 1


async def test_5xx_on_create_is_not_retried_blindly(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["503"])
    with pytest.raises(ServerError) as info:
        await intum.deals.create(new_deal())
    assert info.value.ambiguous and info.value.status == 503
    assert count(intum_emu, "create") == 1
    assert intum_emu.deals == []


async def test_create_that_never_took_effect_is_sent_once_more(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["reset"])
    created = await intum.deals.create(new_deal(external_id="order-18"))
    assert len(intum_emu.deals) == 1 and created.id == intum_emu.deals[0]["id"]
    assert [(r.route, r.status) for r in intum_emu.log] == [
        ("create", None),
        ("get_by_external_id", 404),
        ("create", 201),
    ]


async def test_second_lost_answer_is_settled_too(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["503", "drop"])
    created = await intum.deals.create(new_deal(external_id="order-19"))
    assert len(intum_emu.deals) == 1 and created.id == intum_emu.deals[0]["id"]
    assert [(r.route, r.status) for r in intum_emu.log] == [
        ("create", 503),
        ("get_by_external_id", 404),
        ("create", None),
        ("get_by_external_id", 200),
    ]


async def test_gives_up_after_two_creates(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    intum_emu.faults.script("create", ["503", "503", "503"])
    with pytest.raises(ServerError) as info:
        await intum.deals.create(new_deal(external_id="order-20"))
    assert info.value.ambiguous
    assert count(intum_emu, "create") == 2
    assert intum_emu.deals == []


async def test_failed_lookup_raises_the_ambiguous_create_error(
    intum: IntumClient, intum_emu: IntumEmulator
) -> None:
    intum_emu.faults.script("create", ["drop"])
    intum_emu.faults.script("get_by_external_id", ["401"])
    with pytest.raises(TransportError) as info:
        await intum.deals.create(new_deal(external_id="order-21"))
    assert info.value.ambiguous
    assert isinstance(info.value.__cause__, AuthenticationError)
    assert count(intum_emu, "create") == 1 and len(intum_emu.deals) == 1


async def test_unreadable_create_answer_is_settled_by_external_id() -> None:
    found = {"id": 7, "external_id": "order-22", "total_amount_net": 1, "total_amount_gross": 1}
    answers = {
        "POST /crm/deals.json": [(201, b"<html>")],
        f"GET /crm/deals/e/{DEFAULT_APP_CODE}/order-22.json": [(200, json.dumps(found).encode())],
    }
    async with (
        scripted_server(answers) as url,
        IntumClient(base_url=url, token=CANARY, retry=FAST_RETRY) as intum,
    ):
        created = await intum.deals.create(new_deal(external_id="order-22"))
    assert created.id == 7
    assert answers == {
        "POST /crm/deals.json": [],
        f"GET /crm/deals/e/{DEFAULT_APP_CODE}/order-22.json": [],
    }


# -- transient failures of reads ------------------------------------------------------


async def test_reads_are_retried(intum: IntumClient, intum_emu: IntumEmulator) -> None:
    created = await intum.deals.create(new_deal())
    intum_emu.faults.script("get", ["503", "429", "drop"])
    assert await intum.deals.get(created.id or 0) == created
    assert [r.status for r in intum_emu.requests("get")] == [503, 429, None, 200]


async def test_a_hanging_answer_is_retried() -> None:
    async with (
        IntumEmulator() as emu,
        IntumClient(
            base_url=emu.url,
            token=emu.token,
            retry=FAST_RETRY,
            timeout=Timeouts(connect=1.0, sock_read=0.2, total=0.5),
        ) as intum,
    ):
        created = await intum.deals.create(new_deal())
        emu.faults.script("get", ["hang"])
        assert await intum.deals.get(created.id or 0) == created
        assert count(emu, "get") == 2


async def test_a_slow_create_is_ambiguous_and_not_resent() -> None:
    async with (
        IntumEmulator(faults=IntumFaults(latency=0.5)) as emu,
        IntumClient(
            base_url=emu.url,
            token=emu.token,
            retry=FAST_RETRY,
            timeout=Timeouts(connect=1.0, sock_read=0.1, total=0.2),
        ) as intum,
    ):
        with pytest.raises(TransportError) as info:
            await intum.deals.create(new_deal())
        assert info.value.ambiguous
        assert count(emu, "create") == 1


# -- configuration and secrets ----------------------------------------------------------


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTUM_ACCOUNT", "INTUM_TOKEN", "INTUM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="no intum account"):
        IntumClient(token=CANARY)
    with pytest.raises(ValueError, match="no API token"):
        IntumClient(account="acme")
    with pytest.raises(ValueError, match="is not a host name"):
        IntumClient(account="acme.evil.com/", token=CANARY)
    with pytest.raises(ValueError, match="app_code"):
        IntumClient(account="acme", token=CANARY, app_code="../x")
    monkeypatch.setenv("INTUM_ACCOUNT", "acme")
    monkeypatch.setenv("INTUM_TOKEN", CANARY)
    client = IntumClient()
    assert client.base_url == "https://acme.intum.com"
    assert client.app_code == DEFAULT_APP_CODE
    assert client.transport.auth_headers() == {"Authorization": f"Bearer {CANARY}"}
    monkeypatch.setenv("INTUM_BASE_URL", "http://127.0.0.1:9")
    assert IntumClient(app_code="shop").base_url == "http://127.0.0.1:9"


async def test_token_never_shows(
    intum_emu: IntumEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with IntumClient(base_url=intum_emu.url, token=CANARY, retry=FAST_RETRY) as intum:
        seen += [repr(intum), str(intum), repr(intum.transport), repr(intum.deals)]
        with pytest.raises(TypeError):
            pickle.dumps(intum)
        intum_emu.faults.script("create", ["drop"])
        errors: list[CCRMError] = []
        for call in (
            intum.deals.create(new_deal()),
            intum.deals.get(404),
            intum.deals.create(new_deal(tax=None)),
        ):
            try:
                await call
            except CCRMError as exc:
                errors.append(exc)
    async with IntumClient(base_url=intum_emu.url, token="wrong-token", retry=FAST_RETRY) as bad:
        try:
            await bad.deals.get(1)
        except AuthenticationError as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [
        TransportError,
        NotFoundError,
        ValidationError,
        AuthenticationError,
    ]
    for error in errors:
        seen += [str(error), repr(error), "".join(traceback.format_exception(error))]
        seen.append(repr(pickle.loads(pickle.dumps(error))))
    seen.append(caplog.text)
    assert caplog.text  # the debug log did run
    for text in seen:
        assert CANARY not in text
