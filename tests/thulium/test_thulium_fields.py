"""A contact as Thulium's JSON (RELIABILITY 30, the pure part) and the seed's example."""

from __future__ import annotations

from datetime import date

import pytest
from _thulium_fixtures import address, log_scan, organisation, person, valid_pesel  # noqa: F401

from ccrm_async.models.contacts import Address, Email, Organisation, Person, Phone
from ccrm_async.thulium import DEFAULT_FIELDS, THULIUM_FIELDS, FieldPolicy, thulium_record
from ccrm_async.thulium.fields import birthdate_from_pesel

from conftest import sample_json

CUSTOM_ID = "0b7c6f1e-1111-4a2b-9c3d-000000000001"
CUSTOM_INFO = "0b7c6f1e-2222-4a2b-9c3d-000000000002"


def test_the_seed_example_shape() -> None:
    """The same contact in CCRM gives the seed's example, with two documented
    differences: ``email`` is always a list, and empty values are left out."""
    sample = sample_json("thulium_response.json")
    assert set(sample) <= THULIUM_FIELDS
    contact = person(
        "Jan",
        "Kowalski",
        "222333444",
        "+48 213 443 523",
        emails=("jan.kowalski@foo.bar",),
        custom_fields={CUSTOM_ID: None, CUSTOM_INFO: "Numer dowodu - AXX 121212"},
    )
    names = {CUSTOM_ID: "ID", CUSTOM_INFO: "Dodatkowe informacje"}
    record = thulium_record(contact, custom_field_names=names)
    expected = {key: value for key, value in sample.items() if value != ""}
    expected["email"] = [sample["email"]]
    assert record == expected


def test_person_fields() -> None:
    contact = person(
        "Adam",
        "Testowy",
        "+48 600 100 200",
        "+44 20 7946 0958",
        "not a number",
        emails=("a.testowy@example.com", "a.testowy@example.com", "adam@example.org"),
        middle_name="Piotr",
        description="Klient testowy",
        addresses=(
            address("korespondencyjny", "Łódź", street="ul. Próbna", building_no="1"),
            address("Adres do faktury", "Kraków", postcode="30-001"),
            address("dom", "Gdańsk", street="ul. Wzorcowa", building_no="7", local_no="3"),
            address("inny", "Poznań"),
        ),
        extra={"uuid": "c0ffee00-0000-4000-8000-000000000001"},
    )
    record = thulium_record(contact)
    assert record == {
        "name": "Adam Piotr",
        "surname": "Testowy",
        "phone_number": ["600100200", "+442079460958", "not a number"],
        "email": ["a.testowy@example.com", "adam@example.org"],
        "identifier": "c0ffee00-0000-4000-8000-000000000001",
        "note": "Klient testowy",
        "mail_drop_address": {"street": "ul. Próbna", "building": "1", "city": "Łódź"},
        "invoice_address": {"postcode": "30-001", "city": "Kraków"},
        "address": {"street": "ul. Wzorcowa", "building": "7", "flat": "3", "city": "Gdańsk"},
    }


def test_organisation_fields() -> None:
    contact = organisation(
        "Test-Bud sp. z o.o.",
        "22 123 45 67",
        nip="1234567890",
        regon="123456789",
        addresses=(Address(name="siedziba", city="Łódź", country="Polska"),),
    )
    record = thulium_record(contact)
    assert record == {
        "surname": "Test-Bud sp. z o.o.",
        "phone_number": ["221234567"],
        "nip": "1234567890",
        "regon": "123456789",
        "address": {"city": "Łódź", "country": "Polska"},
    }


def test_fax_label_goes_to_fax() -> None:
    contact = Organisation(
        name="Demo", phones=(Phone("600100200", "centrala"), Phone("221234567", "Faks"))
    )
    assert thulium_record(contact) == {
        "surname": "Demo",
        "phone_number": ["600100200"],
        "fax": "221234567",
    }


def test_sensitive_fields_need_their_switch() -> None:
    pesel = valid_pesel(date(1985, 3, 14))
    contact = person(
        "Ewa",
        "Próbna",
        "600100200",
        pesel=pesel,
        id_doc_type="dowód osobisty",
        id_doc_number="XYZ123456",
        id_doc_issuer="Urząd Testowy",
        extra={"birthDate": "1985-03-14"},
    )
    plain = thulium_record(contact)
    assert set(plain) <= DEFAULT_FIELDS
    text = repr(plain)
    for secret in (pesel, "XYZ123456", "1985-03-14", "dowód", "Urząd Testowy"):
        assert secret not in text

    # The allow-list alone is not enough: each sensitive field needs its switch too.
    only_listed = thulium_record(contact, policy=FieldPolicy(fields=THULIUM_FIELDS))
    assert "pesel" not in only_listed and "birthdate" not in only_listed

    exposed = thulium_record(
        contact,
        policy=FieldPolicy(
            fields=THULIUM_FIELDS,
            expose_pesel=True,
            expose_birthdate=True,
            expose_id_document=True,
        ),
    )
    assert exposed["pesel"] == pesel
    assert exposed["birthdate"] == "1985-03-14"
    assert exposed["custom_fields"]["Numer dokumentu tożsamości"] == "XYZ123456"


def test_birthdate_from_pesel() -> None:
    for born in (date(1899, 12, 31), date(1985, 3, 14), date(2004, 2, 29), date(2150, 1, 1)):
        assert birthdate_from_pesel(valid_pesel(born)) == born
    broken = valid_pesel(date(1985, 3, 14))
    broken = broken[:-1] + str((int(broken[-1]) + 1) % 10)
    assert birthdate_from_pesel(broken) is None
    assert birthdate_from_pesel("abc") is None
    contact = person("Ewa", "Próbna", "600100200", pesel=valid_pesel(date(1985, 3, 14)))
    policy = FieldPolicy(fields=THULIUM_FIELDS, expose_birthdate=True)
    assert thulium_record(contact, policy=policy)["birthdate"] == "1985-03-14"


def test_allow_list_and_custom_field_allow_list() -> None:
    contact = person(
        "Adam",
        "Testowy",
        "600100200",
        emails=("adam@example.com",),
        custom_fields={CUSTOM_ID: "7", CUSTOM_INFO: "tajne"},
    )
    names = {CUSTOM_ID: "ID", CUSTOM_INFO: "Dodatkowe informacje"}
    narrow = FieldPolicy(fields={"name", "surname"})
    assert thulium_record(contact, custom_field_names=names, policy=narrow) == {
        "name": "Adam",
        "surname": "Testowy",
    }
    by_name = FieldPolicy(custom_fields={"ID"})
    assert thulium_record(contact, custom_field_names=names, policy=by_name)["custom_fields"] == {
        "ID": "7"
    }
    by_uuid = FieldPolicy(custom_fields={CUSTOM_INFO})
    assert thulium_record(contact, policy=by_uuid)["custom_fields"] == {CUSTOM_INFO: "tajne"}
    with pytest.raises(ValueError, match="unknown Thulium field"):
        FieldPolicy(fields={"name", "shoe_size"})


def test_custom_field_names_fall_back_to_uuid_and_never_collide() -> None:
    contact = person("Adam", "Testowy", custom_fields={CUSTOM_ID: "1", CUSTOM_INFO: "2"})
    assert thulium_record(contact)["custom_fields"] == {CUSTOM_ID: "1", CUSTOM_INFO: "2"}
    same = {CUSTOM_ID: "Uwagi", CUSTOM_INFO: "Uwagi"}
    fields = thulium_record(contact, custom_field_names=same)["custom_fields"]
    assert fields == {"Uwagi": "1", f"Uwagi ({CUSTOM_INFO})": "2"}


def test_emails_keep_order_without_repeats() -> None:
    contact = Person(
        first_name="Adam",
        emails=(Email("b@example.com"), Email("a@example.com"), Email("b@example.com")),
    )
    assert thulium_record(contact)["email"] == ["b@example.com", "a@example.com"]
