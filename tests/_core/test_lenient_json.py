import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccrm_async._core import lenient_json

from conftest import sample_bytes


def test_valid_json_takes_the_fast_path() -> None:
    assert lenient_json.loads(b'{"a": [1, 2]}') == {"a": [1, 2]}


def test_notes_sample_from_the_seed_is_repaired() -> None:
    payload = lenient_json.loads(sample_bytes("notes_page.txt"))
    note = payload["data"][0]
    assert note["text"].startswith('{"blocks":[{"key":"be2bp","text":"Notatka do tego')
    assert note["files"] == {}
    assert note["edit"] == 1  # the trailing comma after it is dropped
    assert payload["otherData"]["totalCount"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{ url: "https://x/y" }', {"url": "https://x/y"}),  # the export callback
        ('{"a": [1, 2,], }', {"a": [1, 2]}),
        ('{"a": "line\nbreak"}', {"a": "line\nbreak"}),
        ('{"t": "{"k": "v"}", "n": 1}', {"t": '{"k": "v"}', "n": 1}),
        ('{"t": "[1, 2]"}', {"t": "[1, 2]"}),
    ],
)
def test_documented_defects_are_repaired(text: str, expected: object) -> None:
    assert lenient_json.loads(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"success": true, "data": [{"uuid": "a"',  # truncated
        "<html><body>502 Bad Gateway</body></html>",
        '{"a": 1} trailing',
        '{"a": tru}',
        "",
        '{"a": "unterminated}',
    ],
)
def test_broken_bodies_still_fail(text: str) -> None:
    with pytest.raises(lenient_json.JSONDecodeError):
        lenient_json.loads(text)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(lenient_json.JSONDecodeError):
        lenient_json.loads(data)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=10,
    )
)
def test_repair_keeps_valid_json_unchanged(value: object) -> None:
    text = orjson.dumps(value).decode()
    assert orjson.loads(lenient_json.repair(text)) == value
