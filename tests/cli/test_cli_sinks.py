"""``calls pull`` into each sink, checked record by record against the emulator's data."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _cli_helpers import (
    CALLS,
    NOTES,
    TOKEN,
    assert_clean,
    call_object,
    expected_calls,
    note_objects,
    planned,
    pull_args,
    run_cli,
    windows_requested,
)

from ccrm_async.sinks import PullQuery, SqliteSink, checkpoint_path
from ccrm_async.testing import CCRMEmulator, PhpHabits

# 3000 calls over 6 days; 2-day windows hold about 1000 calls: one or two pages each.
QUERY = PullQuery(datetime(2024, 1, 1), datetime(2024, 1, 6, 23, 59, 59), timedelta(days=2))
CALL_COUNT = 3000


@pytest.fixture
async def emu() -> AsyncIterator[CCRMEmulator]:
    async with CCRMEmulator(token=TOKEN, calls=CALL_COUNT, days=6, seed=3) as emu:
        yield emu


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The CSV cells of an object, written independently of the library's flattener."""
    cells: dict[str, str] = {}
    for key, value in obj.items():
        name = prefix + key
        if isinstance(value, dict):
            cells.update(_flatten(value, name + "."))
        elif value is None:
            cells[name] = ""
        elif isinstance(value, bool):
            cells[name] = "true" if value else "false"
        elif isinstance(value, list):
            cells[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        else:
            cells[name] = str(value)
    return cells


async def test_jsonl_with_notes(emu: CCRMEmulator, tmp_path: Path) -> None:
    query = PullQuery(QUERY.date_from, QUERY.date_to, QUERY.window, notes=True)
    out = tmp_path / "calls.jsonl"
    result = await run_cli(*pull_args(emu, query, out, "--concurrency", "4"))
    assert result.code == 0, result.stderr
    assert_clean(result)
    lines = out.read_bytes().splitlines()
    expected = list(expected_calls(emu, query))
    assert len(lines) == len(expected) == CALL_COUNT
    with_notes = total_notes = 0
    for line, raw in zip(lines, expected, strict=True):
        record = json.loads(line)
        assert record["uuid"] == raw["uuid"] and record["callDate"] == raw["callDate"]
        notes = note_objects(emu, raw)
        assert record == {**call_object(raw), "notes": notes}
        for note in record["notes"]:
            assert {"uuid", "text", "plainText"} <= note.keys()
        with_notes += bool(notes)
        total_notes += len(notes)
    assert with_notes > CALL_COUNT // 5
    # Notes were asked for exactly the calls whose flag is set, once each.
    asked = [r.query["callHistory"] for r in emu.requests(NOTES)]
    assert sorted(asked) == sorted(raw["uuid"] for raw in expected if raw["note"])
    # Windows one after another, pages inside a window concurrently.
    assert windows_requested(emu) == [w.wire for w in planned(query)]
    pages = [-(-len(emu.dataset.select(*w.wire)) // 1000) for w in planned(query)]
    assert sorted(r.page for r in emu.requests(CALLS)) == sorted(
        page for count in pages for page in range(1, count + 1)
    )
    assert 2 in pages
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(
        f"done: {CALL_COUNT} calls, {total_notes} notes, {sum(pages)} pages, "
    )
    for part in ("0 retries", "0 rate-limit pauses", "0 duplicates dropped"):
        assert part in summary
    assert "0 suspected misses" in summary and "3 of 3 windows" in summary
    assert json.loads(checkpoint_path(out).read_bytes())["offset"] == out.stat().st_size


async def test_csv_one_row_per_call(emu: CCRMEmulator, tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    result = await run_cli(*pull_args(emu, QUERY, out))
    assert result.code == 0, result.stderr
    assert_clean(result)
    with out.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        rows = list(reader)
    assert header is not None and header[:2] == ["uuid", "callDate"]
    assert "to.number" in header and "externalNumber.numberFormatted" in header
    assert "notes" not in header
    expected = list(expected_calls(emu, QUERY))
    assert len(rows) == len(expected) == CALL_COUNT
    for row, raw in zip(rows, expected, strict=True):
        cells = _flatten(call_object(raw))
        assert {key: row.get(key, "") for key in cells} == cells
        assert set(row) == set(header)


async def test_csv_with_notes_has_their_texts(emu: CCRMEmulator, tmp_path: Path) -> None:
    query = PullQuery(datetime(2024, 1, 2), datetime(2024, 1, 2, 23, 59, 59), notes=True)
    out = tmp_path / "notes.csv"
    result = await run_cli(*pull_args(emu, query, out))
    assert result.code == 0, result.stderr
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = list(expected_calls(emu, query))
    assert [row["uuid"] for row in rows] == [raw["uuid"] for raw in expected]
    for row, raw in zip(rows, expected, strict=True):
        notes = note_objects(emu, raw)
        assert json.loads(row["notes"]) == notes
        assert row["notesPlainText"] == "\n---\n".join(n["plainText"] for n in notes)


async def test_sqlite_tables_and_upsert(emu: CCRMEmulator, tmp_path: Path) -> None:
    query = PullQuery(QUERY.date_from, QUERY.date_to, QUERY.window, notes=True)
    out = tmp_path / "calls.sqlite"
    result = await run_cli(*pull_args(emu, query, out))
    assert result.code == 0, result.stderr
    assert_clean(result)
    expected = {raw["uuid"]: raw for raw in expected_calls(emu, query)}

    def check() -> None:
        db = sqlite3.connect(out)
        try:
            rows = db.execute(
                "SELECT uuid, call_date, direction, service, status, duration, has_notes, "
                "from_number, to_number, external_number, raw FROM calls"
            ).fetchall()
            notes = db.execute(
                "SELECT uuid, call_uuid, plain_text, text, raw FROM notes"
            ).fetchall()
        finally:
            db.close()
        assert len(rows) == len(expected) == CALL_COUNT
        for uuid, date, direction, service, status, duration, flag, frm, to, ext, raw in rows:
            call = call_object(expected[uuid])
            assert json.loads(raw) == call
            assert (date, direction, service, status, duration, flag) == (
                call["callDate"],
                call["callDirection"],
                call["service"],
                call["status"],
                call["duration"],
                int(call["note"]),
            )
            assert (frm, to, ext) == (
                call["from"]["number"],
                call["to"]["number"],
                call["externalNumber"]["numberFormatted"],
            )
        want = {
            note["uuid"]: (uuid, note)
            for uuid, raw in expected.items()
            for note in note_objects(emu, raw)
        }
        assert len(notes) == len(want)
        for uuid, call_uuid, plain, text, raw in notes:
            assert (call_uuid, json.loads(raw)) == want[uuid]
            assert (plain, text) == (want[uuid][1]["plainText"], want[uuid][1]["text"])

    check()
    # Another pull over the same days (other windows, so nothing is skipped) upserts:
    # still every call and note once.
    again = PullQuery(QUERY.date_from, QUERY.date_to, timedelta(days=1), notes=True)
    result = await run_cli(*pull_args(emu, again, out))
    assert result.code == 0, result.stderr
    assert "6 of 6 windows" in result.stderr
    check()


async def test_empty_range_gives_an_empty_output(emu: CCRMEmulator, tmp_path: Path) -> None:
    query = PullQuery(datetime(2023, 6, 1), datetime(2023, 6, 2, 23, 59, 59))
    for name in ("empty.jsonl", "empty.csv"):
        result = await run_cli(*pull_args(emu, query, tmp_path / name))
        assert result.code == 0, result.stderr
        assert "done: 0 calls" in result.stderr
    assert (tmp_path / "empty.jsonl").read_bytes() == b""
    header = (tmp_path / "empty.csv").read_text(encoding="utf-8").splitlines()
    assert len(header) == 1 and header[0].startswith("uuid,callDate,")


# The tables a first-release ``calls pull`` created: call_date and has_notes NOT NULL.
_FIRST_RELEASE_SCHEMA = """
CREATE TABLE calls (
    uuid TEXT PRIMARY KEY, call_date TEXT NOT NULL, direction TEXT, service TEXT,
    status TEXT, duration INTEGER, has_notes INTEGER NOT NULL, from_number TEXT,
    to_number TEXT, external_number TEXT, destination TEXT, raw TEXT NOT NULL
);
CREATE INDEX calls_call_date ON calls (call_date);
CREATE TABLE notes (
    uuid TEXT PRIMARY KEY, call_uuid TEXT NOT NULL, created TEXT, plain_text TEXT,
    text TEXT, raw TEXT NOT NULL
);
CREATE INDEX notes_call_uuid ON notes (call_uuid);
CREATE TABLE pull_windows (
    date_from TEXT NOT NULL, date_to TEXT NOT NULL, notes INTEGER NOT NULL,
    records INTEGER NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (date_from, date_to)
);
"""
_KEPT = ("kept", "2023-12-31 10:00:00", "in", "s", "ANSWERED", 5, 0, "1", "2", "3", None, "{}")


def _first_release_file(path: Path, *extra: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.executescript(_FIRST_RELEASE_SCHEMA + ";".join(extra))
        db.execute(f"INSERT INTO calls VALUES ({', '.join('?' * len(_KEPT))})", _KEPT)
        db.commit()
    finally:
        db.close()


def _not_null(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return {row[1]: row[3] for row in db.execute("PRAGMA table_info(calls)")}
    finally:
        db.close()


async def test_a_first_release_file_takes_an_undated_call_and_keeps_its_rows(
    emu: CCRMEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "old.sqlite"
    _first_release_file(out, "CREATE INDEX mine ON calls (status)")
    zero = emu.dataset.calls[10]["uuid"]
    emu.php = PhpHabits(zero_date_uuids=frozenset({zero}))
    result = await run_cli(*pull_args(emu, QUERY, out))
    assert result.code == 0, result.stderr
    flags = _not_null(out)
    assert flags["call_date"] == flags["has_notes"] == 0
    db = sqlite3.connect(out)
    try:
        assert db.execute("SELECT * FROM calls WHERE uuid = 'kept'").fetchone() == _KEPT
        assert db.execute("SELECT call_date FROM calls WHERE uuid = ?", (zero,)).fetchone() == (
            None,
        )
        assert db.execute("SELECT count(*) FROM calls").fetchone() == (CALL_COUNT + 1,)
        indexes = {row[0] for row in db.execute("SELECT name FROM pragma_index_list('calls')")}
        assert {"mine", "calls_call_date"} <= indexes
    finally:
        db.close()


def test_a_calls_table_changed_by_hand_is_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "old.sqlite"
    trigger = "CREATE TRIGGER audit AFTER INSERT ON calls BEGIN SELECT 1; END"
    _first_release_file(out, trigger)
    SqliteSink(out).close()
    assert _not_null(out)["call_date"] == 1  # a rebuild would have dropped the trigger
    assert "changed by hand" in caplog.text
