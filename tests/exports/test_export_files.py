"""Export files to typed contacts: format detection, CSV with either delimiter,
BOM or cp1250, XLSX, JSON, flattened or JSON-cell nested columns, custom fields,
unknown headers kept."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from _export_fixtures import crm, emu, export_dir, export_root, rx

from ccrm_async import ExportError
from ccrm_async._core.export_files import (
    ExportFormat,
    csv_delimiter,
    detect_format,
    organisation_from_row,
    person_from_row,
)
from ccrm_async.exports import ExportReceiver, read_organisations, read_people
from ccrm_async.models import Address, Email, Phone, Supervisor, SupervisorRole
from ccrm_async.testing import CCRMEmulator

# The fixtures imported above, used by name: listed so they count as used.
__all__ = ["crm", "emu", "export_dir", "export_root", "rx"]

CF = "0b1c2d3e-0000-4000-8000-000000000001"


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"PK\x03\x04rest", ExportFormat.XLSX),
        (b"[{}]", ExportFormat.JSON),
        (b'\xef\xbb\xbf  \n{"data": []}', ExportFormat.JSON),
        (b"firstName;lastName\r\n", ExportFormat.CSV),
        (b"\xef\xbb\xbffirstName,lastName", ExportFormat.CSV),
        (b"", ExportFormat.CSV),
    ],
)
def test_the_format_is_detected_from_content(head: bytes, fmt: ExportFormat) -> None:
    assert detect_format(head) is fmt


def test_the_delimiter_comes_from_the_header_line() -> None:
    assert csv_delimiter("a;b;c\r\n") == ";"
    assert csv_delimiter("a,b,c\n") == ","
    assert csv_delimiter('"a;x",b,c') == ","
    assert csv_delimiter("firstName\n") == ";"


def test_a_flattened_row_becomes_a_person() -> None:
    row = {
        "firstName": "Adam",
        "lastName": "Testowy",
        "middleName": "",
        "phone1": "+48 600 100 200",
        "phone1Name": "komórka",
        "phone2": "",
        "phone2Name": "praca",
        "phone3": "22 100 20 30",
        "email1": "adam@example.com",
        "addresses.0.name": "siedziba",
        "addresses.0.city": "Łódź",
        "addresses.0.building_no": "4",
        "addresses.1.city": "",
        "addresses.2.buildingNo": "7",
        "organisations.0": "11111111-1111-4111-8111-111111111111",
        "organisations.1": "",
        "supervisors.0.user": "22222222-2222-4222-8222-222222222222",
        "supervisors.0.role": "MANAGER",
        "supervisors.1.user": "33333333-3333-4333-8333-333333333333",
        "supervisors.1.role": "boss",
        f"customFields.{CF}": "tak",
        "addresses.0.floor": "2",
        "shoeSize": "44",
    }
    person = person_from_row(row)
    assert person.first_name == "Adam" and person.middle_name is None
    assert person.phones == (Phone("+48 600 100 200", "komórka"), Phone("22 100 20 30"))
    assert person.emails == (Email("adam@example.com"),)
    assert person.addresses == (
        Address(name="siedziba", city="Łódź", building_no="4"),
        Address(building_no="7"),
    )
    assert person.organisations == ("11111111-1111-4111-8111-111111111111",)
    assert person.supervisors[0] == Supervisor(
        "22222222-2222-4222-8222-222222222222", SupervisorRole.MANAGER
    )
    assert person.supervisors[1].role is not None and not person.supervisors[1].role.known
    assert person.custom_fields == {CF: "tak"}
    assert person.extra == {"addresses.0.floor": "2", "shoeSize": "44", "phone2Name": "praca"}
    assert person.display_name == "Adam Testowy"


def test_json_cells_become_an_organisation() -> None:
    row = {
        "name": "Demo sp. z o.o.",
        "nip": 1234563218,
        "addresses": '[{"name": "siedziba", "city": "Kraków", "postcode": "30-001"}]',
        "people": '["44444444-4444-4444-8444-444444444444",'
        ' {"uuid": "55555555-5555-4555-8555-555555555555"}]',
        "supervisors": '[{"user": "66666666-6666-4666-8666-666666666666", "role": "watcher"}]',
        "customFields": orjson.dumps({CF: 3}).decode(),
        "firstName": "not an organisation column",
    }
    org = organisation_from_row(row)
    assert org.name == "Demo sp. z o.o." and org.nip == "1234563218"
    assert org.addresses == (Address(name="siedziba", city="Kraków", postcode="30-001"),)
    assert org.people == (
        "44444444-4444-4444-8444-444444444444",
        "55555555-5555-4555-8555-555555555555",
    )
    assert org.supervisors == (
        Supervisor("66666666-6666-4666-8666-666666666666", SupervisorRole.WATCHER),
    )
    assert org.custom_fields == {CF: "3"}
    assert org.extra == {"firstName": "not an organisation column"}


def test_odd_cells_are_kept_not_lost() -> None:
    person = person_from_row(
        {
            "addresses": "ul. Bez JSON 1, Łódź",
            "organisations": "11111111-1111-4111-8111-111111111111;"
            " 22222222-2222-4222-8222-222222222222",
            "supervisors": "[not json",
            "customFields": '[{"uuid": "x", "value": "1"}]',
        }
    )
    assert person.addresses == ()
    assert person.extra == {"addresses": "ul. Bez JSON 1, Łódź", "supervisors": "[not json"}
    assert len(person.organisations) == 2
    assert person.custom_fields == {"x": "1"}


def test_csv_with_semicolons_bom_and_quotes(export_dir: Path) -> None:
    data = (
        "\ufefffirstName;lastName;description;phone1\r\n"
        'Zofia;Próbna;"Opis; z ""cytatem""\r\nw dwóch liniach";+48 600 000 001\r\n'
        "\r\n"
        "Ewa;Wzorcowa;;\r\n"
    ).encode()
    people = list(read_people(_write(export_dir, "a.csv", data)))
    assert [p.first_name for p in people] == ["Zofia", "Ewa"]
    assert people[0].description == 'Opis; z "cytatem"\r\nw dwóch liniach'
    assert people[0].phones == (Phone("+48 600 000 001"),)
    assert people[1].phones == ()


def test_csv_with_commas_in_cp1250(export_dir: Path) -> None:
    data = "name,nip,addresses.0.city\r\nŻółta Łąka sp. z o.o.,123,Łódź\r\n".encode("cp1250")
    (org,) = read_organisations(_write(export_dir, "b.csv", data))
    assert org.name == "Żółta Łąka sp. z o.o."
    assert org.addresses == (Address(city="Łódź"),)


def test_extra_cells_without_a_header_are_kept(export_dir: Path) -> None:
    (person,) = read_people(_write(export_dir, "c.csv", b"firstName;lastName\nAdam;Nowy;?\n"))
    assert person.extra == {"#3": "?"}


def test_json_files_list_or_envelope(export_dir: Path) -> None:
    records = [{"name": "A", "addresses": [{"city": "Gdańsk"}], "customFields": {CF: None}}]
    for payload in (records, {"success": True, "data": records}):
        (org,) = read_organisations(_write(export_dir, "d.json", orjson.dumps(payload)))
        assert org.name == "A" and org.addresses == (Address(city="Gdańsk"),)
        assert org.custom_fields == {CF: None}
    with pytest.raises(ExportError):
        list(read_organisations(_write(export_dir, "e.json", b"[not json")))


def test_xlsx_files(export_dir: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["firstName", "phone1", "addresses.0.city", "unknown"])
    sheet.append(["Adam", 48600100200, "Łódź", 1.5])
    sheet.append([None, None, None, None])
    sheet.append(["Ewa", None, None, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    path = _write(export_dir, "f.xlsx", buffer.getvalue())
    people = list(read_people(path))
    assert [p.first_name for p in people] == ["Adam", "Ewa"]
    assert people[0].phones == (Phone("48600100200"),)
    assert people[0].addresses == (Address(city="Łódź"),)
    assert people[0].extra == {"unknown": "1.5"}


def _expected(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record.get("firstName") or record.get("name"),
        tuple(a["city"] for a in record["addresses"]),
        tuple(s["user"] for s in record["supervisors"]),
        tuple(record.get("organisations") or record.get("people") or ()),
    )


@pytest.mark.parametrize(
    ("fmt", "encoding", "nested"),
    [
        ("csv", "utf-8-sig", "flat"),
        ("csv", "utf-8", "json"),
        ("csv_comma", "cp1250", "flat"),
        ("csv_comma", "utf-8-sig", "json"),
        ("json", "utf-8", "flat"),
        ("xlsx", "utf-8", "flat"),
    ],
)
@pytest.mark.parametrize("kind", ["people", "organisations"])
async def test_every_format_of_the_emulator_reads_back(
    emu: CCRMEmulator,
    crm: Any,
    rx: ExportReceiver,
    fmt: str,
    encoding: str,
    nested: str,
    kind: str,
) -> None:
    if fmt == "xlsx":
        pytest.importorskip("openpyxl")
    faults = emu.exports.faults
    faults.format, faults.encoding, faults.nested = fmt, encoding, nested
    links = "organisations" if kind == "people" else "people"
    first = "firstName" if kind == "people" else "name"
    columns = [
        first,
        "phone1",
        "phone1Name",
        "addresses",
        "supervisors",
        links,
        f"customFields.{CF}",
    ]
    if kind == "people":
        job = await crm.export_people(columns, receiver=rx)
        result = await job.wait(timeout=10)
        records = [p async for p in result.people()]
        got = [
            (
                p.first_name,
                tuple(a.city for a in p.addresses),
                tuple(s.user for s in p.supervisors),
                p.organisations,
            )
            for p in records
        ]
    else:
        job = await crm.export_organisations(columns, receiver=rx)
        result = await job.wait(timeout=10)
        records = [o async for o in result.organisations()]
        got = [
            (
                o.name,
                tuple(a.city for a in o.addresses),
                tuple(s.user for s in o.supervisors),
                o.people,
            )
            for o in records
        ]
    assert result.format.value == ("csv" if fmt.startswith("csv") else fmt)
    assert got == [_expected(r) for r in emu.exports.records(kind)]
    assert all(CF in r.custom_fields for r in records)
    assert all(r.extra == {} for r in records)
    assert all(len(r.phones) == 1 and r.phones[0].name for r in records)
    with pytest.raises(ValueError, match="export"):
        (result.organisations if kind == "people" else result.people)()


async def test_stopping_early_closes_the_file(
    emu: CCRMEmulator, crm: Any, rx: ExportReceiver
) -> None:
    result = await (await crm.export_people(["firstName"], receiver=rx))
    async for person in result.people():
        assert person.first_name
        break
    records = result.people()
    first = await anext(records)
    await records.aclose()
    assert first.first_name
