from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_async import ValidationError
from ccrm_async._core.dates import WIRE_FORMAT, date_range, format_datetime, parse_datetime


def test_strings_dates_and_datetimes() -> None:
    assert date_range("2024-01-01 08:00:00", "2024-01-31 23:59:59") == (
        "2024-01-01 08:00:00",
        "2024-01-31 23:59:59",
    )
    assert date_range(date(2024, 1, 1), date(2024, 1, 2)) == (
        "2024-01-01 00:00:00",
        "2024-01-02 23:59:59",
    )
    assert date_range("2024-01-01", datetime(2024, 1, 1, 12, 30, 5, 999)) == (
        "2024-01-01 00:00:00",
        "2024-01-01 12:30:05",
    )


def test_from_after_to_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        date_range("2024-02-01", "2024-01-01")
    assert info.value.field == "date_from"
    assert info.value.status is None


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01 00:00:00", "2024/01/01", 20240101])
def test_unreadable_dates(bad: object) -> None:
    with pytest.raises(ValidationError):
        date_range(bad, "2024-01-01")  # type: ignore[arg-type]


def test_parse_wire_format() -> None:
    assert parse_datetime("2022-12-29 11:24:57") == datetime(2022, 12, 29, 11, 24, 57)


def test_aware_values_in_the_account_zone() -> None:
    from datetime import UTC, timedelta, timezone

    cet = timezone(timedelta(hours=1))
    start = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
    assert date_range(start, "2024-01-01 12:00:00", tz=cet) == (
        "2024-01-01 08:00:00",
        "2024-01-01 12:00:00",
    )
    with pytest.raises(ValidationError, match="naive"):
        date_range(start, "2024-01-01 12:00:00")  # no zone to convert to


@settings(max_examples=300)
@given(st.datetimes(timezones=st.none() | st.timezones()))
def test_format_datetime_is_strftime_of_the_wire_format(value: datetime) -> None:
    """The fast path (isoformat) writes exactly what strftime writes."""
    assert format_datetime(value) == value.strftime(WIRE_FORMAT)
