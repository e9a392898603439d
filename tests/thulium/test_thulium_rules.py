"""The pure decisions behind the endpoint: query parsing, access control, the
distinct-numbers limit (RELIABILITY 29, the pure part)."""

from __future__ import annotations

import base64
import contextlib
import hmac

import pytest
from _thulium_fixtures import log_scan  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_async.thulium import AccessControl, DistinctNumberLimiter
from ccrm_async.thulium import access as access_module
from ccrm_async.thulium.access import basic_auth_matches, ip_allowed, parse_networks
from ccrm_async.thulium.query import QueryError, phone_parameter

# -- the query string ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("phone_number=600100200", "600100200"),
        ("phone_number=+48600100200", "+48600100200"),  # a literal + at the start stays
        ("phone_number=%2B48600100200", "+48600100200"),
        ("phone_number=600+100+200", "600 100 200"),  # form-encoded spaces
        ("phone_number=600%20100%20200", "600 100 200"),
        ("a=1&phone_number=600100200&b=2", "600100200"),
        ("phone%5Fnumber=600100200", "600100200"),
        ("phone_number=%D9%A6%D9%A0", "\u0666\u0660"),
        ("phone_number=%ZZ", "%ZZ"),  # left for the normaliser to refuse
        ("phone_number=+", "+"),  # likewise
    ],
)
def test_phone_parameter(query: str, value: str) -> None:
    assert phone_parameter(query) == value


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "required"),
        ("phone=600100200", "required"),
        ("phone_number", "empty"),
        ("phone_number=", "empty"),
        ("phone_number=1&phone_number=2", "more than once"),
        ("phone_number=%FF%FE", "not UTF-8"),
    ],
)
def test_phone_parameter_refused(query: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        phone_parameter(query)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=60))
def test_any_query_string_parses_or_raises_query_error(query: str) -> None:
    with contextlib.suppress(QueryError):
        phone_parameter(query)


# -- access control ---------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth() -> None:
    assert basic_auth_matches(_basic("thulium", "s3cret"), "thulium", "s3cret")
    assert not basic_auth_matches(_basic("thulium", "s3cre"), "thulium", "s3cret")
    assert not basic_auth_matches(_basic("thulium2", "s3cret"), "thulium", "s3cret")
    assert not basic_auth_matches(None, "thulium", "s3cret")
    assert not basic_auth_matches("Bearer abc", "thulium", "s3cret")
    assert not basic_auth_matches("Basic !!!not-base64", "thulium", "s3cret")
    assert basic_auth_matches("basic " + _basic("u", "p:q")[6:], "u", "p:q")


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access_module.hmac, "compare_digest", spy)
    control = AccessControl(basic_user="thulium", basic_password="s3cret", path_token="t" * 24)
    assert control.decide("127.0.0.1", _basic("x", "y"), "wrong") == 403
    # The token, the user and the password: all three compared, even after a mismatch.
    assert len(calls) == 3


def test_decide() -> None:
    token = "tok-" + "x" * 28
    control = AccessControl(
        allow_ips=["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
        basic_user="thulium",
        basic_password="s3cret",
        path_token=token,
    )
    good = _basic("thulium", "s3cret")
    assert control.decide("10.1.2.3", good, token) is None
    assert control.decide("::ffff:10.1.2.3", good, token) is None
    assert control.decide("2001:db8::1", good, token) is None
    assert control.decide("192.0.2.8", good, token) == 403
    assert control.decide(None, good, token) == 403
    assert control.decide("10.1.2.3", None, token) == 401
    assert control.decide("10.1.2.3", good, None) == 403
    assert control.decide("10.1.2.3", good, token[:-1]) == 403
    assert AccessControl().open and AccessControl().decide(None, None, None) is None
    assert "s3cret" not in repr(control) and token not in repr(control)


def test_access_control_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="go together"):
        AccessControl(basic_user="thulium")
    with pytest.raises(ValueError, match="at least 16"):
        AccessControl(path_token="short")
    with pytest.raises(ValueError, match="not an IP"):
        AccessControl(allow_ips=["10.0.0.0/33"])
    assert parse_networks("192.0.2.7") == parse_networks(["192.0.2.7/32"])
    assert not ip_allowed("not an ip", parse_networks(["0.0.0.0/0"]))


# -- the distinct-numbers limit ----------------------------------------------------------------


def test_limiter_counts_distinct_numbers_in_a_sliding_window() -> None:
    limiter = DistinctNumberLimiter(3, window=60.0)
    for second, key in enumerate(["+48600000001", "+48600000002", "+48600000003"]):
        assert limiter.allow("a", key, float(second))
    assert not limiter.allow("a", "+48600000004", 10.0)
    assert limiter.allow("a", "+48600000002", 10.0)  # asked again: free
    assert limiter.allow("b", "+48600000004", 10.0)  # another source
    assert limiter.retry_after("a", 10.0) == 50
    assert not limiter.allow("a", "+48600000004", 59.9)
    assert limiter.allow("a", "+48600000004", 60.0)  # the first one left the window
    assert not limiter.allow("a", "+48600000005", 60.5)


def test_limiter_forgets_the_least_recent_source() -> None:
    limiter = DistinctNumberLimiter(1, max_sources=2)
    assert limiter.allow("a", "k1", 0.0)
    assert limiter.allow("b", "k1", 0.0)
    assert limiter.allow("c", "k1", 0.0)  # "a" forgotten
    assert limiter.allow("a", "k2", 1.0)
    with pytest.raises(ValueError):
        DistinctNumberLimiter(0)
