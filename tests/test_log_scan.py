"""The suite-wide log scan of conftest.py (RELIABILITY 35) finds what it must."""

import logging

import pytest

from conftest import personal_data_in


def fake_pesel() -> str:
    digits = "9001011234"
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    check = (10 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 10) % 10
    return digits + str(check)


@pytest.mark.parametrize(
    "message",
    [
        f"person {fake_pesel()} looked up",
        "calling +48 600 100 200",
        "calling 600100200",
        "calling 0048-600-100-200",
        "mail to someone@example.com",
        "an input with\na line break",
    ],
)
def test_personal_data_is_found(message: str) -> None:
    assert personal_data_in(message)


@pytest.mark.parametrize(
    "message",
    [
        "GET /publicApi/notes -> 200 (attempt 1)",
        "export job 2e7e6cd2-6d0d-4e99-b043-79429316858f created",
        "phone ********200 -> 404",
        "pulled 20000 calls in 31 pages",
    ],
)
def test_ordinary_messages_pass(message: str) -> None:
    assert personal_data_in(message) == []


def test_the_library_logs_are_captured(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("ccrm_async.anything").debug("a debug line")
    assert [r.getMessage() for r in caplog.get_records("call")] == ["a debug line"]
