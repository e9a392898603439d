"""The converter against the seed's example bodies, and every quirk in API-NOTES."""

import copy
import random
from datetime import datetime
from typing import Any

import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccrm_async import (
    CallDirection,
    CallRecord,
    CallService,
    CallStatus,
    ContactType,
    Note,
    TalkStatus,
)
from ccrm_async._core import lenient_json
from ccrm_async._core.php import Unreadable
from ccrm_async.converter import LENIENT, STRICT, make_converter, read_record
from ccrm_async.testing import RECORD_HABITS, CallDataset, php_spelling, unreadable

from conftest import sample_bytes, sample_json


def seed_call() -> dict[str, Any]:
    record: dict[str, Any] = sample_json("call_history_page.json")["data"][0]
    return record


def test_seed_call_history_example_in_strict_mode() -> None:
    call = STRICT.structure(seed_call(), CallRecord)
    assert call.uuid == "e4baaa94-095a-41b3-b638-203dcfcfd3fe"
    assert call.call_date == datetime(2022, 12, 29, 11, 24, 57)
    assert call.direction is CallDirection.IN  # "IN"
    assert call.service is CallService.CALL  # "CALL"
    assert call.status is CallStatus.ANSWERED  # "ANSWERED"
    assert call.duration == 368 and call.cost == 0 and call.sms_data is None
    assert call.has_notes is True  # "note": 1
    assert call.destination == "Połączenie Przychodzące"
    assert call.to is not None and call.to.number_not_formatted == "48777888999"  # a number
    assert call.from_ is not None and call.from_.number == "+48 555 555 555"
    assert call.to.type is ContactType.UNKNOWN
    assert call.user_talk is not None and call.user_talk.status is TalkStatus.QUEUE
    receiver = call.user_talk.receivers[0]
    assert (receiver.internal, receiver.first_name) == (107, "Jan")
    assert call.external_number is not None
    assert call.external_number.number_formatted == "+48 333 333 333"
    assert call.external_number.number_not_formatted == "48333333333"
    (flag,) = call.flags
    assert flag.rel_uuid == "9fb11e8a-099e-4ea8-8f17-fdf095f06637"  # spelled "reluuid"
    assert flag.color == "#fa702e"


@pytest.mark.parametrize("notes_sample", ["notes_page.txt", "notes_page.json"])
def test_seed_notes_example_in_strict_mode(notes_sample: str) -> None:
    payload = lenient_json.loads(sample_bytes(notes_sample))
    note = STRICT.structure(payload["data"][0], Note)
    assert note.uuid == "1fa7bda9-e853-43d6-9b3c-c194ad59cefd"
    assert note.created == datetime(2022, 12, 29, 12, 13, 35)
    assert note.plain_text == "Notatka do tego \n\npołączenia"
    assert note.text.startswith('{"blocks"')
    assert note.status == "exist"
    assert note.user is not None and note.user.last_name == "Kowalski"
    assert note.call is not None and note.call.direction is CallDirection.IN
    assert note.call.external_number is not None
    assert note.call.external_number.number_not_formatted == "48777888999"
    assert note.files == ()  # "files": {}
    assert note.pinned is False and note.edited is True
    assert note.person is None and note.organisation is None


@pytest.mark.parametrize(
    ("wire", "member"),
    [
        ("in", CallDirection.IN),
        ("IN", CallDirection.IN),
        ("In", CallDirection.IN),
        ("internal", CallDirection.INTERNAL),
    ],
)
def test_direction_in_any_case(wire: str, member: CallDirection) -> None:
    assert LENIENT.structure({**seed_call(), "callDirection": wire}, CallRecord).direction is member


@pytest.mark.parametrize("wire", ["noAnswer", "NO_ANSWER", "no_answer", "NOANSWER"])
def test_status_spellings(wire: str) -> None:
    call = LENIENT.structure({**seed_call(), "status": wire}, CallRecord)
    assert call.status is CallStatus.NO_ANSWER


def test_unknown_enum_values_keep_the_record() -> None:
    call = LENIENT.structure({**seed_call(), "status": "voicemail", "service": "VIDEO"}, CallRecord)
    assert call.status is not None and call.status.value == "voicemail"
    assert not call.status.known and CallStatus.ANSWERED.known
    assert call.status != CallStatus.ANSWERED
    assert call.service is not None and call.service.value == "VIDEO"
    assert LENIENT.unstructure(call)["status"] == "voicemail"


def test_numbers_and_strings_both_ways() -> None:
    call = LENIENT.structure(
        {**seed_call(), "duration": "42", "cost": "1.5", "note": "0"}, CallRecord
    )
    assert (call.duration, call.cost, call.has_notes) == (42, 1.5, False)


@pytest.mark.parametrize(("wire", "value"), [(0, False), (1, True), (True, True), ("true", True)])
def test_booleans_as_numbers(wire: object, value: bool) -> None:
    assert LENIENT.structure({**seed_call(), "note": wire}, CallRecord).has_notes is value


def test_both_rel_uuid_spellings() -> None:
    flag = {"name": "x", "uuid": "u", "color": "#000", "relUuid": "r1"}
    call = STRICT.structure({**seed_call(), "flags": [flag]}, CallRecord)
    assert call.flags[0].rel_uuid == "r1"


def test_files_as_list_or_object() -> None:
    payload = lenient_json.loads(sample_bytes("notes_page.json"))["data"][0]
    file = {
        "uuid": "f",
        "uploadedAt": "2022-12-29 12:00:00",
        "fileSize": "1024",
        "fileName": "a.pdf",
    }
    as_list = LENIENT.structure({**payload, "files": [file]}, Note)
    as_object = LENIENT.structure({**payload, "files": {"0": file}}, Note)
    assert as_list.files == as_object.files
    assert as_list.files[0].file_size == 1024


def test_plain_string_note_text() -> None:
    payload = lenient_json.loads(sample_bytes("notes_page.json"))["data"][0]
    note = LENIENT.structure({**payload, "text": "just words"}, Note)
    assert note.plain_text == "just words"


def test_extra_keys_lenient_but_strict_catches_drift() -> None:
    drifted = {**seed_call(), "newField": 1}
    assert LENIENT.structure(drifted, CallRecord).uuid
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure(drifted, CallRecord)


def test_unstructure_gives_the_api_keys_back() -> None:
    call = STRICT.structure(seed_call(), CallRecord)
    wire = LENIENT.unstructure(call)
    assert set(wire) == set(seed_call())
    assert wire["callDate"] == "2022-12-29 11:24:57"
    assert wire["flags"][0]["relUuid"] == "9fb11e8a-099e-4ea8-8f17-fdf095f06637"
    assert STRICT.structure(wire, CallRecord) == call


def test_missing_required_keys_fail() -> None:
    record = seed_call()
    del record["callDate"]
    with pytest.raises(Unreadable) as raised:
        LENIENT.structure(record, CallRecord)
    assert (raised.value.path, raised.value.problem) == ("callDate", "missing")


def test_empty_optional_date_time_is_none() -> None:
    payload = lenient_json.loads(sample_bytes("notes_page.json"))["data"][0]
    file = {"uuid": "f", "uploadedAt": "", "fileName": "a.pdf"}
    note = LENIENT.structure({**payload, "files": [file], "created": "0000-00-00 00:00:00"}, Note)
    assert note.files[0].uploaded_at is None and note.created is None


# -- the generated hooks against cattrs' (the lenient fast path, issue 11) ----------------------

_CATTRS = make_converter(generated_hooks=False)  # cattrs-generated hooks, the same rules
_ODD_VALUES: tuple[Any, ...] = (
    None, "", "1", "0", "abc", 0, 1, 2, 1.5, True, False, [], {}, ["x"], [{}], {"0": "x"},
    "0000-00-00 00:00:00", "2024-05-06 07:08:09", "0,50",
)  # fmt: skip


def _outcome(read: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "read", read(*args)
    except Exception as exc:
        return "refused", str(exc) if isinstance(exc, Unreadable) else None


def _mutated(record: dict[str, Any], rng: random.Random, odd: list[Any]) -> dict[str, Any]:
    """*record* with a few values, at the top or one level down, replaced by odd ones."""
    out = copy.deepcopy(record)
    for value in odd:
        target = out
        nested = [k for k, v in out.items() if isinstance(v, dict) and v]
        if nested and rng.random() < 0.4:
            target = out[rng.choice(sorted(nested))]
        key = rng.choice(sorted(target))
        if rng.random() < 0.1:
            del target[key]
        else:
            target[key] = value
    return out


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    seed=st.integers(0, 10_000),
    habits=st.sets(st.sampled_from(RECORD_HABITS)),
    odd=st.lists(st.sampled_from(_ODD_VALUES), max_size=3),
    spoil=st.booleans(),
)
def test_generated_hooks_read_and_write_what_cattrs_hooks_do(
    seed: int, habits: set[str], odd: list[Any], spoil: bool
) -> None:
    rng = random.Random(seed)
    notes = lenient_json.loads(sample_bytes("notes_page.json"))["data"]
    bases: list[tuple[dict[str, Any], type]] = [
        *((call, CallRecord) for call in CallDataset(seed=seed, count=3).calls),
        *((note, Note) for note in notes),
    ]
    for base, cls in bases:
        record = php_spelling(base, sorted(habits), rng)
        if spoil and cls is CallRecord:
            record = unreadable(record, rng)
        record = _mutated(record, rng, odd)
        fast, reference = LENIENT.get_structure_hook(cls), _CATTRS.get_structure_hook(cls)
        assert _outcome(fast, record, cls) == _outcome(reference, record, cls)
        new = _outcome(read_record, LENIENT, record, cls)
        assert new == _outcome(read_record, _CATTRS, record, cls)
        if new[0] == "read":  # written back: the same object, keys in the same order
            wire, reference_wire = LENIENT.unstructure(new[1][0]), _CATTRS.unstructure(new[1][0])
            assert wire == reference_wire and list(wire) == list(reference_wire)


def test_generated_hooks_are_the_lenient_ones_and_not_strict() -> None:
    assert LENIENT.get_structure_hook(CallRecord) is not _CATTRS.get_structure_hook(CallRecord)
    assert STRICT.get_structure_hook(CallRecord).__name__.startswith("structure_CallRecord")
    with pytest.raises(ValueError, match="strict"):
        make_converter(strict=True, generated_hooks=True)
