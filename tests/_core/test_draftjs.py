import pytest

from ccrm_async._core.draftjs import plain_text
from ccrm_async.testing import draft_js


def test_blocks_are_joined_by_newlines() -> None:
    assert plain_text(draft_js("first\nsecond")) == "first\nsecond"


@pytest.mark.parametrize(
    "text",
    ["plain words", "", "{not json", '{"no": "blocks"}', '{"blocks": "oops"}', "[1, 2]"],
)
def test_anything_else_is_returned_as_is(text: str) -> None:
    assert plain_text(text) == text


def test_unescaped_seed_text_is_read() -> None:
    raw = (
        '{"blocks":[{"key":"be2bp","text":"Notatka do tego \n\npołączenia","type":"unstyled",'
        '"depth":0,"inlineStyleRanges":[],"entityRanges":[],"data":{}\n}],"entityMap":{}}'
    )
    assert plain_text(raw) == "Notatka do tego \n\npołączenia"


def test_block_without_text_gives_an_empty_line() -> None:
    assert plain_text('{"blocks":[{"text":"a"},{"key":"x"},{"text":"b"}]}') == "a\n\nb"
