import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_async import (
    AuthenticationError,
    CallRecord,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
    ValidationError,
)
from ccrm_async._core.responses import error_for_status, is_rate_limit_message, parse_envelope
from ccrm_async.parsing import parse_page

from conftest import sample_bytes

RATE_LIMIT = b'{"success":false,"message":"Request limit has been exceeded"}'


def test_rate_limit_is_recognised_by_its_message() -> None:
    assert is_rate_limit_message("Request limit has been exceeded")
    assert is_rate_limit_message("REQUEST LIMIT EXCEEDED")
    assert not is_rate_limit_message("Access denied")


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, b'{"success":false,"message":"Unauthorized"}', AuthenticationError),
        (403, RATE_LIMIT, RateLimitError),
        (403, b'{"success":false,"message":"Access denied"}', PermissionDeniedError),
        (403, b"<html>forbidden</html>", PermissionDeniedError),
        (404, b"", NotFoundError),
        (400, b'{"success":false,"message":"bad date"}', ValidationError),
        (422, b'{"errors":{"tax":["required"]}}', ValidationError),
        (429, b"", RateLimitError),
        (500, b"", ServerError),
        (503, b"<html>", ServerError),
        (302, b"", ResponseError),
    ],
)
def test_status_map(status: int, body: bytes, cls: type[Exception]) -> None:
    error = error_for_status(status, body, method="GET", path="/publicApi/x")
    assert type(error) is cls
    assert error is not None and error.status == status
    assert "GET /publicApi/x" in str(error)


def test_2xx_is_not_an_error() -> None:
    assert error_for_status(200, b"") is None


def test_server_message_is_one_bounded_line() -> None:
    body = orjson.dumps({"message": "a\r\nb" + "x" * 500})
    error = error_for_status(400, body)
    assert error is not None
    assert "\n" not in str(error) and "\r" not in str(error)
    assert len(error.message) <= 201


def test_validation_error_carries_server_details() -> None:
    error = error_for_status(422, b'{"message":"invalid","errors":{"tax":["required"]}}')
    assert isinstance(error, ValidationError) and error.errors == {"tax": ["required"]}


def test_envelope_of_the_seed_sample() -> None:
    envelope = parse_envelope(sample_bytes("call_history_page.json"))
    assert envelope.total_count == 8437 and envelope.message == "OK"
    assert len(envelope.data) == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"success":true,"data":[{"uuid":"a"',  # truncated
        b"<html><body>502</body></html>",
        b'{"success":false,"data":[],"message":"err"}',
        b'{"success":true,"data":{"error":"x"},"otherData":{"totalCount":1}}',
        b'{"success":true,"data":"OK","otherData":{"totalCount":1}}',
        b"[]",
        b"null",
    ],
)
def test_bad_200s_are_response_errors(body: bytes) -> None:
    """RELIABILITY 6: never an empty result, never records."""
    with pytest.raises(ResponseError):
        parse_page(body, CallRecord, 1)


def test_php_answers_are_pages() -> None:
    """RELIABILITY 37: ``"data": {}`` is PHP's empty list, a missing totalCount
    is paged until a short page, and a record without uuid is rejected alone."""
    empty = parse_page(b'{"success":true,"data":{},"otherData":{"totalCount":0}}', CallRecord, 1)
    assert (empty.records, empty.total) == ([], 0)
    untotalled = parse_page(b'{"success":true,"data":[]}', CallRecord, 1)
    assert (untotalled.records, untotalled.total) == ([], None)
    body = b'{"success":true,"data":[{"no":"uuid"}],"otherData":{"totalCount":1}}'
    page = parse_page(body, CallRecord, 1)
    assert page.records == [] and [r.path for r in page.rejected] == ["uuid"]


def test_undecodable_bodies_are_transient() -> None:
    with pytest.raises(ResponseError) as info:
        parse_envelope(b"<html>")
    assert info.value.transient
    with pytest.raises(ResponseError) as info:
        parse_envelope(b'{"success":false}')
    assert not info.value.transient


@settings(max_examples=5000, deadline=None)
@given(st.binary(max_size=200))
def test_page_parser_raises_only_response_error(data: bytes) -> None:
    """RELIABILITY 6: 5,000 random byte strings through the page parser."""
    with contextlib.suppress(ResponseError):
        parse_page(data, CallRecord, 1)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["uuid", "callDate", "callDirection", "note", "duration", "flags", "to"]),
        st.none()
        | st.integers(-(2**53), 2**53)
        | st.text(max_size=5)
        | st.lists(st.integers(0, 9), max_size=2),
    )
)
def test_odd_records_raise_only_response_error(record: dict[str, object]) -> None:
    body = orjson.dumps({"success": True, "data": [record], "otherData": {"totalCount": 1}})
    with contextlib.suppress(ResponseError):
        parse_page(body, CallRecord, 1)
