"""intum deals without a socket: the model, the rules, the wire format, the error map."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

import ccrm_async.intum
from ccrm_async import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    ValidationError,
)
from ccrm_async.intum import Deal, deal_problems, validate_changes, validate_deal
from ccrm_async.intum import _wire as wire
from ccrm_async.intum.validation import filter_params, validate_external_ref, validate_id


def valid(**changes: Any) -> Deal:
    base = Deal(
        name="Wdrożenie systemu CRM",
        total_amount_net=Decimal("10000.00"),
        total_amount_gross=Decimal("12300.00"),
        tax="23",
        currency="PLN",
        client_id=123,
        status_id=1,
        date=dt.date(2026, 3, 15),
    )
    return attrs.evolve(base, **changes)


def test_public_names_are_sorted_and_exist() -> None:
    names = ccrm_async.intum.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for name in names:
        assert hasattr(ccrm_async.intum, name)


# -- the model ---------------------------------------------------------------------


def test_deal_converts_the_obvious_spellings() -> None:
    deal = Deal(
        id="17",
        total_amount_net="10000.00",
        total_amount_gross=12300,
        tax=23,
        date="2026-03-15",
        date_to=dt.datetime(2026, 4, 1, 12, 30),
        client_id="123",
        fields={"source": "web"},
    )
    assert deal.id == 17
    assert deal.total_amount_net == Decimal("10000.00")
    assert str(deal.total_amount_net) == "10000.00"
    assert deal.total_amount_gross == Decimal(12300)
    assert deal.tax == "23"
    assert deal.date == dt.date(2026, 3, 15)
    assert deal.date_to == dt.date(2026, 4, 1)
    assert deal.client_id == 123
    assert hash(deal) == hash(attrs.evolve(deal, fields={"other": 1}))  # fields not hashed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("total_amount_net", 10000.0),  # a float cannot hold cents exactly
        ("total_amount_gross", True),
        ("total_amount_net", "ten"),
        ("date", "15.03.2026"),
        ("date_from", 20260315),
        ("client_id", -1),
        ("status_id", "1a"),
        ("id", 0),
        ("name", ["a"]),
        ("fields", ["not", "a", "mapping"]),
    ],
)
def test_deal_refuses_a_bad_value_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        Deal(**{field: value})
    assert info.value.field == field
    assert info.value.status is None


def test_deal_is_frozen() -> None:
    deal = valid()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        deal.name = "x"  # type: ignore[misc]


# -- the rules ---------------------------------------------------------------------


def test_a_valid_deal_passes() -> None:
    validate_deal(valid())
    for closed in ("win", "lost", "", None):
        validate_deal(valid(closed=closed))
    validate_deal(valid(total_amount_net=Decimal("0"), total_amount_gross=Decimal("0")))
    validate_deal(
        valid(
            total_amount_net=Decimal("999999999999.99"),
            total_amount_gross=Decimal("999999999999.99"),
        )
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"total_amount_net": None}, "total_amount_net", "is required"),
        ({"total_amount_gross": None}, "total_amount_gross", "is required"),
        ({"tax": None}, "tax", "is required"),
        ({"tax": "  "}, "tax", "is required"),
        (
            {"total_amount_net": Decimal("1e12"), "total_amount_gross": Decimal("1e12")},
            "total_amount_net",
            "must be below 1e12",
        ),
        ({"total_amount_gross": Decimal("1000000000000.00")}, "total_amount_gross", "below 1e12"),
        ({"total_amount_net": Decimal("-1e13")}, "total_amount_net", "below 1e12"),
        ({"total_amount_gross": Decimal("9999.99")}, "total_amount_gross", "greater than or equal"),
        ({"total_amount_net": Decimal("NaN")}, "total_amount_net", "finite"),
        ({"closed": "open"}, "closed", "win, lost or empty"),
        ({"closed": "WIN"}, "closed", "win, lost or empty"),
    ],
)
def test_each_rule(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_deal(valid(**changes))
    error = info.value
    assert error.field == field
    assert isinstance(error.errors, dict)
    assert any(message in m for m in error.errors[field])
    assert message in str(error)
    assert error.status is None


def test_every_problem_is_reported_at_once() -> None:
    problems = deal_problems({"closed": "maybe"})
    assert set(problems) == {"total_amount_net", "total_amount_gross", "tax", "closed"}


def test_rules_read_wire_values_too() -> None:
    # What the emulator receives: amounts as Decimal, int or numeric strings.
    wire_deal = {
        "total_amount_net": "100.00",
        "total_amount_gross": 123,
        "tax": "23",
        "date": "2026-03-15",
        "client_id": "7",
    }
    assert deal_problems(wire_deal) == {}
    assert deal_problems({**wire_deal, "total_amount_net": "1e3"}) == {
        "total_amount_gross": ["must be greater than or equal to total_amount_net"]
    }
    assert deal_problems({**wire_deal, "total_amount_net": "abc"}) == {
        "total_amount_net": ["is not a number"]
    }
    assert deal_problems({**wire_deal, "date": "March"}) == {
        "date": ["must be a date in the form YYYY-MM-DD"]
    }
    assert "client_id" in deal_problems({**wire_deal, "client_id": "x"})


def test_changes_are_checked_partially() -> None:
    assert validate_changes({"total_amount_net": "5.10"}) == {"total_amount_net": Decimal("5.10")}
    assert validate_changes({"closed": "win", "description": None}) == {
        "closed": "win",
        "description": None,
    }
    for changes, field in [
        ({"tax": ""}, "tax"),
        ({"total_amount_gross": None}, "total_amount_gross"),
        ({"total_amount_net": 10, "total_amount_gross": 9}, "total_amount_gross"),
        ({"total_amount_net": Decimal("1e12")}, "total_amount_net"),
        ({"closed": "yes"}, "closed"),
        ({"colour": "red"}, "colour"),
        ({"id": 5}, "id"),
        ({"date": "tomorrow"}, "date"),
    ]:
        with pytest.raises(ValidationError) as info:
            validate_changes(changes)
        assert info.value.field == field
    with pytest.raises(ValidationError, match="no changes"):
        validate_changes({})


def test_filters() -> None:
    assert filter_params(
        {
            "q": "CRM",
            "status_id": 1,
            "client_id": "12",
            "main_date_from": dt.date(2026, 1, 1),
            "main_date_to": "2026-12-31",
            "total_amount_gross_from": Decimal("0.50"),
            "total_amount_gross_to": 1000,
            "project_id": None,
        }
    ) == {
        "q": "CRM",
        "status_id": "1",
        "client_id": "12",
        "main_date_from": "2026-01-01",
        "main_date_to": "2026-12-31",
        "total_amount_gross_from": "0.50",
        "total_amount_gross_to": "1000",
    }
    for filters, field in [
        ({"name": "x"}, "name"),
        ({"page": 2}, "page"),
        ({"per_page": 10}, "per_page"),
        ({"status_id": "one"}, "status_id"),
        ({"q": 5}, "q"),
        ({"main_date_from": "01/01/2026"}, "main_date_from"),
        ({"total_amount_gross_to": 1.5}, "total_amount_gross_to"),
        ({"main_date_from": "2026-02-01", "main_date_to": "2026-01-01"}, "main_date_from"),
        ({"total_amount_gross_from": 10, "total_amount_gross_to": 9}, "total_amount_gross_from"),
    ]:
        with pytest.raises(ValidationError) as info:
            filter_params(filters)
        assert info.value.field == field


def test_ids_and_external_refs() -> None:
    assert validate_id("42") == 42
    for bad in (0, -3, "4 2", None, 1.0, True):
        with pytest.raises(ValidationError):
            validate_id(bad)
    assert validate_external_ref("shop_1", 99) == ("shop_1", "99")
    for app_code, external_id in [
        ("", "a"),
        ("..", "a"),
        ("a/b", "a"),
        ("app", ""),
        ("app", "x" * 256),
        ("app", "line\nbreak"),
    ]:
        with pytest.raises(ValidationError):
            validate_external_ref(app_code, external_id)


# -- the wire ----------------------------------------------------------------------


def test_money_goes_out_as_the_exact_number() -> None:
    deal = valid(
        total_amount_net=Decimal("12345678901.23456789"),
        total_amount_gross=Decimal("12345678901.23456789"),
        fields={"discount": Decimal("0.10"), "when": dt.date(2026, 1, 2)},
    )
    body = orjson.dumps({"deal": wire.deal_to_wire(deal)})
    assert b'"total_amount_net":12345678901.23456789' in body
    assert b'"discount":0.10' in body
    assert b'"date":"2026-03-15"' in body
    assert b'"id"' not in body
    assert b"description" not in body  # unset fields are not sent
    decoded = json.loads(body, parse_float=Decimal)["deal"]
    assert str(decoded["total_amount_net"]) == "12345678901.23456789"
    assert float(decoded["total_amount_net"]) != decoded["total_amount_net"]  # a float would lose
    assert wire.changes_to_wire({"description": None}) == {"description": None}
    with pytest.raises(ValueError, match="no JSON form"):
        wire.to_json({"x": object()})


def test_deals_are_read_leniently() -> None:
    body = json.dumps(
        {
            "deal": {
                "id": "5",
                "name": "A",
                "total_amount_net": "12300.10",
                "total_amount_gross": 15129.12,
                "tax": 23,
                "closed": "WIN",
                "date": "2026-03-15T10:00:00.000+01:00",
                "date_from": "",
                "client_id": "not a number",
                "fields": {"a": 1},
                "created_at": "2026-03-15T10:00:00Z",
                "brand_new_field": [1, 2],
            }
        }
    ).encode()
    deal = wire.parse_deal(body)
    assert deal.id == 5
    assert str(deal.total_amount_net) == "12300.10"
    assert str(deal.total_amount_gross) == "15129.12"
    assert deal.tax == "23"
    assert deal.closed == "WIN"  # what the server says is kept
    assert deal.date == dt.date(2026, 3, 15)
    assert deal.date_from is None
    assert deal.client_id is None  # unreadable: dropped, the deal still parses
    assert deal.fields == {"a": 1}


def test_lists_bare_or_wrapped() -> None:
    assert [d.id for d in wire.parse_deals(b'[{"id": 1}, {"deal": {"id": 2}}]')] == [1, 2]
    assert [d.id for d in wire.parse_deals(b'{"deals": [{"id": 3}]}')] == [3]
    assert wire.parse_deals(b"[]") == []
    with pytest.raises(ResponseError):
        wire.parse_deals(b'{"id": 1}')
    with pytest.raises(ResponseError):
        wire.parse_deals(b"[1, 2]")
    with pytest.raises(ResponseError) as info:
        wire.parse_deals(b"<html>502</html>")
    assert info.value.transient


def test_a_broken_create_answer_is_ambiguous() -> None:
    for body in (b"", b"<html>", b"[]"):
        with pytest.raises(ResponseError) as info:
            wire.parse_created(body)
        assert info.value.ambiguous
    assert wire.parse_updated(b"") is None


def test_lookup_path_is_encoded() -> None:
    assert wire.external_path("shop", "a/b c?") == "/crm/deals/e/shop/a%2Fb%20c%3F.json"


# -- the error map ----------------------------------------------------------------


def err(status: int, payload: Any = None, **kw: Any) -> Any:
    body = json.dumps(payload).encode() if payload is not None else b""
    return wire.error_for_status(status, body, method="POST", path="/crm/deals.json", **kw)


def test_error_map() -> None:
    assert err(200) is None and err(204) is None
    assert isinstance(err(401, {"code": "error", "message": "Unauthorized"}), AuthenticationError)
    assert isinstance(err(401), AuthenticationError)
    assert isinstance(err(403), PermissionDeniedError)
    assert isinstance(err(404), NotFoundError)
    limited = err(429, retry_after=3.0)
    assert isinstance(limited, RateLimitError) and limited.retry_after == 3.0
    assert isinstance(err(500), ServerError) and isinstance(err(503), ServerError)
    assert isinstance(err(418), ResponseError)


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "error", "message": {"total_amount_net": ["can't be blank"]}},
        {"errors": {"total_amount_net": ["can't be blank"]}},
        {"errors": {"total_amount_net": "can't be blank"}},
    ],
)
def test_422_carries_the_servers_messages(payload: Any) -> None:
    error = err(422, payload)
    assert isinstance(error, ValidationError)
    assert error.status == 422
    assert error.field == "total_amount_net"
    assert error.errors == {"total_amount_net": ["can't be blank"]}
    assert "total_amount_net can't be blank" in str(error)


def test_error_messages_are_one_bounded_line() -> None:
    error = err(422, {"error": "bad\r\ninput " + "x" * 500})
    assert isinstance(error, ValidationError)
    assert "\n" not in str(error) and "\r" not in str(error)
    assert len(error.message) <= 201
    plain = err(400, {"errors": ["deal is missing"]})
    assert isinstance(plain, ValidationError)
    assert plain.errors == {"base": ["deal is missing"]} and plain.field is None
    assert "deal is missing" in str(plain)
