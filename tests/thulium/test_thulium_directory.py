"""ContactDirectory: building, the shared-number rule, SQLite persistence and
restart, atomic refresh (from files, records and the export emulator)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from _thulium_fixtures import captured_logs, log_scan, organisation, person  # noqa: F401

from ccrm_async import CCRMClient, ExportTimeout
from ccrm_async.exports import ExportReceiver
from ccrm_async.models.contacts import Organisation, Person, Phone
from ccrm_async.testing import CCRMEmulator
from ccrm_async.thulium import (
    ORGANISATION_REFRESH_COLUMNS,
    PEOPLE_REFRESH_COLUMNS,
    SENSITIVE_PEOPLE_COLUMNS,
    ContactDirectory,
    DirectoryError,
    PhoneNumberError,
    RefreshOptions,
    detect_kind,
    is_directory_file,
    normalize_phone,
)
from ccrm_async.thulium.files import file_sources

from conftest import FAST_RETRY, SAMPLES

PEOPLE_CSV = SAMPLES / "thulium_people_semicolon_bom.csv"
ORGANISATIONS_CSV = SAMPLES / "thulium_organisations_comma.csv"
CP1250_CSV = SAMPLES / "thulium_people_cp1250.csv"


def _name(contact: Person | Organisation | None) -> str | None:
    return None if contact is None else contact.display_name


# -- building from records ---------------------------------------------------------------


def test_every_phone_of_a_contact_is_indexed() -> None:
    directory = ContactDirectory.build(
        people=[person("Adam", "Testowy", "500 100 101", "+48 500-100-102", "0048500100103")],
        organisations=[organisation("Demo", "22 500 10 02", "wew. 12")],
    )
    for number in ("500100101", "+48500100102", "(500) 100 103"):
        assert _name(directory.lookup(number)) == "Adam Testowy"
    assert _name(directory.lookup("0048 22 500 10 02")) == "Demo"
    assert directory.lookup("500100199") is None
    with pytest.raises(PhoneNumberError):
        directory.lookup("not a number")
    stats = directory.stats
    assert (stats.people, stats.organisations, stats.numbers) == (1, 1, 4)
    assert stats.skipped_phones == 1  # "wew. 12" is not a phone number
    assert len(directory) == 2
    assert [c.display_name for c in directory.contacts()] == ["Adam Testowy", "Demo"]
    directory.close()


def test_shared_numbers_follow_the_documented_rule() -> None:
    shared = "500 100 200"
    people = [
        person("Adam", "Drugi", "500100999", shared),  # the number in slot 2
        person("Ewa", "Pierwsza", shared),  # slot 1: wins over slot 2
    ]
    organisations = [organisation("Demo", shared)]  # slot 1, but an organisation
    directory = ContactDirectory.build(people=people, organisations=organisations)
    assert [c.display_name for c in directory.matches(shared)] == [
        "Ewa Pierwsza",
        "Adam Drugi",
        "Demo",
    ]
    assert _name(directory.lookup(shared)) == "Ewa Pierwsza"
    assert directory.stats.shared_numbers == 1

    # Only organisations: the organisation answers.
    only = ContactDirectory.build(organisations=organisations)
    assert _name(only.lookup(shared)) == "Demo"
    directory.close()
    only.close()


def test_ties_do_not_depend_on_the_order_of_rows_or_files() -> None:
    twins = [person(f"Osoba{i}", "Testowa", "500 100 300") for i in range(6)]
    answers = set()
    orders = set()
    for rotation in range(len(twins)):
        rows = twins[rotation:] + twins[:rotation]
        for sources in ([rows], [rows[::-1]], [rows[:2], rows[2:]]):
            directory = ContactDirectory.build_from(sources)
            answers.add(_name(directory.lookup("500100300")))
            orders.add(tuple(c.display_name for c in directory.matches("500100300")))
            directory.close()
    assert len(answers) == 1 and len(orders) == 1

    # With the contact's own id (a uuid column), the smaller id wins.
    own_ids = (("B", "bbbbbbbb-0000-4000-8000-000000000000"), ("A", "aaaa0000-0000-4000-8000"))
    ids = [
        Person(first_name=n, phones=(Phone("500100301"),), extra={"uuid": u}) for n, u in own_ids
    ]
    for rows in (ids, ids[::-1]):
        directory = ContactDirectory.build(people=rows)
        assert _name(directory.lookup("500100301")) == "A"
        directory.close()


# -- from export files --------------------------------------------------------------------


def test_from_hand_written_files_semicolon_comma_bom_cp1250() -> None:
    names = {"0b7c6f1e-1111-4a2b-9c3d-000000000001": "Status"}
    directory = ContactDirectory.from_files(
        [PEOPLE_CSV, ORGANISATIONS_CSV, CP1250_CSV], custom_field_names=names
    )
    assert (directory.stats.people, directory.stats.organisations) == (4, 2)
    adam = directory.lookup("500100101")
    assert isinstance(adam, Person) and adam.last_name == "Testowy"
    assert adam.custom_fields == {"0b7c6f1e-1111-4a2b-9c3d-000000000001": "VIP"}
    assert directory.custom_field_names == names
    assert _name(directory.lookup("+48 500 100 103")) == "Zofia Przykładowa"
    assert _name(directory.lookup("+44 20 7946 0000")) == 'Żaneta "Ż" Fikcyjna'
    assert _name(directory.lookup("500 100 107")) == "Łucja Źdźbło"  # cp1250
    assert _name(directory.lookup("500100105")) == "Demo, sp. z o.o."
    # Adam's work number is also Demo's switchboard: the person answers.
    assert _name(directory.lookup("22 500 10 02")) == "Adam Testowy"
    assert [c.display_name for c in directory.matches("225001002")] == [
        "Adam Testowy",
        "Demo, sp. z o.o.",
    ]
    directory.close()


def test_files_can_be_named_by_kind(tmp_path: Path) -> None:
    ambiguous = tmp_path / "contacts.csv"
    ambiguous.write_text("phone1;email1\n500100400;x@example.com\n", encoding="utf-8")
    with pytest.raises(DirectoryError, match="people or organisations"):
        ContactDirectory.from_files([ambiguous])
    directory = ContactDirectory.from_files(organisations=[ambiguous], people=PEOPLE_CSV)
    assert isinstance(directory.lookup("500100400"), Organisation)
    assert isinstance(directory.lookup("500100101"), Person)
    directory.close()
    with pytest.raises(FileNotFoundError):
        ContactDirectory.from_files([tmp_path / "missing.csv"])
    empty = tmp_path / "empty.csv"
    empty.write_text("phone1;email1\n", encoding="utf-8")  # a header only: nothing to index
    assert len(ContactDirectory.from_files([empty])) == 0


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        (["firstName", "lastName", "phone1"], "people"),
        (["phone1", "organisations.0"], "people"),
        (["name", "nip", "phone1"], "organisations"),
        (["phone1", "people.0", "people.1"], "organisations"),
    ],
)
def test_detect_kind(headers: list[str], kind: str) -> None:
    assert detect_kind(headers) == kind


# -- persistence and restart -----------------------------------------------------------------


def test_saved_directory_reopens_instantly(tmp_path: Path) -> None:
    path = tmp_path / "directory.sqlite"
    people = [person(f"Osoba{i}", "Testowa", f"5{i:08d}") for i in range(20_000)]
    built = ContactDirectory.build(people=people, path=path, custom_field_names={"u": "Pole"})
    stats = built.stats
    built.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["directory.sqlite"]

    # Opening loads nothing, only the file is opened: how fast that is, against
    # a build, is measured in benchmarks/thulium.py (no wall-clock test here).
    reopened = ContactDirectory.open(path)
    assert reopened.stats == stats
    assert reopened.custom_field_names == {"u": "Pole"}
    assert reopened.lookup("500099999") is None
    assert _name(reopened.lookup("500012345")) == "Osoba12345 Testowa"
    reopened.close()


def test_open_refuses_what_is_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ContactDirectory.open(tmp_path / "missing.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DirectoryError):
        ContactDirectory.open(garbage)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema', '0')")
    conn.close()
    with pytest.raises(DirectoryError, match="schema"):
        ContactDirectory.open(other)
    # ContactDirectory(path) creates an empty directory where there is none.
    fresh = ContactDirectory(tmp_path / "new.sqlite")
    assert len(fresh) == 0 and fresh.lookup("500100200") is None
    fresh.close()


# -- atomic refresh --------------------------------------------------------------------------


def _failing(after: int) -> Iterator[Person]:
    for i in range(after):
        yield person(f"Nowa{i}", "Testowa", f"6{i:08d}")
    raise RuntimeError("the export file is broken")


@pytest.mark.parametrize("on_disk", [True, False])
def test_a_failed_rebuild_keeps_the_old_data(tmp_path: Path, on_disk: bool) -> None:
    path = tmp_path / "directory.sqlite" if on_disk else None
    directory = ContactDirectory.build(people=[person("Stara", "Testowa", "500100500")], path=path)
    with pytest.raises(RuntimeError, match="broken"):
        directory.replace(people=_failing(5000))
    assert _name(directory.lookup("500100500")) == "Stara Testowa"
    assert directory.lookup("600000001") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == (["directory.sqlite"] if on_disk else [])
    directory.replace(people=[person("Nowa", "Testowa", "500100501")])
    assert directory.lookup("500100500") is None
    assert _name(directory.lookup("500100501")) == "Nowa Testowa"
    directory.close()


async def test_lookups_go_on_during_a_rebuild_and_see_it_whole(tmp_path: Path) -> None:
    directory = ContactDirectory.build(
        people=[person("Stara", "Testowa", "500100600")], path=tmp_path / "d.sqlite"
    )
    release = threading.Event()
    produced = threading.Event()

    def slow() -> Iterator[Person]:
        yield person("Nowa", "Testowa", "500100601")
        produced.set()
        release.wait(10)
        for i in range(2000):
            yield person(f"Nowa{i}", "Testowa", f"6{i:08d}")

    rebuild = asyncio.create_task(directory.replace_from_async([slow()]))
    assert await asyncio.to_thread(produced.wait, 10)
    # Mid-build: the old data, and nothing of the new.
    assert _name(directory.lookup("500100600")) == "Stara Testowa"
    assert directory.lookup("500100601") is None
    release.set()
    stats = await rebuild
    assert stats.people == 2001
    assert directory.lookup("500100600") is None
    assert _name(directory.lookup("600001999")) == "Nowa1999 Testowa"
    directory.close()


def test_another_process_picks_up_a_new_build(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    writer = ContactDirectory.build(people=[person("Stara", "Testowa", "500100700")], path=path)
    reader = ContactDirectory.open(path, watch_interval=0.0)
    assert _name(reader.lookup("500100700")) == "Stara Testowa"
    writer.replace(people=[person("Nowa", "Testowa", "500100701")])
    assert _name(reader.lookup("500100701")) == "Nowa Testowa"
    assert reader.lookup("500100700") is None
    lazy = ContactDirectory.open(path, watch_interval=None)
    writer.replace(people=[person("Trzecia", "Testowa", "500100702")])
    assert lazy.lookup("500100702") is None  # never watches: keeps its snapshot
    for d in (writer, reader, lazy):
        d.close()


# -- from CCRM: the export emulator ------------------------------------------------------------


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(calls=10, seed=7) as emulator:
        yield emulator


@pytest.fixture
async def crm(emu: CCRMEmulator) -> AsyncIterator[CCRMClient]:
    async with CCRMClient(base_url=emu.url, token=emu.token, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
async def rx(tmp_path: Path) -> AsyncIterator[ExportReceiver]:
    exports = tmp_path / "exports"
    async with ExportReceiver(directory=exports, shutdown_timeout=1.0) as receiver:
        yield receiver
    leftovers = sorted(p.name for p in exports.iterdir()) if exports.exists() else []
    assert leftovers == [], f"export files left behind: {leftovers}"


def _wire_numbers(records: list[dict[str, Any]]) -> list[str]:
    return [r[f"phone{n}"] for r in records for n in (1, 2, 3) if r.get(f"phone{n}")]


@pytest.mark.parametrize(
    "faults",
    [
        {},
        {"format": "csv_comma", "encoding": "utf-8"},
        {"encoding": "cp1250"},
        {"nested": "json"},
        {"format": "json"},
    ],
    ids=["csv-semicolon-bom", "csv-comma", "csv-cp1250", "csv-nested-json", "json"],
)
async def test_built_from_real_export_files(
    emu: CCRMEmulator,
    crm: CCRMClient,
    rx: ExportReceiver,
    tmp_path: Path,
    faults: dict[str, Any],
) -> None:
    for name, value in faults.items():
        setattr(emu.exports.faults, name, value)
    path = tmp_path / "directory.sqlite"
    directory = await ContactDirectory.from_ccrm(crm, rx, path=path)
    people, organisations = emu.exports.records("people"), emu.exports.records("organisations")
    assert directory.stats.people == len(people)
    assert directory.stats.organisations == len(organisations)
    for number in _wire_numbers(people) + _wire_numbers(organisations):
        assert directory.lookup(number) is not None
    # Every person answers for a number only they have; names came through.
    counts: dict[str, int] = {}
    for number in _wire_numbers(people) + _wire_numbers(organisations):
        counts[normalize_phone(number)] = counts.get(normalize_phone(number), 0) + 1
    for record in people:
        key = normalize_phone(record["phone1"])
        if counts[key] == 1:
            found = directory.lookup_key(key)
            assert isinstance(found, Person) and found.last_name == record["lastName"]
            assert found.pesel is None and found.id_doc_number is None  # not exported
    # Custom-field names from crm.custom_fields.list, values by uuid.
    listed = {f.uuid: f.name for f in await crm.custom_fields.list("person")}
    assert dict(directory.custom_field_names) == listed
    some = directory.lookup(people[0]["phone1"])
    assert some is not None and set(some.custom_fields) <= set(listed)
    # The two exports went out; their files were deleted after the build (see rx).
    kinds = sorted(e.kind for e in emu.exports.exports.values())
    assert kinds == ["organisations", "people"]
    directory.close()


async def test_from_export_results_and_sensitive_columns_on_request(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver
) -> None:
    people_job = await crm.export_people(["firstName", "lastName", "pesel", "phone1"], receiver=rx)
    org_job = await crm.export_organisations(["name", "phone1", "phone2"], receiver=rx)
    results = [await people_job, await org_job]
    try:
        directory = ContactDirectory.from_results(results)
    finally:
        for result in results:
            result.path.unlink()
    record = emu.exports.records("people")[3]
    found = directory.lookup(record["phone1"])
    assert isinstance(found, Person) and found.pesel == record["pesel"]
    directory.close()

    sensitive = await ContactDirectory.from_ccrm(crm, rx, RefreshOptions(include_sensitive=True))
    found = sensitive.lookup_key(normalize_phone(record["phone1"]))
    assert isinstance(found, Person) and found.pesel == record["pesel"]
    sensitive.close()


async def test_refresh_swaps_and_a_hanging_refresh_never_blocks_lookups(
    emu: CCRMEmulator, crm: CCRMClient, rx: ExportReceiver, tmp_path: Path
) -> None:
    """RELIABILITY 28, as it applies to a local directory: the upstream is the
    CCRM export behind a refresh. While it hangs, lookups answer from the old
    data at once; when it fails, the old data stays (nothing becomes "not found")."""
    directory = ContactDirectory.build(
        people=[person("Stara", "Testowa", "500100800")], path=tmp_path / "d.sqlite"
    )
    emu.exports.faults.missing = True  # the callback never comes
    refresh = asyncio.create_task(directory.refresh(crm, rx, RefreshOptions(timeout=0.5)))
    # Lookups go on while the refresh waits (counted, not timed: a lookup's
    # time is in benchmarks/thulium.py), and answer from the old data.
    lookups = 0
    while not refresh.done():
        assert _name(directory.lookup("500100800")) == "Stara Testowa"
        lookups += 1
        await asyncio.sleep(0.01)
    with pytest.raises(ExportTimeout):
        await refresh
    assert lookups >= 2
    assert _name(directory.lookup("500100800")) == "Stara Testowa"

    emu.exports.faults.missing = False
    stats = await directory.refresh(crm, rx)
    assert stats.people == len(emu.exports.records("people"))
    assert directory.lookup("500100800") is None
    assert directory.lookup(emu.exports.records("organisations")[0]["phone1"]) is not None
    directory.close()


async def test_refresh_every_logs_failures_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = ContactDirectory()
    calls: list[str] = []

    async def fake_refresh(crm: Any, receiver: Any, options: RefreshOptions) -> None:
        calls.append(options.timeout)
        if len(calls) == 1:
            raise ExportTimeout("no callback before the deadline")

    monkeypatch.setattr(directory, "refresh", fake_refresh)
    sleeps: list[float] = []
    three = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            three.set()
        await asyncio.sleep(0)

    options = RefreshOptions(timeout=5.0)
    task = asyncio.create_task(
        directory.refresh_every(60.0, None, None, options, first_after=0, sleep=sleep)  # type: ignore[arg-type]
    )
    await three.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sleeps[:3] == [0, 60.0, 60.0]
    assert calls[:2] == [5.0, 5.0]
    warnings = [r for r in captured_logs() if r.levelno == logging.WARNING]
    assert any("ExportTimeout" in r.getMessage() for r in warnings)
    directory.close()


def test_build_files_are_private_and_leave_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "directory.sqlite"
    directory = ContactDirectory.from_files([PEOPLE_CSV], path=target)
    directory.replace(people=[person("Adam", "Testowy", "500100900")])
    directory.close()
    assert sorted(os.listdir(target.parent)) == ["directory.sqlite"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    copy = tmp_path / "copy.sqlite"
    shutil.copy(target, copy)
    reopened = ContactDirectory.open(copy)
    assert _name(reopened.lookup("500100900")) == "Adam Testowy"
    reopened.close()


def test_refresh_options_are_one_frozen_value() -> None:
    options = RefreshOptions()
    assert options.people(["u1"]) == [*PEOPLE_REFRESH_COLUMNS, "customFields.u1"]
    assert "pesel" not in options.people([])
    sensitive = RefreshOptions(include_sensitive=True)
    assert sensitive.people([])[-4:] == list(SENSITIVE_PEOPLE_COLUMNS)
    assert options.organisations(["o1"]) == [*ORGANISATION_REFRESH_COLUMNS, "customFields.o1"]
    chosen = RefreshOptions(people_columns=["firstName", "phone1"], organisation_columns=("name",))
    assert chosen.people(["u1"]) == ["firstName", "phone1"] and chosen.organisations([]) == ["name"]
    assert chosen.people_columns == ("firstName", "phone1")  # kept as a tuple
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.timeout = 5.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="timeout"):
        RefreshOptions(timeout=0)


def test_a_directory_file_is_recognised_by_its_header(tmp_path: Path) -> None:
    ours = tmp_path / "ours.sqlite"
    ContactDirectory.build(people=[person("Ada", "Testowa", "500100900")], path=ours).close()
    assert is_directory_file(ours)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.close()
    assert not is_directory_file(other)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello")
    assert not is_directory_file(text)


def test_file_sources_count_what_each_file_yielded() -> None:
    sources = file_sources(
        [SAMPLES / "thulium_people_semicolon_bom.csv"],
        organisations=[SAMPLES / "thulium_organisations_comma.csv"],
        require_contacts=True,
    )
    directory = ContactDirectory.build_from(sources)
    assert [s.count for s in sources] == [3, 2]
    assert directory.stats.contacts == 5
    directory.close()
