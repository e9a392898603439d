"""Phone normalisation (RELIABILITY 31, the pure part): one key per number."""

from __future__ import annotations

import re
import unicodedata

import pytest
from _thulium_fixtures import log_scan  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_async import ValidationError
from ccrm_async.thulium import (
    PhoneNumberError,
    display_phone,
    mask_phone,
    normalize_phone,
    try_normalize_phone,
)
from ccrm_async.thulium.phones import MAX_INPUT_LENGTH

KEY = re.compile(r"\+[1-9]\d{6,14}")

# Scripts whose digits are decimal digits: ASCII, Arabic-Indic, Devanagari, full-width.
ZEROS = ("0", "\u0660", "\u0966", "\uff10")


@pytest.mark.parametrize(
    "text",
    [
        "600100200",
        "600 100 200",
        "600-100-200",
        "600.100.200",
        "+48600100200",
        "+48 600 100 200",
        "+48 (600) 100-200",
        "(+48) 600 100 200",
        "0048600100200",
        "0048 600 100 200",
        "48600100200",
        "48 600 100 200",
        "0600100200",
        " 600 100 200 ",
        "600\u00a0100\u2013200",
        "\uff0b48 600 100 200",
        "\u0666\u0660\u0660\u0661\u0660\u0660\u0662\u0660\u0660",
        "\uff16\uff10\uff10\uff11\uff10\uff10\uff12\uff10\uff10",
    ],
)
def test_polish_forms_share_one_key(text: str) -> None:
    assert normalize_phone(text) == "+48600100200"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+1 (202) 555-0143", "+12025550143"),
        ("+420 601 234 567", "+420601234567"),
        ("(22) 123 45 67", "+48221234567"),
        ("0 22 123 45 67", "+48221234567"),
        ("123975300", "+48123975300"),  # the seed's example request
    ],
)
def test_other_forms(text: str, key: str) -> None:
    assert normalize_phone(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "600 100 2OO",  # letter O
        "600100200 wew. 12",
        "600²100200",  # a digit, but not a decimal one
        "+48 600 100 20",
        "+48 600 100 2000",
        "+48+600100200",
        "600+100200",
        "12345",
        "6001002001",
        "+0 600 100 200",
        "+1234",
        "+1234567890123456",
        "*600#100200",
        "600\x00100200",
        "1" * (MAX_INPUT_LENGTH + 1),
        " " * 30 + "600100200",
    ],
)
def test_not_phone_numbers(text: str) -> None:
    with pytest.raises(PhoneNumberError) as caught:
        normalize_phone(text)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == "phone_number"
    assert try_normalize_phone(text) is None
    if len(text) > 3:  # the message never repeats the input
        assert text.strip() not in str(caught.value)


def test_display_and_mask() -> None:
    assert display_phone("+48600100200") == "600100200"
    assert display_phone("+442079460958") == "+442079460958"
    assert mask_phone("+48600100200") == "********200"
    assert mask_phone("+442079460958") == "*********958"
    assert mask_phone("12") == "12"


# -- properties ---------------------------------------------------------------------

separators = st.sampled_from(["", "", "", " ", "-", ".", "\u00a0", "\u2013", "/"])


@st.composite
def polish_forms(draw: st.DrawFn) -> tuple[str, str]:
    """(9 national digits, the same number written some way people write it)."""
    national = draw(
        st.text(alphabet="0123456789", min_size=9, max_size=9).filter(
            lambda d: not d.startswith("0")
        )
    )
    zero = draw(st.sampled_from(ZEROS))
    digits = "".join(chr(ord(zero) + int(d)) for d in national)
    body = "".join(d + draw(separators) for d in digits).rstrip(" -.\u00a0\u2013/")
    prefix = draw(st.sampled_from(["", "+48", "+48 ", "0048", "0048 ", "48", "(+48) ", "+ 48 "]))
    wrapped = draw(st.sampled_from(["{}", " {} ", "({})"]))
    return national, wrapped.format(prefix + body)


@settings(max_examples=500, deadline=None)
@given(polish_forms())
def test_equivalent_forms_give_one_key(form: tuple[str, str]) -> None:
    national, text = form
    if len(text) > MAX_INPUT_LENGTH:
        with pytest.raises(PhoneNumberError):
            normalize_phone(text)
        return
    key = normalize_phone(text)
    assert key == "+48" + national
    assert display_phone(key) == national
    assert normalize_phone(display_phone(key)) == key


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=48))
def test_any_text_is_a_key_or_a_phone_number_error(text: str) -> None:
    try:
        key = normalize_phone(text)
    except PhoneNumberError:
        return
    assert len(text) <= MAX_INPUT_LENGTH
    assert KEY.fullmatch(key), key
    assert normalize_phone(key) == key  # idempotent
    assert sum(unicodedata.decimal(c, -1) >= 0 for c in text) >= 7


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -+()", min_size=MAX_INPUT_LENGTH + 1, max_size=80))
def test_longer_than_32_is_refused(text: str) -> None:
    with pytest.raises(PhoneNumberError, match="longer than 32"):
        normalize_phone(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=7, max_size=13).filter(lambda d: d[0] != "0"))
def test_foreign_numbers_stay_in_e164(digits: str) -> None:
    if digits.startswith("48"):
        return
    assert normalize_phone("+" + digits) == "+" + digits
    assert normalize_phone("00" + digits) == "+" + digits
