"""PHP-isms are read, bent values counted, unreadable records rejected (RELIABILITY 37-38)."""

from __future__ import annotations

import logging
import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccrm_async import CallRecord, Note, RejectedRecord, ResponseError
from ccrm_async._core.php import Shape, Unreadable, read_value
from ccrm_async.converter import LENIENT, read_record
from ccrm_async.parsing import parse_page
from ccrm_async.testing import (
    RECORD_HABITS,
    CallDataset,
    CCRMEmulator,
    PhpHabits,
    php_spelling,
)

from conftest import emulator_client as client
from conftest import sample_bytes, sample_json

CALLS = "/publicApi/callHistory"
RANGE = ("2024-01-01", "2024-01-31")


# -- the samples --------------------------------------------------------------------------


def test_php_sample_page_is_read_whole_and_every_bend_counted() -> None:
    page = parse_page(sample_bytes("call_history_page_php.json"), CallRecord, 1)
    assert page.total is None and not page.rejected and len(page.records) == 2
    first, second = page.records
    seed = LENIENT.structure(sample_json("call_history_page.json")["data"][0], CallRecord)
    assert first.to == seed.to and first.to is not None and first.to.number == "+48 777 888 999"
    assert (first.duration, first.cost, first.has_notes) == (368, 0.5, True)
    assert first.flags == seed.flags and first.user_talk == seed.user_talk
    assert second.external_number is None and second.user_talk is None
    assert (second.duration, second.has_notes, second.call_date, second.flags) == (
        None,
        None,
        None,
        (),
    )
    bent = {path for bends in page.bends.values() for path, _ in bends}
    assert bent == {
        "to",
        "duration",
        "cost",
        "note",
        "flags",
        "userTalk.receivers",
        "externalNumber",
        "userTalk",
        "callDate",
    }
    envelope = {path for path, _ in page.envelope_bends}
    assert envelope == {"body", "otherData", "otherData.totalCount"}


def test_empty_php_answer_is_an_empty_page() -> None:
    page = parse_page(sample_bytes("call_history_empty_php.json"), CallRecord, 1)
    assert (page.records, page.total, page.count) == ([], None, 0)
    assert ("data", "an empty object for a list") in page.envelope_bends


def test_unreadable_records_are_rejected_with_page_uuid_and_path() -> None:
    body = sample_bytes("call_history_page_unreadable.json")
    page = parse_page(body, CallRecord, 7)
    assert [r.uuid for r in page.records] == ["e4baaa94-095a-41b3-b638-203dcfcfd3fe"]
    assert page.total == 3 and page.count == 3
    dated, anonymous = page.rejected
    assert (dated.page, dated.uuid, dated.path, dated.kind) == (
        7,
        "a1b2c3d4-0000-4000-8000-000000000003",
        "callDate",
        "CallRecord",
    )
    assert dated.reason == "callDate: a string that is not a date-time"
    assert "yesterday" not in dated.reason  # reasons never quote values
    assert orjson.loads(dated.raw_json)["callDate"] == "yesterday"
    assert (anonymous.uuid, anonymous.path, anonymous.reason) == (None, "uuid", "uuid: missing")


def test_strict_raises_naming_page_uuid_and_path() -> None:
    body = sample_bytes("call_history_page_unreadable.json")
    with pytest.raises(ResponseError) as raised:
        parse_page(body, CallRecord, 7, strict=True)
    message = str(raised.value)
    assert "page 7" in message and "a1b2c3d4-0000-4000-8000-000000000003" in message
    assert "callDate" in message


@pytest.mark.parametrize(
    ("value", "shape", "expected", "bent"),
    [
        ([{"a": 1}], Shape("object", optional=True), {"a": 1}, True),
        ([], Shape("object", optional=True), None, True),
        ({}, Shape("object", optional=True), None, True),
        ("0000-00-00 00:00:00", Shape("datetime", optional=True), None, True),
        ("", Shape("datetime", optional=True), None, False),
        ("12", Shape("int", optional=True), 12, True),
        ("1 234,50", Shape("number"), 1234.5, True),
        ("0,5", Shape("number"), 0.5, True),
        (7.0, Shape("int"), 7, True),
        ("1", Shape("bool", optional=True), True, True),
        (0, Shape("bool"), False, False),
        (48600100200, Shape("str", optional=True), "48600100200", False),
        ({"1": "b", "0": "a"}, Shape("list", item=Shape("str")), ["a", "b"], True),
        ({}, Shape("list", item=Shape("str")), [], False),
        (None, Shape("list", item=Shape("str")), [], True),
        (["x"], Shape("str", optional=True), "x", True),
    ],
)
def test_php_values_with_one_reading(value: Any, shape: Shape, expected: Any, bent: bool) -> None:
    bends: list[tuple[str, str]] = []
    assert read_value(value, shape, "f", bends) == expected
    assert bool(bends) is bent


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        ("n/a", Shape("int", optional=True)),
        ("1,5", Shape("int")),
        (None, Shape("int")),
        ([{"a": 1}, {"a": 2}], Shape("object", optional=True)),
        ("yesterday", Shape("datetime")),
        (2, Shape("bool")),
        (True, Shape("str")),
        ("x", Shape("object", optional=True)),
    ],
)
def test_php_values_without_one_reading(value: Any, shape: Shape) -> None:
    with pytest.raises(Unreadable) as raised:
        read_value(value, shape, "f", [])
    assert raised.value.path == "f"


def test_direct_structure_reads_php_isms_too() -> None:
    raw = sample_json("call_history_page.json")["data"][0]
    call = LENIENT.structure({**raw, "duration": "12", "to": [raw["to"]]}, CallRecord)
    assert call.duration == 12 and call.to is not None and call.to.number == raw["to"]["number"]


# -- Hypothesis: random PHP-isms never fail a page, never lose a readable value -------------

_NULLABLE = ("to", "from", "userTalk", "externalNumber", "duration", "cost", "callDate")


@st.composite
def _records(draw: st.DrawFn) -> list[dict[str, Any]]:
    dataset = CallDataset(seed=draw(st.integers(0, 10_000)), count=draw(st.integers(1, 6)))
    records = []
    for record in dataset.calls:
        for key in draw(st.sets(st.sampled_from(_NULLABLE), max_size=3)):
            record[key] = None
        records.append(record)
    return records


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    records=_records(),
    habits=st.lists(st.sets(st.sampled_from(RECORD_HABITS), min_size=1), min_size=6, max_size=6),
    seed=st.integers(0, 1000),
)
def test_random_php_isms_never_fail_a_page_nor_lose_a_value(
    records: list[dict[str, Any]], habits: list[set[str]], seed: int
) -> None:
    clean = [read_record(LENIENT, record, CallRecord)[0] for record in records]
    spelled = [
        php_spelling(record, sorted(habit), random.Random(seed + i))
        for i, (record, habit) in enumerate(zip(records, habits, strict=False))
    ]
    body = orjson.dumps({"success": True, "data": spelled, "otherData": []})
    page = parse_page(b"\xef\xbb\xbf" + body, CallRecord, 1)
    assert not page.rejected
    assert page.records == clean


# -- over the wire ----------------------------------------------------------------------------


async def test_php_pull_of_30_pages_reads_every_record_once_and_counts_bends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RELIABILITY 37: BOM, no totalCount, PHP spellings on a third of the records,
    and a few unreadable records: every readable record once, the others rejected."""
    php = PhpHabits(bom=True, no_total_count=True, record_rate=0.3, unreadable_rate=0.001, seed=3)
    rejects: list[RejectedRecord] = []
    async with CCRMEmulator(calls=30_000, notes_ratio=0.0, php=php) as emu:
        expected = {c["uuid"] for c in emu.dataset}
        spoiled = {c["uuid"] for c in emu.dataset if php.spell(c) is not c and _unreadable(c)}
        async with client(emu, concurrency=4) as crm:
            pull = crm.call_history(*RANGE, on_reject=rejects.append)
            uuids = [c.uuid async for c in pull]
    assert spoiled and {r.uuid for r in rejects} == spoiled
    assert len(uuids) == len(set(uuids)) and set(uuids) == expected - spoiled
    s = pull.stats
    assert s.rejected == len(spoiled) and s.complete and s.total_last is None
    assert s.bent > 0 and "to" in s.bent_paths and s.bent_paths["body"] == s.pages
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    bent_lines = [line for line in warned if "PHP spelling" in line]
    assert len(bent_lines) == len(s.bent_paths)  # once per field path


def _unreadable(record: dict[str, Any]) -> bool:
    spelled = PhpHabits(unreadable_rate=0.001, record_rate=0.3, seed=3).spell(record)
    try:
        read_record(LENIENT, spelled, CallRecord)
    except Unreadable:
        return True
    return False


async def test_strict_client_fails_on_the_first_unreadable_record() -> None:
    async with CCRMEmulator(calls=3000) as emu:
        victim = emu.dataset.calls[1500]["uuid"]
        emu.php = PhpHabits(unreadable_uuids=frozenset({victim}))
        async with client(emu, strict=True) as crm:
            with pytest.raises(ResponseError) as raised:
                [c async for c in crm.call_history(*RANGE)]
    assert victim in str(raised.value) and "page 2" in str(raised.value)


async def test_notes_in_php_spelling_and_unknown_note_flags(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Calls and their notes are read through the same rules."""
    php = PhpHabits(record_rate=1.0)
    async with CCRMEmulator(calls=200, notes_ratio=0.5, php=php) as emu, client(emu) as crm:
        pull = crm.call_history_with_notes(*RANGE)
        pairs = [pair async for pair in pull]
    flagged = {c["uuid"] for c in emu.dataset if c["note"]}
    assert {call.uuid for call, notes in pairs if notes} == flagged
    assert all(isinstance(n, Note) for _, notes in pairs for n in notes)
    assert pull.stats.rejected == 0 and pull.stats.bent > 0


async def test_a_call_with_an_empty_note_flag_has_its_notes_asked_for() -> None:
    async with CCRMEmulator(calls=50, notes_ratio=0.0) as emu, client(emu) as crm:
        unknown = emu.dataset.calls[7]
        unknown["note"] = None
        pairs = [pair async for pair in crm.call_history_with_notes(*RANGE)]
        asked = {r.query["callHistory"] for r in emu.requests("/publicApi/notes")}
    assert asked == {unknown["uuid"]}
    (call,) = [call for call, _ in pairs if call.uuid == unknown["uuid"]]
    assert call.has_notes is None


def test_rejected_record_uuid_of() -> None:
    assert RejectedRecord.uuid_of({"uuid": "u"}) == "u"
    assert RejectedRecord.uuid_of({"uuid": 5}) == "5"
    assert RejectedRecord.uuid_of({"uuid": None}) is None
    assert RejectedRecord.uuid_of(["x"]) is None
