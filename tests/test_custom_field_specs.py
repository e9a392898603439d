"""Custom-field specs, their rules and their wire form, without a socket (seed 001)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import orjson
import pytest

import ccrm_async
from ccrm_async import (
    CheckboxField,
    ContactType,
    CustomField,
    DateField,
    DateTimeField,
    FieldSpec,
    FieldType,
    NumberField,
    ResponseError,
    SelectField,
    TextField,
    ValidationError,
)
from ccrm_async.converter import LENIENT, STRICT
from ccrm_async.custom_fields import (
    find_created,
    list_path,
    parse_custom_fields,
    with_uuid,
)
from ccrm_async.models.custom_fields import validate_spec

from conftest import sample_bytes, sample_json

BOTH = ["person", "organisation"]

# The seed's request example of each type, and the spec that must produce it.
SEED_REQUESTS: list[tuple[str, FieldSpec]] = [
    (
        "custom_field_create_text.json",
        TextField(
            "Pole tekstowe", BOTH, required=False, min_length=0, max_length=50,
            multiline=True, link=True,
        ),
    ),
    (
        "custom_field_create_number.json",
        NumberField("Pole numeryczne", BOTH, min_value=0, max_value=100),
    ),
    (
        "custom_field_create_select.json",
        SelectField("Lista rozwijana", BOTH, required=True, options=["Opcja 1", "Opcja 2"],
                    multiple=True),
    ),
    ("custom_field_create_checkbox.json", CheckboxField("Checkbox", BOTH, required=True)),
    ("custom_field_create_date.json", DateField("Data", BOTH, required=True)),
    ("custom_field_create_datetime.json", DateTimeField("Data i czas", BOTH, required=True)),
]  # fmt: skip

# Each rule: a spec that breaks it, and the argument the error must name.
BROKEN: list[tuple[str, Callable[[], object], str]] = [
    ("empty name", lambda: TextField("", BOTH), "name"),
    ("blank name", lambda: NumberField("   ", BOTH), "name"),
    ("name not a string", lambda: DateField(None, BOTH), "name"),  # type: ignore[arg-type]
    ("empty name, select", lambda: SelectField("", BOTH, options=["a"]), "name"),
    ("empty name, checkbox", lambda: CheckboxField("", BOTH), "name"),
    ("empty name, datetime", lambda: DateTimeField("", BOTH), "name"),
    ("unknown contact type", lambda: TextField("x", ["person", "lead"]), "contact_types"),
    ("unknown single contact type", lambda: DateField("x", "people"), "contact_types"),
    ("no contact type", lambda: CheckboxField("x", []), "contact_types"),
    ("contact types None", lambda: CheckboxField("x", None), "contact_types"),  # type: ignore[arg-type]
    ("contact type not a string", lambda: DateField("x", 7), "contact_types"),  # type: ignore[arg-type]
    ("min_length > max_length", lambda: TextField("x", BOTH, min_length=6, max_length=5),
     "max_length"),
    ("negative min_length", lambda: TextField("x", BOTH, min_length=-1), "min_length"),
    ("negative max_length", lambda: TextField("x", BOTH, min_length=0, max_length=-1),
     "max_length"),
    ("length not an integer", lambda: TextField("x", BOTH, max_length=1.5),  # type: ignore[arg-type]
     "max_length"),
    ("min_value > max_value", lambda: NumberField("x", BOTH, min_value=10, max_value=9),
     "max_value"),
    ("value not finite", lambda: NumberField("x", BOTH, max_value=float("inf")), "max_value"),
    ("no options", lambda: SelectField("x", BOTH, options=[]), "options"),
    ("options left out", lambda: SelectField("x", BOTH), "options"),
    ("duplicate options", lambda: SelectField("x", BOTH, options=["cd", "dvd", "cd"]),
     "options"),
    ("blank option", lambda: SelectField("x", BOTH, options=["cd", " "]), "options"),
    ("option not a string", lambda: SelectField("x", BOTH, options=["cd", 1]),  # type: ignore[list-item]
     "options"),
    ("required not a bool", lambda: DateField("x", BOTH, required="yes"),  # type: ignore[arg-type]
     "required"),
]  # fmt: skip


@pytest.mark.parametrize(("sample", "spec"), SEED_REQUESTS, ids=[s for s, _ in SEED_REQUESTS])
def test_wire_body_equals_the_seed_request_example(sample: str, spec: FieldSpec) -> None:
    expected = sample_json(sample)
    for converter in (LENIENT, STRICT):
        body = converter.unstructure(spec)
        assert body == expected
        assert list(body) == list(expected)  # and in the example's key order


@pytest.mark.parametrize(("rule", "build", "field"), BROKEN, ids=[r for r, _, _ in BROKEN])
def test_every_rule_raises_naming_the_field(
    rule: str, build: Callable[[], object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        build()
    assert caught.value.field == field
    assert caught.value.status is None  # caught before sending
    # validate_spec (what the client runs before sending) applies the same rule
    # to a spec built with attrs' validators switched off.
    with attrs.validators.disabled():
        unchecked = build()
    with pytest.raises(ValidationError) as again:
        validate_spec(unchecked)
    assert again.value.field == field


def test_validate_spec_refuses_what_is_not_a_spec() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_spec({"type": "text", "name": "x"})
    assert caught.value.field == "spec"


def test_defaults_are_the_documented_numbers() -> None:
    text = TextField("x", "person")
    assert (text.min_length, text.max_length, text.multiline, text.link) == (0, 255, False, False)
    assert text.required is False
    number = NumberField("x", "organisation")
    assert (number.min_value, number.max_value) == (0, 2_147_483_647)
    assert SelectField("x", "person", options=["a"]).multiple is False


def test_contact_types_are_normalised_to_a_tuple() -> None:
    assert DateField("x", "person").contact_types == ("person",)
    assert DateField("x", ["organisation", "person", "person"]).contact_types == (
        "organisation",
        "person",
    )
    spec = DateField("x", [ContactType.PERSON])
    assert spec.contact_types == ("person",) and type(spec.contact_types[0]) is str
    assert SelectField("x", "person", options="only").options == ("only",)


def test_specs_are_frozen_and_slotted() -> None:
    spec = TextField("x", "person")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.name = "y"  # type: ignore[misc]
    assert not hasattr(spec, "__dict__")
    assert {cls.field_type for _, cls in SEED_REQUESTS} == set(FieldType)


# -- reading the list -------------------------------------------------------------------


def test_list_sample_quirks() -> None:
    body = sample_bytes("custom_fields_list.json")
    assert {} in sample_json("custom_fields_list.json")["data"]  # the quirk is in the sample
    for converter in (LENIENT, STRICT):
        fields = parse_custom_fields(body, converter)
        assert [f.type for f in fields] == [
            FieldType.DATE,
            FieldType.TEXT,
            FieldType.NUMBER,
            FieldType.SELECT,
            FieldType.CHECKBOX,
        ]  # the {} entry skipped, order kept
        assert all(f.can_delete is True for f in fields)  # "canDelete": 1
        date, text, number, select, checkbox = fields
        assert date == CustomField(
            uuid="7b0abc08-afa4-4946-ad23-ad4646072853",
            type=FieldType.DATE,
            name="Data zamówienia",
            required=True,
            contact_types=("person", "organisation"),
            can_delete=True,
            spec=DateField("Data zamówienia", BOTH, required=True),
        )
        assert text.spec == TextField(
            "Tekst wielolin", BOTH, min_length=0, max_length=15, multiline=True, link=False
        )
        assert number.spec == NumberField("number", BOTH, min_value=5, max_value=20)
        assert select.spec == SelectField(
            "Lista rozw", ["organisation", "person"], required=True, options=["cd", "dvd"],
            multiple=True,
        )  # fmt: skip
        assert select.contact_types == ("organisation", "person")
        assert checkbox.spec == CheckboxField("checkboxTest", BOTH)
        assert all(f.extra == {} for f in fields)


def _listing(*entries: Any) -> bytes:
    return orjson.dumps({"success": True, "data": list(entries), "otherData": {}, "message": "OK"})


def _text_entry(**param: Any) -> dict[str, Any]:
    base = {"type": "text", "name": "Opis", "required": False, "contactType": ["person"]}
    return {"uuid": "u-1", "type": "text", "param": {**base, **param}, "canDelete": 0}


def test_both_length_spellings_are_read() -> None:
    tables = parse_custom_fields(_listing(_text_entry(minLenght=2, maxLenght=40)), STRICT)[0]
    example = parse_custom_fields(_listing(_text_entry(minLength=2, maxLength=40)), STRICT)[0]
    assert tables == example
    assert isinstance(tables.spec, TextField)
    assert (tables.spec.min_length, tables.spec.max_length) == (2, 40)
    assert tables.can_delete is False  # "canDelete": 0


@pytest.mark.parametrize(("raw", "expected"), [(0, False), (1, True), ("1", True), (True, True)])
def test_can_delete_variants(raw: object, expected: bool) -> None:
    entry = {**_text_entry(), "canDelete": raw}
    assert parse_custom_fields(_listing(entry))[0].can_delete is expected


def test_unknown_type_is_kept_with_its_parameters() -> None:
    entry = {
        "uuid": "u-2",
        "type": "rating",
        "param": {"type": "rating", "name": "Ocena", "required": True,
                  "contactType": ["person"], "stars": 5},
        "canDelete": 1,
    }  # fmt: skip
    for converter in (LENIENT, STRICT):
        (field,) = parse_custom_fields(_listing(entry, {}), converter)
        assert field.type.value == "rating" and not field.type.known
        assert field.spec is None
        assert field.extra == {"stars": 5}
        assert (field.name, field.required, field.contact_types) == ("Ocena", True, ("person",))
        assert LENIENT.unstructure(field)["stars"] == 5


def test_a_field_that_breaks_input_rules_is_still_listed() -> None:
    odd = _text_entry(contactType=["person", "lead"], minLength=9, maxLength=3)
    (field,) = parse_custom_fields(_listing(odd))
    assert field.contact_types == ("person", "lead")
    assert isinstance(field.spec, TextField) and field.spec.min_length == 9
    with pytest.raises(ValidationError):  # but it cannot be sent back as it is
        validate_spec(field.spec)
    with pytest.raises(ResponseError):  # and the strict converter flags it
        parse_custom_fields(_listing(odd), STRICT)


def test_strict_flags_unknown_keys_lenient_keeps_them() -> None:
    entry = _text_entry(minLength=0, maxLength=5, colour="red")
    assert parse_custom_fields(_listing(entry))[0].extra == {"colour": "red"}
    with pytest.raises(ResponseError):
        parse_custom_fields(_listing(entry), STRICT)


def test_null_entries_are_skipped_and_unreadable_ones_fail_the_list() -> None:
    assert parse_custom_fields(_listing(None, {}, _text_entry()))[0].uuid == "u-1"
    with pytest.raises(ResponseError):
        parse_custom_fields(_listing({"type": "text", "param": {"name": "no uuid"}}))
    with pytest.raises(ResponseError):
        parse_custom_fields(b'{"success": false, "message": "nope"}')


def test_listed_field_as_flat_json() -> None:
    fields = parse_custom_fields(sample_bytes("custom_fields_list.json"))
    assert LENIENT.unstructure(fields[3]) == {
        "uuid": "183619e0-af10-4584-b260-bd81324a6ec2",
        "type": "select",
        "name": "Lista rozw",
        "required": True,
        "contactType": ["organisation", "person"],
        "isMultiple": True,
        "options": ["cd", "dvd"],
        "canDelete": True,
    }


# -- request building ---------------------------------------------------------------------


def test_uuid_placement_is_in_the_body() -> None:
    assert with_uuid({"type": "date"}, "abc") == {"type": "date", "uuid": "abc"}
    with pytest.raises(ValidationError) as caught:
        with_uuid({}, " ")
    assert caught.value.field == "uuid"


def test_list_paths() -> None:
    assert list_path("person") == "/publicApi/people/customFields"
    assert list_path("organisation") == "/publicApi/organisations/customFields"
    with pytest.raises(ValidationError) as caught:
        list_path("people")
    assert caught.value.field == "contact_type"


def test_find_created_ignores_fields_listed_before() -> None:
    old = CustomField(uuid="old", type=FieldType.DATE, name="Data")
    new = CustomField(uuid="new", type=FieldType.DATE, name="Data")
    other = CustomField(uuid="x", type=FieldType.DATETIME, name="Data")
    spec = DateField("Data", "person")
    assert find_created([old, other, new], spec, before={"old"}) is new
    assert find_created([old, other], spec, before={"old"}) is None


def test_public_names() -> None:
    names = {
        "CheckboxField", "CustomField", "CustomFields", "DateField", "DateTimeField",
        "FieldSpec", "FieldType", "NumberField", "SelectField", "TextField",
    }  # fmt: skip
    assert names <= set(ccrm_async.__all__)
    assert ccrm_async.__all__ == sorted(ccrm_async.__all__)
