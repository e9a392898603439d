"""``fields list|create|delete`` against the emulator's custom fields (seed 001)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from _cli_helpers import TOKEN, assert_clean, run_cli

from ccrm_async.testing import CCRMEmulator


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=10, days=1) as emu:
        yield emu


def _wire_fields(emu: CCRMEmulator, contact_type: str | None = None) -> list[dict[str, object]]:
    return emu.custom_fields.fields(contact_type)


async def test_list_json_is_one_array_of_flat_objects(emu: CCRMEmulator) -> None:
    organisation_only = {
        "uuid": "0b6f5f8e-3a55-4c39-9f0e-6f1f0d3c2a11",
        "type": "number",
        "param": {"type": "number", "name": "Pracownicy", "required": False,
                  "contactType": ["organisation"], "minValue": 0, "maxValue": 100000},
        "canDelete": 0,
    }  # fmt: skip
    emu.custom_fields.entries.append(organisation_only)
    result = await run_cli("fields", "list", "--base-url", emu.url, "--json")
    assert result.code == 0, result.stderr
    assert_clean(result)
    listed = json.loads(result.stdout)
    assert isinstance(listed, list) and result.stdout.count("\n") == 1
    wire = _wire_fields(emu)
    assert [f["uuid"] for f in listed] == [f["uuid"] for f in wire]  # both types, each once
    for obj, entry in zip(listed, wire, strict=True):
        param = entry["param"]
        assert isinstance(param, dict)
        assert obj["type"] == entry["type"] and obj["name"] == param["name"]
        assert obj["required"] is param["required"]
        assert obj["contactType"] == param["contactType"]
        for key, value in param.items():
            if key not in ("type", "uuid"):
                assert obj[key] == value, key  # the type's parameters, in the API's spelling
        assert obj["canDelete"] is bool(entry["canDelete"])

    person = await run_cli(
        "fields", "list", "--base-url", emu.url, "--json", "--contact-type", "person"
    )
    assert [f["uuid"] for f in json.loads(person.stdout)] == [
        f["uuid"] for f in _wire_fields(emu, "person")
    ]
    assert organisation_only["uuid"] not in person.stdout


async def test_list_table(emu: CCRMEmulator) -> None:
    # --egress-ip binds every connection to that source address (any 127/8 one works).
    result = await run_cli("fields", "list", "--base-url", emu.url, "--egress-ip", "127.0.0.2")
    assert result.code == 0, result.stderr
    assert {r.remote for r in emu.log} == {"127.0.0.2"}
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "UUID",
        "TYPE",
        "NAME",
        "REQUIRED",
        "CONTACT",
        "TYPES",
        "PARAMETERS",
    ]
    assert len(lines) == 1 + len(_wire_fields(emu))
    text = next(line for line in lines if "Tekst wielolin" in line)
    assert "0-15 chars, multiline" in text
    select = next(line for line in lines if "Lista rozw" in line)
    assert "options: cd, dvd, multiple" in select and " yes " in select


async def test_create_each_type_then_delete(emu: CCRMEmulator) -> None:
    base = ["--base-url", emu.url, "--json"]
    creates = [
        ["text", "Uwagi", "--max-length", "500", "--multiline", "--contact-type", "person"],
        ["number", "Liczba", "--min-value", "1", "--max-value", "99.5", "--required"],
        ["select", "Źródło", "--option", "www", "--option", "telefon", "--multiple"],
        ["checkbox", "Zgoda"],
        ["date", "Urodziny", "--contact-type", "person"],
        ["datetime", "Spotkanie", "--contact-type", "organisation"],
    ]
    created = []
    for args in creates:
        result = await run_cli("fields", "create", *args, *base)
        assert result.code == 0, result.stderr
        created.append(json.loads(result.stdout))
    by_name = {f["param"]["name"]: f for f in _wire_fields(emu)}  # type: ignore[index]
    for args, obj in zip(creates, created, strict=True):
        entry = by_name[args[1]]
        assert obj["uuid"] == entry["uuid"] and obj["type"] == args[0]
    assert by_name["Uwagi"]["param"] == {
        "type": "text", "name": "Uwagi", "required": False, "contactType": ["person"],
        "isLink": False, "isMultiline": True, "minLength": 0, "maxLength": 500,
        "uuid": by_name["Uwagi"]["uuid"],
    }  # fmt: skip
    assert by_name["Liczba"]["param"]["maxValue"] == 99.5
    assert by_name["Liczba"]["param"]["contactType"] == ["person", "organisation"]
    assert by_name["Źródło"]["param"]["options"] == ["www", "telefon"]

    gone = created[3]["uuid"]
    result = await run_cli("fields", "delete", gone, "--base-url", emu.url)
    assert result.code == 0, result.stderr
    assert gone in result.stdout and "Zgoda" in result.stdout
    assert gone not in {f["uuid"] for f in _wire_fields(emu)}
    again = await run_cli("fields", "delete", gone, "--base-url", emu.url)
    assert again.code == 1 and again.error_lines == [
        f"error: no custom field has the uuid {gone!r}"
    ]


async def test_a_bad_definition_is_a_usage_error_and_sends_nothing(emu: CCRMEmulator) -> None:
    # More cases run in-process in test_cli_units.py.
    result = await run_cli(
        "fields", "create", "text", "X", "--min-length", "10", "--max-length", "5",
        "--base-url", emu.url,
    )  # fmt: skip
    assert result.code == 2
    assert result.error_lines == ["error: --min-length (10) is greater than --max-length (5)"]
    assert emu.log == []


async def test_a_field_that_cannot_be_deleted_is_left_alone(emu: CCRMEmulator) -> None:
    entry = _wire_fields(emu)[0]
    entry["canDelete"] = 0
    result = await run_cli("fields", "delete", str(entry["uuid"]), "--base-url", emu.url)
    assert result.code == 1 and "cannot be deleted" in result.error_lines[0]
    assert not [r for r in emu.log if r.method == "DELETE"]
